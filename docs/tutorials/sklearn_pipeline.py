"""Tutorial: the featurizer as the first step of a scikit-learn Pipeline, tuned with GridSearchCV.

Runs in seconds on the 27 built-in crystals; the target is each crystal's density, a property every
structure has, so no data file is needed. Swap in your own DataFrame of structures and targets.
"""

# --8<-- [start:data]
import pandas as pd

from ssl_featurizer.examples import example_structures

crystals = example_structures()  # name -> pymatgen Structure (27 real crystals)
df = pd.DataFrame({"structure": list(crystals.values())}, index=list(crystals))
df["density"] = [s.density for s in df["structure"]]  # g/cm³
# --8<-- [end:data]

# --8<-- [start:pipeline]
from sklearn.kernel_ridge import KernelRidge
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ssl_featurizer import SSLStructureFeaturizer

pipe = Pipeline([
    ("ssl", SSLStructureFeaturizer()),  # structures in, a float64 matrix out
    ("scale", StandardScaler()),
    ("krr", KernelRidge(kernel="rbf")),
])
# --8<-- [end:pipeline]

# --8<-- [start:search]
grid = {
    "ssl__layers": ["0", "01", "012"],  # how many hops of neighbours the descriptor sees
    "ssl__pooling": [("mean",), ("mean", "std")],
    "krr__alpha": [1e-2, 1e-1],
}
search = GridSearchCV(pipe, grid, cv=KFold(3, shuffle=True, random_state=0), scoring="neg_mean_absolute_error")
search.fit(df["structure"], df["density"])
print("best parameters:", search.best_params_)
print(f"cross-validated MAE: {-search.best_score_:.3f} g/cm³")
# --8<-- [end:search]

# --8<-- [start:results]
results = pd.DataFrame(search.cv_results_)
results["pooling"] = results["param_ssl__pooling"].map("+".join)
table = results.pivot_table(index="param_ssl__layers", columns="pooling", values="mean_test_score", aggfunc="max")
print((-table).round(3))  # MAE of the best alpha for every (layers, pooling) pair

best = search.best_estimator_
print(best.named_steps["ssl"].get_feature_names_out()[:3])  # e.g. ['mean NE0_0' 'mean NE0_1' 'mean NE0_2']
prediction = best.predict(df["structure"].iloc[:2])
# --8<-- [end:results]
assert prediction.shape == (2,)
