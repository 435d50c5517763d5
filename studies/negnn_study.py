"""NEGNN evidence: NEGNN vs the plain CGCNN baseline vs SSL descriptor + kernel ridge, on the same splits.

Every method is trained on the same training rows and scored on the same test rows: the first split of
:func:`ssl_featurizer.bench.protocol.splits` (80/20 with seed 0, or matbench's official fold 0).
Smaller training sets are nested random subsets of that split's training rows (seeded); the test rows
never change. Methods:

* ``negnn_012``: :class:`~ssl_featurizer.NEGNNRegressor` with the frozen embeddings of layers 0, 1, 2;
* ``cgcnn``: the same network and training with ``layers=None`` (element features only);
* ``krr_ssl012``: the ``ssl:012`` descriptor (mean-pooled h0‖h1‖h2) + the benchmark's kernel ridge
  (:func:`ssl_featurizer.bench.protocol.evaluate_split`, ``krr``: inner-CV kernel/alpha/gamma);
* ``mean``: the training mean (reference).

Resumable: one CSV row per finished fit in ``<out>/results.csv``; finished (task, method, n_train, split)
keys are skipped on rerun, then tables and figures are rebuilt from the CSV.

Reproduce (repo root, ``../shared/data`` present; see docs/negnn.md for the measured wall time)::

    export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MATMINER_DATA=../shared/data/matminer
    nice -n 10 python studies/negnn_study.py    # seed 0: 5 tasks at 1000 training rows; curves 100/300/1000/all
    nice -n 10 python studies/negnn_study.py --seed 1 --sizes 100 300 1000    # second split (fold 1 for matbench)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
from common import script_parser
from project_tasks import shared_data_dir

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("kong2023_formation_energy", "kong2023_hse_gap", "kong2023_log_kvrh", "kong2023_log_gvrh",
         "matbench_dielectric")
METHODS = ("mean", "krr_ssl012", "cgcnn", "negnn_012")
COLORS = {"mean": "0.5", "krr_ssl012": "tab:blue", "cgcnn": "tab:orange", "negnn_012": "tab:green"}
LABELS = {"mean": "training mean", "krr_ssl012": "ssl:012 + KRR", "cgcnn": "CGCNN (layers=None)",
          "negnn_012": "NEGNN (layers 012)"}
GNN_LAYERS = {"cgcnn": None, "negnn_012": "012"}
COLUMNS = ("task", "method", "n_train", "split", "n_test", "train_fraction", "mae", "rmse", "r2", "seconds",
           "epochs", "best_epoch", "best_val_mae", "best_params")


def _plan(args: argparse.Namespace) -> list[tuple[str, int]]:
    """(task, n_train) pairs in run order: the main comparison first, then the learning curves."""
    plan = [(t, args.main_size) for t in args.tasks]
    for task in args.curve_tasks:
        plan += [(task, n) for n in args.sizes if (task, n) not in plan]
    return plan


def _metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    return {"mae": mean_absolute_error(y, pred), "rmse": float(np.sqrt(mean_squared_error(y, pred))),
            "r2": r2_score(y, pred)}


def _fit_one(task, method: str, train: np.ndarray, test: np.ndarray, args: argparse.Namespace) -> dict:
    from ssl_featurizer.bench.descriptors import compute
    from ssl_featurizer.bench.protocol import evaluate_split
    from ssl_featurizer.negnn import NEGNNRegressor

    t0 = time.perf_counter()
    if method == "mean":
        row = _metrics(task.y[test], np.full(len(test), task.y[train].mean()))
    elif method == "krr_ssl012":
        X, _ = compute("ssl:012", task, ROOT / "studies" / "cache")
        row = evaluate_split(X, task.y, train, test, "krr", args.seed)
        row = {k: row[k] for k in ("mae", "rmse", "r2", "best_params")}
    else:
        model = NEGNNRegressor(layers=GNN_LAYERS[method], max_epochs=args.max_epochs, patience=args.patience,
                               random_state=args.seed)
        model.fit([task.inputs[i] for i in train], task.y[train])
        row = _metrics(task.y[test], model.predict([task.inputs[i] for i in test]))
        row.update(epochs=model.n_epochs_, best_epoch=model.best_epoch_,
                   best_val_mae=model.history_[model.best_epoch_ - 1]["val_mae"])
    row["seconds"] = round(time.perf_counter() - t0, 1)
    return row


def run(args: argparse.Namespace) -> pd.DataFrame:
    """Run every missing fit of the plan, appending a row to ``results.csv`` after each."""
    from project_tasks import load_task

    from ssl_featurizer.bench.protocol import splits

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv = out / "results.csv"
    done = pd.read_csv(csv) if csv.exists() else pd.DataFrame(columns=["task", "method", "n_train", "split"])
    finished = {(r.task, r.method, int(r.n_train), r.split) for r in done.itertuples()}
    tasks: dict = {}
    for task_name, size in _plan(args):
        if task_name not in tasks:
            tasks[task_name] = load_task(task_name)
        task = tasks[task_name]
        split_list = splits(task, [args.seed])  # one seeded 80/20 split, or all official folds
        split, train_all, test = split_list[args.seed % len(split_list)]  # official fold number `seed`
        n = len(train_all) if size <= 0 or size >= len(train_all) else size
        train = np.sort(np.random.default_rng(args.seed).permutation(train_all)[:n])  # nested subsets
        for method in args.methods:
            if (task_name, method, n, split) in finished:
                continue
            row = {"task": task_name, "method": method, "n_train": n, "split": split, "n_test": len(test),
                   "train_fraction": "all" if n == len(train_all) else f"{n}/{len(train_all)}",
                   **_fit_one(task, method, train, test, args)}
            print(f"{task_name:28s} n={n:5d} {method:11s} MAE {row['mae']:.4g}  R² {row['r2']:.3f}  "
                  f"{row['seconds']:.0f} s", flush=True)
            pd.DataFrame([row]).reindex(columns=COLUMNS).to_csv(csv, mode="a", header=not csv.exists(), index=False)
            finished.add((task_name, method, n, split))
    return pd.read_csv(csv)


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over splits of MAE and R² per (task, n_train, method)."""
    g = results.groupby(["task", "n_train", "method"], sort=False)
    out = g.agg(mae=("mae", "mean"), mae_std=("mae", "std"), r2=("r2", "mean"), n_test=("n_test", "mean"),
                n_splits=("split", "nunique"), epochs=("epochs", "mean"), seconds=("seconds", "mean"))
    return out.reset_index()


def markdown(summary: pd.DataFrame) -> str:
    """One table row per (task, n_train): MAE [± std over splits] (R²) of each method; the best MAE in bold."""
    methods = [m for m in METHODS if m in set(summary["method"])]
    lines = ["| task | n_train | splits | n_test | " + " | ".join(LABELS[m] for m in methods) + " |",
             "|---|---|---|---|" + "---|" * len(methods)]
    for (task, n), block in summary.groupby(["task", "n_train"], sort=False):
        r = block.set_index("method")
        best = r.loc[[m for m in methods if m != "mean" and m in r.index], "mae"].min()
        cells = []
        for m in methods:
            if m not in r.index:
                cells.append("—")
                continue
            spread = f" ± {r.loc[m, 'mae_std']:.2g}" if r.loc[m, "n_splits"] > 1 else ""
            cell = f"{r.loc[m, 'mae']:.4g}{spread} ({r.loc[m, 'r2']:.3f})"
            cells.append(f"**{cell}**" if m != "mean" and np.isclose(r.loc[m, "mae"], best) else cell)
        lines.append(f"| {task} | {n} | {int(block['n_splits'].max())} | {int(block['n_test'].iloc[0])} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def figures(summary: pd.DataFrame, out: Path, main_size: int) -> None:
    """``mae.png`` (main comparison, MAE relative to the training-mean predictor) and ``learning_curve.png``
    (every task run at three or more training-set sizes); error bars: std over splits where there are several."""
    from ssl_featurizer.plotting import pyplot, save_figure

    plt = pyplot()
    main = summary[summary["n_train"] == main_size]
    if not main.empty:
        tasks = list(dict.fromkeys(main["task"]))
        methods = [m for m in METHODS if m != "mean" and m in set(main["method"])]
        fig, ax = plt.subplots(figsize=(9, 4))
        width = 0.8 / len(methods)
        ref = main[main.method == "mean"].set_index("task")["mae"]
        for k, m in enumerate(methods):
            r = main[main.method == m].set_index("task").reindex(tasks)
            ax.bar(np.arange(len(tasks)) + k * width, r["mae"] / ref.reindex(tasks), width,
                   yerr=r["mae_std"].fillna(0) / ref.reindex(tasks), capsize=3, label=LABELS[m], color=COLORS[m])
        ax.set_xticks(np.arange(len(tasks)) + 0.4 - width / 2, [t.replace("kong2023_", "") for t in tasks])
        ax.set_ylabel("test MAE / MAE of the training mean")
        ax.legend(fontsize=8)
        save_figure(fig, out / "mae.png", f"{main_size} training structures, same splits (lower is better)", dpi=120)
    sizes = summary.groupby("task")["n_train"].nunique()
    curve = summary[summary["task"].isin(sizes[sizes >= 3].index)]
    if not curve.empty:
        tasks = list(dict.fromkeys(curve["task"]))
        fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 4), squeeze=False)
        for ax, task in zip(axes[0], tasks):
            block = curve[curve.task == task]
            for m in METHODS:
                rows = block[block.method == m].sort_values("n_train")
                if len(rows):
                    ax.errorbar(rows["n_train"], rows["mae"], yerr=rows["mae_std"].fillna(0), marker="o", capsize=3,
                                label=LABELS[m], color=COLORS[m], linestyle=":" if m == "mean" else "-")
            ax.set_xscale("log")
            ax.set_xlabel("training structures")
            ax.set_ylabel("test MAE")
            ax.set_title(task)
            ax.legend(fontsize=8)
        save_figure(fig, out / "learning_curve.png", "learning curves (nested training subsets, fixed test set)", dpi=120)


def main(argv: list[str] | None = None) -> None:
    parser = script_parser(__doc__)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--main-size", type=int, default=1000, help="training structures of the main comparison")
    parser.add_argument("--curve-tasks", nargs="+", default=["kong2023_log_kvrh", "kong2023_hse_gap"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[100, 300, 1000, 0], help="0: all training rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-epochs", type=int, default=60)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--out", default=str(ROOT / "studies" / "results" / "negnn"))
    parser.add_argument("--report-only", action="store_true", help="only rebuild tables and figures from the CSV")
    args = parser.parse_args(argv)
    os.environ.setdefault("MATMINER_DATA", str((shared_data_dir() / "matminer").resolve()))
    out = Path(args.out)
    t0 = time.perf_counter()
    results = pd.read_csv(out / "results.csv") if args.report_only else run(args)
    summary = summarise(results)
    summary.to_csv(out / "summary.csv", index=False)
    (out / "summary.md").write_text(markdown(summary))
    figures(summary, out, args.main_size)
    import torch

    meta_path = out / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {"sessions": []}
    if not args.report_only:
        meta["sessions"].append({"wall_seconds": round(time.perf_counter() - t0, 1),
                                 "finished": time.strftime("%Y-%m-%d %H:%M"),
                                 "args": {k: v for k, v in vars(args).items() if k not in ("out", "report_only")}})
    meta.update(machine=f"{platform.machine()}, {os.cpu_count()} CPU cores (shared), torch {torch.__version__}, "
                        f"{torch.get_num_threads()} torch thread(s)",
                wall_seconds_total=round(sum(x["wall_seconds"] for x in meta["sessions"]), 1),
                fit_seconds_total=round(float(results["seconds"].sum()), 1))
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    print(markdown(summary))


if __name__ == "__main__":
    main()
