"""Tutorial: matminer's featurize_dataframe with a MultipleFeaturizer (ours + magpie ElementProperty).

Runs in seconds on the built-in crystals plus one deliberately bad (disordered) entry.
"""

# --8<-- [start:data]
import pandas as pd
from pymatgen.core import Lattice, Structure

from ssl_featurizer.examples import example_structures

crystals = example_structures()
df = pd.DataFrame({"structure": list(crystals.values())}, index=list(crystals))

# a disordered alloy (half Cu, half Au on one site): the crystal graph needs ordered sites
alloy = Structure(Lattice.cubic(3.8), [{"Cu": 0.5, "Au": 0.5}], [[0, 0, 0]])
df.loc["CuAu (disordered)"] = [alloy]
# --8<-- [end:data]

# --8<-- [start:multiple]
from matminer.featurizers.base import MultipleFeaturizer
from matminer.featurizers.composition import ElementProperty
from matminer.featurizers.structure import StructureComposition

from ssl_featurizer import SSLStructureFeaturizer

featurizer = MultipleFeaturizer(
    [
        SSLStructureFeaturizer(layers="01", pooling=("mean", "std")),
        StructureComposition(ElementProperty.from_preset("magpie")),  # magpie works on the composition
    ],
    iterate_over_entries=False,  # hand each featurizer the whole column: ours then runs batched
)
featurizer.set_n_jobs(1)
features = featurizer.featurize_dataframe(df, "structure", ignore_errors=True, return_errors=True, pbar=False)
# --8<-- [end:multiple]

# --8<-- [start:inspect]
ssl_columns = [c for c in features.columns if " NE" in c]
print(len(ssl_columns), "SSL columns,", features.shape[1] - len(ssl_columns) - 1, "other columns")
print(features.loc["CuAu (disordered)", "SSLStructureFeaturizer Exceptions"])  # the reason
assert features.loc["CuAu (disordered)", ssl_columns].isna().all()  # a NaN row, never a dropped one
assert features.drop(index="CuAu (disordered)")[ssl_columns].notna().all().all()
# --8<-- [end:inspect]

# --8<-- [start:strict]
from ssl_featurizer import FeaturizationError

try:
    SSLStructureFeaturizer().featurize_dataframe(df, "structure", pbar=False)
except FeaturizationError as err:
    print(err)  # names the row: row 'CuAu (disordered)' (position 27): structure is disordered ...
# --8<-- [end:strict]

# --8<-- [start:sitestats]
from matminer.featurizers.structure import SiteStatsFingerprint

from ssl_featurizer import SSLSiteFeaturizer

# statistics over the sites of each structure; one forward pass per structure, cached across its sites
site_stats = SiteStatsFingerprint(SSLSiteFeaturizer(layers="1"), stats=("mean", "std_dev"))
ordered = df.drop(index="CuAu (disordered)").iloc[:5]
stats = site_stats.featurize_dataframe(ordered, "structure", pbar=False)
print(stats.shape)  # 5 rows; the structure column plus 2 × 64 statistics
# --8<-- [end:sitestats]
