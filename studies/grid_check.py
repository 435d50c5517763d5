"""Does the kernel ridge grid bind? Refit benchmark scores with a grid 10× wider on every side.

The protocol grid (``ssl_featurizer.bench.protocol``: alpha 1e-3…1, gamma 0.1…1 / n_features) is small so
that every descriptor of every task can be scored on two cores. Where the inner CV picks a value at the edge
of that grid, a wider grid might have done better — and might favour one family. This script refits stored
benchmark scores (same task, splits, seeds, inner folds and model weights) with ``WIDE_KRR_GRID`` (alpha 1e-4…10,
gamma 0.03…3 / n_features) and reports, per descriptor, both MAEs and how often the wider grid chose a value
outside the protocol grid. Resumable: rows already in ``docs/figures/grid_check.csv`` are not refitted.
Writes the table between the ``grid`` markers of docs/benchmarks.md.

    python studies/grid_check.py --task kong2023_log_kvrh --regressor krr \\
        --descriptors ssl:012,ssl:012+magpie,magpie,site_stats_crystalnn+magpie
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from common import ResultRows, script_parser
from docs_blocks import write_block
from project_tasks import load_task

from ssl_featurizer.bench.descriptors import compute, uses_ssl
from ssl_featurizer.bench.protocol import (
    KRR_ALPHAS,
    KRR_GAMMA_SCALES,
    WIDE_KRR_GRID,
    evaluate_split,
    split_seed,
    splits,
)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "figures" / "grid_check.csv"
PAGE = ROOT / "docs" / "benchmarks.md"


def _params(text: str, n_features: int) -> tuple[str, float, float]:
    """``(kernel, gamma × n_features, alpha)`` from a ``best_params`` string."""
    found = dict(kv.split("=") for kv in text.split(";"))
    return found["kernel"], round(float(found["gamma"]) * n_features, 3), float(found["alpha"])


def _near(x: float, values: tuple[float, ...]) -> bool:
    """Whether ``x`` is one of ``values`` (best_params strings keep 3 significant digits)."""
    return any(abs(x - v) < 1e-2 * v for v in values)


def _inside(kernel_gamma_alpha: tuple[str, float, float]) -> bool:
    _, g, a = kernel_gamma_alpha
    return _near(g, KRR_GAMMA_SCALES) and _near(a, KRR_ALPHAS)


def check(task_name: str, descriptors: list[str], regressor: str, seeds: int, cache_dir: Path, n_jobs: int) -> None:
    from joblib import Parallel, delayed

    from ssl_featurizer.bench import model_id

    task = load_task(task_name)
    stored = pd.read_csv(ROOT / "studies" / "results" / task_name / "results.csv")
    stored["weights"] = stored["weights"].fillna("")
    weights = model_id("default")
    results = ResultRows(OUT)
    done = results.done("task", "descriptor", "regressor", "split")
    for spec in descriptors:
        mine = stored[(stored.descriptor == spec) & (stored.regressor == regressor)
                      & (stored.weights == (weights if uses_ssl(spec) else ""))].set_index("split")
        todo = [(name, tr, te) for name, tr, te in splits(task, seeds)
                if (task_name, spec, regressor, name) not in done and name in mine.index]
        if not todo:
            continue
        X, _ = compute(spec, task, cache_dir)
        wide = Parallel(n_jobs=n_jobs)(
            delayed(evaluate_split)(X, task.y, tr, te, regressor, split_seed(name), task.groups,
                                    krr_grid=WIDE_KRR_GRID) for name, tr, te in todo)
        results.add({"task": task_name, "descriptor": spec, "regressor": regressor, "split": name,
                     "weights": weights if uses_ssl(spec) else "", "n_features": X.shape[1],
                     "protocol_mae": mine.loc[name, "mae"], "protocol_params": mine.loc[name, "best_params"],
                     "wide_mae": score["mae"], "wide_params": score["best_params"]}
                    for (name, _, _), score in zip(todo, wide))
        print(f"{task_name} {spec} {regressor}: done", flush=True)


def table(rows: pd.DataFrame) -> str:
    """Per (task, descriptor, regressor): both mean MAEs and the wide grid's choices outside the protocol grid."""
    header = ("| task | descriptor | regressor | splits | protocol grid MAE | wide grid MAE | protocol choice on its edge "
              "| wide choice outside the protocol grid |")
    lines = [header, "|---|---|---|---|---|---|---|---|"]
    for (task, spec, reg), g in rows.groupby(["task", "descriptor", "regressor"], sort=False):
        proto = [_params(p, n) for p, n in zip(g.protocol_params, g.n_features)]
        wide = [_params(p, n) for p, n in zip(g.wide_params, g.n_features)]
        edges_g, edges_a = (min(KRR_GAMMA_SCALES), max(KRR_GAMMA_SCALES)), (min(KRR_ALPHAS), max(KRR_ALPHAS))
        on_edge = sum(_near(c[1], edges_g) or _near(c[2], edges_a) for c in proto)
        outside = [f"{k[:3]} γ·d={gd:g}, α={a:g}" for k, gd, a in wide if not _inside((k, gd, a))]
        lines.append(f"| {task} | {spec} | {reg} | {len(g)} | {g.protocol_mae.mean():.4g} | {g.wide_mae.mean():.4g} "
                     f"| {on_edge} of {len(g)} | {len(outside)} of {len(g)}{': ' + '; '.join(outside) if outside else ''} |")
    return "\n".join(lines)


def write_docs() -> None:
    write_block(PAGE, "grid", table(pd.read_csv(OUT)))


def main() -> None:
    parser = script_parser(__doc__, seeds=True, cache_dir=True)
    parser.add_argument("--task")
    parser.add_argument("--descriptors", default="")
    parser.add_argument("--regressor", default="krr", choices=("krr", "krr_log"))
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--docs-only", action="store_true", help="only rewrite the docs table from the CSV")
    args = parser.parse_args()
    if not args.docs_only:
        check(args.task, [d for d in args.descriptors.split(",") if d], args.regressor, args.seeds,
              Path(args.cache_dir), args.n_jobs)
    write_docs()


if __name__ == "__main__":
    main()
