"""Benchmark harness: descriptor families compared under one protocol, on your own data.

Usage::

    from ssl_featurizer.bench import compare
    report = compare(df, structure="structure", target="y", families=("ssl", "handbuilt", "peer"), out="bench")

:func:`compare` chooses each family's configuration on training rows only (nested), over repeated k-fold, and
compares families by the corrected resampled t-test with Holm-adjusted verdicts. :func:`run_benchmark` is the
exploratory table (every descriptor × regressor scored on test rows: never a verdict).
"""

from ssl_featurizer.bench.comparison import ComparisonReport, compare, load_table
from ssl_featurizer.bench.run import model_id, run_benchmark
from ssl_featurizer.bench.tasks import Task, load_matbench_file

__all__ = ["ComparisonReport", "Task", "compare", "load_matbench_file", "load_table", "model_id", "run_benchmark"]
