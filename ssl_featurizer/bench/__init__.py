"""Benchmark harness: our descriptors against matminer's hand-built ones under one protocol.

Usage::

    from ssl_featurizer.bench import Task, run_benchmark
    run_benchmark(Task.from_dataframe(df, "structure", "target"), ["ssl:012", "magpie"], out="bench")
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pandas as pd

from ssl_featurizer.bench.descriptors import check_spec, compute
from ssl_featurizer.bench.protocol import REGRESSORS, evaluate_split, splits
from ssl_featurizer.bench.report import bar_chart, markdown_table, range_curve, summarise
from ssl_featurizer.bench.tasks import Task, load_task

__all__ = ["Task", "load_task", "run_benchmark"]


def run_benchmark(task: Task, descriptors: list[str], regressors: tuple[str, ...] = REGRESSORS,
                  seeds: int | list[int] = 3, out: str | Path | None = None, cache_dir: str | Path | None = None,
                  model: str = "default", n_jobs: int = 1, progress: bool = True) -> pd.DataFrame:
    """Featurize ``task`` with every descriptor (cached), evaluate every regressor on every split.

    Args:
        task: a :class:`Task` (``load_task(name)`` or ``Task.from_dataframe``).
        descriptors: spec strings (see :mod:`ssl_featurizer.bench.descriptors`).
        regressors: any of ``krr``, ``rf``, ``gbr``.
        seeds: number of (or list of) seeds of random 80/20 splits; ignored when the task has official folds.
        out: folder for ``results.csv``, ``summary.csv``, ``summary.md``, ``mae.png``, ``range.png``.
        cache_dir: feature cache folder (default ``<out>/features``; None and no ``out``: no cache).
        model: pretrained model for the ``ssl`` descriptors.
        n_jobs: parallel splits (joblib).
        progress: progress bar over descriptors.

    Returns:
        One row per (descriptor, regressor, split) with MAE, RMSE, R², chosen hyperparameters,
        featurization seconds per input and feature count.
    """
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    for spec in descriptors:
        check_spec(spec, task.level)
    bad = [r for r in regressors if r not in REGRESSORS]
    if bad:
        raise ValueError(f"unknown regressors {bad}; choose from {REGRESSORS}")
    if cache_dir is None and out is not None:
        cache_dir = Path(out) / "features"
    split_list = splits(task, seeds)
    rows = []
    t_start = time.perf_counter()
    for spec in tqdm(descriptors, desc=f"bench {task.name}", disable=not progress):
        X, seconds = compute(spec, task, cache_dir, model)
        jobs = [(reg, name, tr, te) for reg in regressors for name, tr, te in split_list]
        scores = Parallel(n_jobs=n_jobs)(
            delayed(evaluate_split)(X, task.y, tr, te, reg, int(re.sub(r"\D", "", name) or 0), task.groups)
            for reg, name, tr, te in jobs)
        for (reg, name, _, _), score in zip(jobs, scores):
            rows.append({"task": task.name, "descriptor": spec, "regressor": reg, "split": name,
                         "seconds_per_input": seconds, "n_features": X.shape[1],
                         "n_failed_inputs": int(pd.isna(X).any(axis=1).sum()), **score})
    results = pd.DataFrame(rows)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        results.to_csv(out / "results.csv", index=False)
        summary = summarise(results)
        summary.to_csv(out / "summary.csv", index=False)
        (out / "summary.md").write_text(markdown_table(summary))
        bar_chart(summary, out / "mae.png")
        range_curve(summary, out / "range.png")
        (out / "run.json").write_text(json.dumps({
            "task": task.name, "n_rows": len(task), "level": task.level, "notes": task.notes,
            "splits": [s[0] for s in split_list], "descriptors": descriptors, "regressors": list(regressors),
            "model": model, "wall_seconds": round(time.perf_counter() - t_start, 1)}, indent=1))
    return results
