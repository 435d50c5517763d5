"""Tutorial: the benchmark harness (Python API and command line) on a small task of your own.

Runs in seconds: the task is the density of the 27 built-in crystals. The same calls run any labelled file
(``load_table("data.json.gz", target="y")``).
"""

# --8<-- [start:task]
import pandas as pd

from ssl_featurizer.bench import Task, run_benchmark
from ssl_featurizer.examples import example_structures

crystals = example_structures()
df = pd.DataFrame({"structure": list(crystals.values()), "density": [s.density for s in crystals.values()]})
task = Task.from_dataframe(df, "structure", "density", name="density_builtin")
# --8<-- [end:task]

# --8<-- [start:run]
results = run_benchmark(
    task,
    descriptors=["ssl:0", "ssl:01", "ssl:012", "magpie", "ssl:01+magpie"],
    regressors=("krr",),  # kernel ridge; add "rf" and "gbr" for second opinions
    seeds=2,  # two random 80/20 splits
    out="bench_density",  # results.csv, summary.csv/.md, mae.png, range.png, run.json
    progress=False,
)
print(results[["descriptor", "regressor", "split", "mae", "r2", "n_features"]].round(3))
# --8<-- [end:run]

# --8<-- [start:summary]
from pathlib import Path

from ssl_featurizer.bench.report import markdown_table, summarise

print(markdown_table(summarise(results)))  # the same table as bench_density/summary.md
assert {"results.csv", "summary.md", "mae.png", "range.png"} <= {p.name for p in Path("bench_density").iterdir()}
# --8<-- [end:summary]

# --8<-- [start:cli]
from matminer.utils.io import store_dataframe_as_json

from ssl_featurizer.cli import main

# any matminer JSON dataframe with a "structure" column and one target column is a task
store_dataframe_as_json(df, "density.json.gz", compression="gz")
# the same structures: the features cached by the run above are reused, nothing is recomputed
exit_code = main(["bench", "--task", "density.json.gz", "--descriptors", "ssl:01,magpie", "--regressors", "krr",
                  "--seeds", "2", "--out", "bench_cli", "--cache-dir", "bench_density/features", "--exploratory"])
assert exit_code == 0 and Path("bench_cli/summary.md").exists()
# --8<-- [end:cli]
