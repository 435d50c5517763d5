"""Which applicability-domain score ranks a model's real errors best? Measured on one labelled task.

A kernel ridge model (:class:`ssl_featurizer.bench.krr.KernelRidgeCV`, tuned by inner CV on the training rows) is
fitted on our descriptor (layers ``012``, mean+std pooling, standardised) for each of ``--splits`` random 80/20
splits of ``kong2023_log_kvrh``. Every test row then gets four scores, all computed from the training rows only:

* ``knn:ssl`` — :class:`ssl_featurizer.domain.KNNDistanceDomain` (k=5) on our descriptor;
* ``knn:magpie`` — the same on matminer's magpie (``ElementProperty``), a hand-built descriptor;
* ``spread:bootstrap`` — standard deviation of the predictions of 10 kernel ridge models fitted on bootstrap
  resamples of the training rows (the tuned kernel, gamma and alpha);
* ``std:gp`` — the predictive standard deviation of a ``GaussianProcessRegressor`` (constant × RBF + white
  noise, fitted by maximum likelihood) on our descriptor.

For each score: Spearman's rho between the score and the absolute error of the kernel ridge prediction, and the
mean absolute error of the test rows in the score's top decile vs its bottom decile; for the kNN scores also the
MAE of the rows flagged out of domain (score > 1, the 95th percentile of the training rows' leave-one-out
distances) vs in domain. Mean ± standard deviation over the splits.

The task file is decoded here (``Structure.from_dict`` per row, through ``ssl_featurizer.readers``), not with
monty's decoder. Writes ``docs/figures/domain_scores.csv``, ``docs/figures/domain_error_bins.png`` and the block
``domain`` of ``docs/similarity.md``; descriptors are cached in ``studies/cache/domain/``.

    OMP_NUM_THREADS=1 python studies/domain_study.py
"""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from common import script_parser
from docs_blocks import write_block
from project_tasks import shared_data_dir

ROOT = Path(__file__).resolve().parents[1]
DATA = shared_data_dir() / "tasks"
CACHE = ROOT / "studies" / "cache" / "domain"
FIGURES = ROOT / "docs" / "figures"
PAGE = ROOT / "docs" / "similarity.md"
SCORES = ("knn:ssl", "knn:magpie", "spread:bootstrap", "std:gp")


def load_task(name: str, target: str) -> tuple[list, np.ndarray, list[str]]:
    """Structures, targets and ids of a matminer ``orient="split"`` JSON task file, decoded row by row."""
    from ssl_featurizer.readers import structure_from_object

    with gzip.open(DATA / f"{name}.json.gz", "rt") as fh:
        table = json.load(fh)
    columns = table["columns"]
    s_col, y_col, id_col = columns.index("structure"), columns.index(target), columns.index("id")
    structures, y, ids = [], [], []
    for row in table["data"]:
        structure, error = structure_from_object(row[s_col])
        if structure is None:
            raise ValueError(f"{name} row {row[id_col]}: {error}")
        structures.append(structure)
        y.append(float(row[y_col]))
        ids.append(str(row[id_col]))
    return structures, np.asarray(y), ids


def descriptors(name: str, structures: list) -> dict[str, np.ndarray]:
    """Our descriptor (012, mean+std) and magpie, cached."""
    CACHE.mkdir(parents=True, exist_ok=True)
    out = {}
    for kind in ("ssl", "magpie"):
        path = CACHE / f"{name}_{kind}.npy"
        if not path.exists():
            t0 = time.process_time()
            if kind == "ssl":
                from ssl_featurizer import SSLStructureFeaturizer

                X = SSLStructureFeaturizer(layers="012", pooling=("mean", "std"), ignore_errors=True).fit_transform(
                    structures)
            else:
                from matminer.featurizers.composition import ElementProperty

                magpie = ElementProperty.from_preset("magpie", impute_nan=True)
                magpie.set_n_jobs(1)  # matminer's default process pool is slower here than one process
                X = np.array(magpie.featurize_many([s.composition for s in structures], ignore_errors=True,
                                                   pbar=False), dtype=float)
            np.save(path, X)
            print(f"{kind}: {X.shape} in {time.process_time() - t0:.0f} CPU s", flush=True)
        out[kind] = np.load(path)
    return out


def standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mean, scale = train.mean(0), train.std(0)
    scale[scale == 0] = 1.0
    return [(a - mean) / scale for a in (train, *others)]


def split_scores(X: dict[str, np.ndarray], y: np.ndarray, train: np.ndarray, test: np.ndarray,
                 seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Absolute errors of the kernel ridge model on ``test`` and every domain score of the test rows."""
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
    from sklearn.kernel_ridge import KernelRidge

    from ssl_featurizer.bench.krr import KernelRidgeCV
    from ssl_featurizer.domain import KNNDistanceDomain

    s_tr, s_te = standardise(X["ssl"][train], X["ssl"][test])
    model = KernelRidgeCV(random_state=seed).fit(s_tr, y[train])
    error = np.abs(model.predict(s_te) - y[test])
    scores = {"knn:ssl": KNNDistanceDomain(n_neighbors=5).fit(X["ssl"][train]).domain_score(X["ssl"][test]),
              "knn:magpie": KNNDistanceDomain(n_neighbors=5).fit(X["magpie"][train]).domain_score(X["magpie"][test])}
    p = model.best_params_
    rng = np.random.default_rng(seed)
    preds = []
    for _ in range(10):
        boot = rng.integers(0, len(train), len(train))
        krr = KernelRidge(kernel=p["kernel"], gamma=p["gamma"], alpha=p["alpha"])
        mean = y[train][boot].mean()
        preds.append(krr.fit(s_tr[boot], y[train][boot] - mean).predict(s_te) + mean)
    scores["spread:bootstrap"] = np.std(preds, axis=0)
    kernel = ConstantKernel(1.0) * RBF(length_scale=np.sqrt(s_tr.shape[1])) + WhiteKernel(0.1)
    gp = GaussianProcessRegressor(kernel=kernel, normalize_y=True, random_state=seed).fit(s_tr, y[train])
    scores["std:gp"] = gp.predict(s_te, return_std=True)[1]
    return error, scores


def summarise(error: np.ndarray, score: np.ndarray) -> dict[str, float]:
    from scipy.stats import spearmanr

    order = np.argsort(score, kind="stable")
    tenth = max(1, len(score) // 10)
    row = {"spearman": float(spearmanr(score, error).statistic), "mae": float(error.mean()),
           "mae_bottom_decile": float(error[order[:tenth]].mean()),
           "mae_top_decile": float(error[order[-tenth:]].mean())}
    row["top_over_bottom"] = row["mae_top_decile"] / row["mae_bottom_decile"]
    return row


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("--task", default="kong2023_log_kvrh")
    parser.add_argument("--target", default="log10_kvrh")
    parser.add_argument("--splits", type=int, default=5, help="random 80/20 splits")
    args = parser.parse_args()
    from sklearn.model_selection import ShuffleSplit

    structures, y, _ = load_task(args.task, args.target)
    X = descriptors(args.task, structures)
    ok = np.isfinite(X["ssl"]).all(1) & np.isfinite(X["magpie"]).all(1)
    X, y = {k: v[ok] for k, v in X.items()}, y[ok]
    print(f"{args.task}: {ok.sum()} of {len(ok)} rows with both descriptors", flush=True)
    rows, bins = [], []
    for split, (train, test) in enumerate(ShuffleSplit(args.splits, test_size=0.2, random_state=0).split(y)):
        t0 = time.process_time()
        error, scores = split_scores(X, y, train, test, split)
        for name in SCORES:
            row = {"task": args.task, "split": split, "score": name, **summarise(error, scores[name])}
            if name.startswith("knn:"):
                out = scores[name] > 1
                row.update(share_out=float(out.mean()), mae_out=float(error[out].mean()) if out.any() else np.nan,
                           mae_in=float(error[~out].mean()))
            rows.append(row)
            deciles = pd.qcut(pd.Series(scores[name]).rank(method="first"), 10, labels=False)
            bins += [{"score": name, "split": split, "decile": int(d), "mae": float(e.mean())}
                     for d, e in pd.Series(error).groupby(deciles.to_numpy())]
        print(f"split {split}: {time.process_time() - t0:.0f} CPU s; "
              + ", ".join(f"{r['score']} rho {r['spearman']:.3f}" for r in rows[-len(SCORES):]), flush=True)
    frame = pd.DataFrame(rows)
    FIGURES.mkdir(parents=True, exist_ok=True)
    frame.to_csv(FIGURES / "domain_scores.csv", index=False)
    figure(pd.DataFrame(bins), args.task, FIGURES / "domain_error_bins.png")
    write_block(PAGE, "domain", table(frame, args.task, int(ok.sum())))
    print(table(frame, args.task, int(ok.sum())))


def table(frame: pd.DataFrame, task: str, n: int) -> str:
    def pm(values: pd.Series, fmt: str = ".3f") -> str:
        return f"{values.mean():{fmt}} ± {values.std():{fmt}}"

    lines = [("| score | Spearman ρ (score, abs. error) | MAE, bottom decile | MAE, top decile | top / bottom | "
              "flagged out of domain | MAE out / in |"), "|---|---|---|---|---|---|---|"]
    means = frame.groupby("score", sort=False).spearman.mean()
    for name, g in frame.groupby("score", sort=False):
        flagged = f"{100 * g.share_out.mean():.1f} %" if name.startswith("knn:") else "–"
        ratio = pm(g.mae_out / g.mae_in, ".2f") if name.startswith("knn:") else "–"
        lines.append(f"| {name} | {pm(g.spearman)} | {pm(g.mae_bottom_decile)} | {pm(g.mae_top_decile)} | "
                     f"{pm(g.top_over_bottom, '.2f')} | {flagged} | {ratio} |")
    best = means.idxmax()
    return ("\n".join(lines) + f"\n\n{task} ({n:,} rows), {frame.split.nunique()} random 80/20 splits, kernel ridge "
            f"on our descriptor (layers 012, mean+std); test-set MAE {pm(frame.groupby('split').mae.first())}. "
            f"Ranks the errors best (highest mean Spearman ρ): **{best}**.")


def figure(bins: pd.DataFrame, task: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, g in bins.groupby("score", sort=False):
        mean = g.groupby("decile").mae.mean()
        ax.plot(mean.index + 1, mean.to_numpy(), marker="o", label=name)
    ax.set_xlabel("decile of the score (1 = lowest, 10 = highest)")
    ax.set_ylabel("mean absolute error of the test rows")
    ax.set_title(f"{task}: error against domain score", fontsize=10)
    ax.set_xticks(range(1, 11))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
