"""The exploratory benchmark table: featurize a task with every descriptor, score every regressor on every split,
and write the results into a folder that later runs resume from (merged under a file lock, so concurrent runs into
the same folder keep each other's scores).

Every configuration here is scored on the test rows, so picking the lowest is a choice made on test data: these
tables are exploratory, never verdicts (``ssl-featurizer bench --exploratory``). The verdict protocol, with each
family's configuration chosen on training rows only, is :func:`ssl_featurizer.bench.comparison.compare`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

from ssl_featurizer.bench.descriptors import check_spec, compute, uses_ssl
from ssl_featurizer.bench.protocol import KNOWN_REGRESSORS, REGRESSORS, evaluate_split, split_seed, splits
from ssl_featurizer.bench.report import bar_chart, markdown_table, range_curve, summarise
from ssl_featurizer.bench.tasks import Task
from ssl_featurizer.locking import exclusive_lock

__all__ = ["model_id", "run_benchmark"]


def run_benchmark(task: Task, descriptors: list[str], regressors: tuple[str, ...] = REGRESSORS,
                  seeds: int | list[int] = 3, out: str | Path | None = None, cache_dir: str | Path | None = None,
                  model: str = "default", n_jobs: int = 1, progress: bool = True,
                  resume: bool = True) -> pd.DataFrame:
    """Featurize ``task`` with every descriptor (cached), evaluate every regressor on every split.

    Args:
        task: a :class:`Task` (:func:`~ssl_featurizer.bench.comparison.load_table` or ``Task.from_dataframe``).
        descriptors: spec strings (see :mod:`ssl_featurizer.bench.descriptors`).
        regressors: any of ``krr``, ``rf``, ``gbr`` and, for strictly positive targets, ``krr_log``,
            ``gbr_l1_log`` and ``ensemble_log`` (fitted to log y; see :data:`~ssl_featurizer.bench.protocol.KNOWN_REGRESSORS`).
        seeds: number of (or list of) seeds of random 80/20 splits; ignored when the task has official folds.
        out: folder for ``results.csv``, ``summary.csv``, ``summary.md``, ``mae.png``, ``range.png``.
        cache_dir: feature cache folder (default ``<out>/features``; None and no ``out``: no cache).
        model: pretrained model for the ``ssl`` descriptors.
        n_jobs: parallel splits (joblib).
        progress: progress bar over descriptors.
        resume: reuse the scores already in ``<out>/results.csv`` for the same task data, splits and (for
            ``ssl`` descriptors) the same model weights instead of refitting them; the files in ``out`` then
            hold every descriptor scored so far, so descriptors and regressors can be added run by run.
            Results are merged with what is on disk when they are written (under a lock), so runs into the
            same ``out`` at the same time keep each other's scores.

    Returns:
        One row per requested (descriptor, regressor, split) with MAE, RMSE, R², chosen hyperparameters,
        featurization seconds per input and feature count.
    """
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    for spec in descriptors:
        check_spec(spec, task.level)
    bad = [r for r in regressors if r not in KNOWN_REGRESSORS]
    if bad:
        raise ValueError(f"unknown regressors {bad}; choose from {KNOWN_REGRESSORS}")
    if cache_dir is None and out is not None:
        cache_dir = Path(out) / "features"
    split_list = splits(task, seeds)
    weights = None
    if any(uses_ssl(spec) for spec in descriptors):
        from ssl_featurizer.models.registry import load_model

        model = load_model(model).name  # resolved once ("default" → "<name>@<version>"): every descriptor uses it
        weights = model_id(model)
    stored, earlier_seconds = _stored_results(out, task, split_list) if (resume and out is not None) else (
        pd.DataFrame(), 0.0)
    rows = []
    t_start = time.perf_counter()
    for spec in tqdm(descriptors, desc=f"bench {task.name}", disable=not progress):
        spec_weights = weights if uses_ssl(spec) else ""
        done = {} if stored.empty else {
            (r.regressor, r.split): r._asdict() for r in stored[(stored.descriptor == spec)
                                                               & (stored.weights == spec_weights)].itertuples()}
        jobs = [(reg, name, tr, te) for reg in regressors for name, tr, te in split_list if (reg, name) not in done]
        rows += [{k: v for k, v in done[reg, name].items() if k != "Index"}
                 for reg in regressors for name, _, _ in split_list if (reg, name) in done]
        if not jobs:
            continue
        X, seconds = compute(spec, task, cache_dir, model)
        scores = Parallel(n_jobs=n_jobs)(
            delayed(evaluate_split)(X, task.y, tr, te, reg, split_seed(name), task.groups)
            for reg, name, tr, te in jobs)
        for (reg, name, _, _), score in zip(jobs, scores):
            rows.append({"task": task.name, "descriptor": spec, "regressor": reg, "split": name,
                         "seconds_per_input": seconds, "n_features": X.shape[1],
                         "n_failed_inputs": int(pd.isna(X).any(axis=1).sum()), **score, "weights": spec_weights})
    results = pd.DataFrame(rows)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(out / ".lock"):  # waits while another run merges its results
            if resume:  # re-read: another run may have written to ``out`` since this one started
                stored, earlier_seconds = _stored_results(out, task, split_list)
            if not stored.empty:  # keep what earlier runs scored and this one did not ask for
                key = ["descriptor", "regressor", "split"]
                kept = stored.merge(results[key], on=key, how="left", indicator=True)
                kept = kept[kept["_merge"] == "left_only"].drop(columns="_merge")
                results_all = pd.concat([kept, results], ignore_index=True)
            else:
                results_all = results
            results_all.to_csv(out / "results.csv", index=False)
            (out / "run.json").write_text(json.dumps({
                "task": task.name, "n_rows": len(task), "level": task.level, "notes": task.notes,
                "task_fingerprint": task.fingerprint(), "splits": [s[0] for s in split_list],
                "descriptors": list(dict.fromkeys(results_all.descriptor)),
                "regressors": list(dict.fromkeys(results_all.regressor)), "model": model, "weights": weights,
                "wall_seconds": round(time.perf_counter() - t_start + earlier_seconds, 1)}, indent=1))
            summary = summarise(results_all)
            summary.to_csv(out / "summary.csv", index=False)
            (out / "summary.md").write_text(markdown_table(summary))
            bar_chart(summary, out / "mae.png")
            range_curve(summary, out / "range.png")
    return results




def model_id(model: str) -> str:
    """``<name>@<first 16 hex of the weights' sha256>``: what an ``ssl`` score was computed with."""
    from ssl_featurizer.models.registry import load_model

    loaded = load_model(model)
    return f"{loaded.name}@{loaded.sha256[:16]}"


def _stored_results(out: str | Path, task: Task, split_list: list) -> tuple[pd.DataFrame, float]:
    """Scores in ``<out>/results.csv`` valid for this task's data and splits, and the wall seconds they took.

    Empty (and 0.0) when there are none, or they belong to other data or splits, or were written before scores
    recorded their model weights.
    """
    out = Path(out)
    try:
        meta = json.loads((out / "run.json").read_text())
        stored = pd.read_csv(out / "results.csv")
    except (OSError, ValueError):
        return pd.DataFrame(), 0.0
    if meta.get("task_fingerprint") != task.fingerprint() or meta.get("splits") != [s[0] for s in split_list] \
            or "weights" not in stored:
        return pd.DataFrame(), 0.0
    stored["weights"] = stored["weights"].fillna("")
    return stored, float(meta.get("wall_seconds", 0.0))
