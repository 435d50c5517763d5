"""What do our SSL vectors lack on the elastic tasks? A probe of cell volume per atom (docs/benchmarks.md).

Two measurements per task, neither of which looks at a test split:

1. **Is volume encoded?** 5-fold cross-validated R² and MAE of a linear ridge read-out of log(volume per atom)
   from each descriptor (``StandardScaler`` + ``RidgeCV``).
2. **Would an explicit volume help?** The kernel ridge inner-CV MAE (protocol grid, 3 inner folds) on the
   training rows of the seed-0 split for ``ssl:012`` alone, with one extra column log(volume per atom), and,
   as references, the strongest hand-built concatenations.

Writes ``docs/figures/density_probe.csv`` and the table between the ``density`` markers of docs/benchmarks.md.

    python studies/density_probe.py --tasks kong2023_log_kvrh,kong2023_log_gvrh
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from common import script_parser
from docs_blocks import write_block
from project_tasks import load_task

from ssl_featurizer.bench.descriptors import compute
from ssl_featurizer.bench.protocol import make_model, splits

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "figures" / "density_probe.csv"
PAGE = ROOT / "docs" / "benchmarks.md"
READOUT = ("ssl:0", "ssl:01", "ssl:012", "ssl:012345", "magpie", "site_stats_crystalnn")
KRR = ("ssl:012", "ssl:012+log_vpa", "ssl:012:mean-density", "ssl:012+magpie", "magpie+log_vpa",
       "site_stats_crystalnn+magpie", "symmetry_density+magpie")


def _features(spec: str, task, cache_dir: Path, log_vpa: np.ndarray) -> np.ndarray:
    parts = [p for p in spec.split("+") if p != "log_vpa"]
    blocks = [compute("+".join(parts), task, cache_dir)[0]] if parts else []
    if "log_vpa" in spec.split("+"):
        blocks.append(log_vpa[:, None])
    return np.hstack(blocks)


def probe(task_name: str, cache_dir: Path) -> list[dict]:
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    task = load_task(task_name)
    log_vpa = np.log([s.volume / len(s) for s in task.inputs])
    rows = []
    for spec in READOUT:
        X = _features(spec, task, cache_dir, log_vpa)
        pred = cross_val_predict(make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13))), X, log_vpa,
                                 cv=KFold(5, shuffle=True, random_state=0))
        rows.append({"task": task_name, "measure": "log_vpa_readout", "descriptor": spec,
                     "r2": 1 - np.var(pred - log_vpa) / np.var(log_vpa), "mae": float(np.abs(pred - log_vpa).mean())})
    _, train, _ = splits(task, [0])[0]
    for spec in KRR:
        X = _features(spec, task, cache_dir, log_vpa)
        krr = make_model("krr", 0).fit(X[train], task.y[train])[-1]
        rows.append({"task": task_name, "measure": "krr_inner_cv", "descriptor": spec, "r2": np.nan,
                     "mae": min(krr.cv_results_.values())})
        print(task_name, spec, rows[-1]["mae"], flush=True)
    return rows


def table(rows: pd.DataFrame) -> str:
    tasks = list(dict.fromkeys(rows.task))
    read = rows[rows.measure == "log_vpa_readout"].pivot(index="descriptor", columns="task", values="r2")
    krr = rows[rows.measure == "krr_inner_cv"].pivot(index="descriptor", columns="task", values="mae")
    out = ["| descriptor | " + " | ".join(f"log(V/atom) read-out R², {t}" for t in tasks) + " |",
           "|---|" + "---|" * len(tasks)]
    out += [f"| {d} | " + " | ".join(f"{read.loc[d, t]:.3f}" for t in tasks) + " |" for d in READOUT]
    out += ["", "| descriptor | " + " | ".join(f"KRR inner-CV MAE, {t}" for t in tasks) + " |",
            "|---|" + "---|" * len(tasks)]
    out += [f"| {d} | " + " | ".join(f"{krr.loc[d, t]:.4f}" for t in tasks) + " |" for d in KRR]
    return "\n".join(out)


def main() -> None:
    args = script_parser(__doc__, tasks="kong2023_log_kvrh,kong2023_log_gvrh", cache_dir=True).parse_args()
    from ssl_featurizer.bench import model_id

    rows = [r for t in args.tasks.split(",") for r in probe(t, Path(args.cache_dir))]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows).assign(weights=model_id("default"))
    frame.to_csv(OUT, index=False)
    write_block(PAGE, "density", f"SSL rows: `{frame.weights[0]}`.\n\n{table(frame)}")


if __name__ == "__main__":
    main()
