"""Nested choice among log-target regressors and their averages (docs/benchmarks.md, matbench_dielectric).

``krr_log`` was picked for the refractive index after a first look at the task, and ``ensemble_log`` (kernel ridge
plus absolute-error boosting, averaged on the log scale) after the first version of this study. To bound that
post-hoc choice, this script lets the training rows alone choose the regressor, per outer split: every base learner
below is fitted to log(y) on 3 inner folds of the training rows, and each single learner and each average of
learners in :data:`COMBOS` (mean of log predictions, i.e. a geometric mean) gets an inner MAE on the original
scale from those out-of-fold predictions. The combination with the lowest inner MAE is the split's choice; the
base learners refitted on all training rows then give its test MAE. The test rows never influence the choice.

Base learners (all on standardised features, fitted to log y):

- ``krr``: the protocol's kernel ridge (its own inner CV over kernel, gamma, alpha);
- ``gbr``: scikit-learn's ``HistGradientBoostingRegressor`` with its defaults (squared loss);
- ``gbr_sq`` / ``gbr_l1``: the regularised settings of :data:`~ssl_featurizer.bench.protocol.GBR_L1` with a
  squared / an absolute-error loss;
- ``mlp1`` / ``mlp10``: a 256-128 perceptron with L2 penalty 1 / 10 and early stopping.

Writes ``studies/results/<task>/regressor_selection.csv`` (every split × combination: inner and test MAE, the
choice) and the table between the ``regressors`` markers of docs/benchmarks.md.

    MATMINER_DATA=../shared/data/matminer python studies/regressor_selection.py \\
        --descriptors ssl:012:mean-density+magpie,symmetry_density+magpie
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from common import script_parser
from docs_blocks import picks, write_block
from project_tasks import load_task

from ssl_featurizer.bench.descriptors import compute
from ssl_featurizer.bench.protocol import GBR_L1, make_model, split_seed, splits

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "benchmarks.md"
BASES = ("krr", "gbr", "gbr_sq", "gbr_l1", "mlp1", "mlp10")
COMBOS = ([(b,) for b in BASES] + [(a, b) for i, a in enumerate(BASES) for b in BASES[i + 1:]]
          + [("krr", g, m) for m in ("mlp1", "mlp10") for g in ("gbr_sq", "gbr_l1")] + [BASES])


def base_learner(name: str, seed: int) -> Any:
    """An unfitted base learner (to be fitted to log y)."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.neural_network import MLPRegressor

    if name == "krr":
        return make_model("krr", seed)
    if name == "gbr_l1":
        return make_model("gbr_l1_log", seed).regressor  # the protocol's pipeline, without its log transform
    pipeline = make_model("gbr", seed)  # imputation, scaling, default boosting
    if name == "gbr_sq":
        pipeline.steps[-1] = ("gbr", HistGradientBoostingRegressor(**{**GBR_L1, "loss": "squared_error"},
                                                                   random_state=seed))
    elif name in ("mlp1", "mlp10"):
        pipeline.steps[-1] = ("mlp", MLPRegressor(hidden_layer_sizes=(256, 128), alpha=float(name[3:]),
                                                  early_stopping=True, n_iter_no_change=20, max_iter=400,
                                                  random_state=seed))
    return pipeline


def _log_predictions(X: np.ndarray, log_y: np.ndarray, train: np.ndarray, test: np.ndarray,
                     seed: int) -> dict[str, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # perceptron convergence notices
        return {b: base_learner(b, seed).fit(X[train], log_y[train]).predict(X[test]) for b in BASES}


def one_split(descriptor: str, X: np.ndarray, y: np.ndarray, split: str, train: np.ndarray, test: np.ndarray,
              seed: int, inner_folds: int = 3) -> list[dict[str, Any]]:
    """Every combination's inner MAE (training rows only) and test MAE on one outer split, and the choice."""
    from sklearn.model_selection import KFold

    log_y = np.log(y)
    oof = {b: np.zeros(len(train)) for b in BASES}
    for itr, ite in KFold(inner_folds, shuffle=True, random_state=seed).split(train):
        for b, p in _log_predictions(X, log_y, train[itr], train[ite], seed).items():
            oof[b][ite] = p
    on_test = _log_predictions(X, log_y, train, test, seed)
    rows = [{"descriptor": descriptor, "split": split, "combo": "+".join(c),
             "inner_mae": float(np.abs(np.exp(np.mean([oof[b] for b in c], axis=0)) - y[train]).mean()),
             "test_mae": float(np.abs(np.exp(np.mean([on_test[b] for b in c], axis=0)) - y[test]).mean())}
            for c in COMBOS]
    best = min(range(len(rows)), key=lambda i: rows[i]["inner_mae"])
    for i, row in enumerate(rows):
        row["selected"] = i == best
    print(descriptor, split, rows[best]["combo"], f"{rows[best]['test_mae']:.4f}", flush=True)
    return rows


def table(df: pd.DataFrame) -> str:
    header = ("| descriptor | nested choice: test MAE | picks | fixed krr | fixed krr+gbr_l1 "
              "| best fixed combination (hindsight) |")
    lines = [header, "|---|---|---|---|---|---|"]
    for descriptor, g in df.groupby("descriptor", sort=False):
        chosen = g[g.selected]
        fixed = g.groupby("combo").test_mae.agg(["mean", "std"])
        hindsight = fixed["mean"].idxmin()
        lines.append(f"| {descriptor} | **{chosen.test_mae.mean():.4f} ± {chosen.test_mae.std():.3f}** | "
                     f"{picks(chosen.combo)} | "
                     f"{fixed.loc['krr', 'mean']:.4f} | {fixed.loc['krr+gbr_l1', 'mean']:.4f} | "
                     f"{hindsight} {fixed.loc[hindsight, 'mean']:.4f} |")
    return "\n".join(lines)


def main() -> None:
    from joblib import Parallel, delayed

    parser = script_parser(__doc__, seeds=True, cache_dir=True)
    parser.add_argument("--task", default="matbench_dielectric")
    parser.add_argument("--descriptors", default="ssl:012:mean-density+magpie,symmetry_density+magpie")
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--docs", action="store_true", help="write the table into docs/benchmarks.md")
    args = parser.parse_args()
    task = load_task(args.task)
    if not np.all(task.y > 0):
        raise SystemExit(f"{args.task}: the log-target regressors need a strictly positive target")
    out = ROOT / "studies" / "results" / args.task / "regressor_selection.csv"
    done = pd.read_csv(out) if out.exists() else pd.DataFrame(columns=["descriptor"])
    descriptors = [d for d in args.descriptors.split(",") if d not in set(done.descriptor)]
    jobs = []
    for descriptor in descriptors:
        X, _ = compute(descriptor, task, args.cache_dir)
        jobs += [(descriptor, X, task.y, name, tr, te, split_seed(name))
                 for name, tr, te in splits(task, args.seeds)]
    rows = [row for split_rows in Parallel(n_jobs=args.n_jobs)(delayed(one_split)(*job) for job in jobs)
            for row in split_rows]
    df = done
    if rows:  # only new descriptors are written (a CSV round trip would perturb the stored floats' last digit)
        df = pd.concat([done, pd.DataFrame(rows)], ignore_index=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(out, index=False)
    print(table(df))
    if args.docs:
        write_block(PAGE, "regressors", table(df))


if __name__ == "__main__":
    main()
