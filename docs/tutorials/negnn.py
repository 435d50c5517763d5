"""Tutorial: NEGNNRegressor, a supervised crystal GNN fed the frozen self-supervised atom embeddings.

Runs in seconds on the 27 built-in crystals; the target is each crystal's density, a property every
structure has, so no data file is needed. The numbers only show that the code works; measured comparisons
on real tasks are on the NEGNN page (docs/negnn.md).
"""

# --8<-- [start:data]
import numpy as np

from ssl_featurizer.examples import example_structures

crystals = example_structures()  # name -> pymatgen Structure (27 real crystals)
structures = list(crystals.values())
density = np.array([s.density for s in structures])  # g/cm³
# --8<-- [end:data]

# --8<-- [start:fit]
from ssl_featurizer import NEGNNRegressor

model = NEGNNRegressor(layers="01", max_epochs=30, random_state=0)  # h0 ‖ h1 of the default model
model.fit(structures[:22], density[:22])
print(f"{model.n_inputs_} node inputs (79 element features + 128 embedding columns)")
print(f"best validation epoch {model.best_epoch_} of {model.n_epochs_}")
print("predicted:", model.predict(structures[22:]).round(2))
print("true:     ", density[22:].round(2))
# --8<-- [end:fit]

# --8<-- [start:baseline]
from sklearn.model_selection import GridSearchCV, KFold

search = GridSearchCV(NEGNNRegressor(max_epochs=15, random_state=0), {"layers": [None, "01"]},
                      cv=KFold(3, shuffle=True, random_state=0), scoring="neg_mean_absolute_error")
search.fit(structures, density)  # layers=None is the plain CGCNN: same graphs, network and training
print("best layers:", search.best_params_["layers"])
# --8<-- [end:baseline]

# --8<-- [start:save]
import io

import joblib

buffer = io.BytesIO()
joblib.dump(model, buffer)  # parameters and trained weights; the frozen encoder is reloaded by name
print(f"pickled size: {buffer.tell() / 1e3:.0f} kB")
buffer.seek(0)
restored = joblib.load(buffer)
assert np.array_equal(restored.predict(structures[22:]), model.predict(structures[22:]))
# --8<-- [end:save]
