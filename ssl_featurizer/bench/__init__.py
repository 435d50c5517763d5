"""Benchmark harness: our descriptors against matminer's hand-built ones under one protocol.

Usage::

    from ssl_featurizer.bench import Task, run_benchmark
    run_benchmark(Task.from_dataframe(df, "structure", "target"), ["ssl:012", "magpie"], out="bench")
"""

from ssl_featurizer.bench.run import model_id, run_benchmark
from ssl_featurizer.bench.tasks import Task, load_task

__all__ = ["Task", "load_task", "model_id", "run_benchmark"]
