"""Featurize Dask bags and DataFrames of structures on a ``dask.distributed`` cluster.

The model never travels in the task graph: tasks carry only the featurizer's parameters (a few
hundred bytes) and each worker process loads the weights once, from its own installation, checking
the model's fingerprint against the client's (:func:`ssl_featurizer.load_model` caches per process).
:func:`register_model` preloads the model on every worker (and on workers that join later) with a
``WorkerPlugin``, so the first tasks do not pay for loading and a worker with other weights fails
at registration, not in the middle of a run.

Example (any cluster: ``LocalCluster``, ``dask-jobqueue``, Kubernetes, a scheduler address)::

    from dask.distributed import Client
    import dask.bag as db
    from ssl_featurizer import SSLStructureFeaturizer
    from ssl_featurizer.dask_featurize import featurize_bag, register_model

    client = Client("tcp://scheduler:8786")          # or Client(LocalCluster(...))
    featurizer = SSLStructureFeaturizer(layers="012", ignore_errors=True)
    register_model(client, featurizer.model)
    lines = db.read_text("structures.jsonl.gz", blocksize=None).repartition(64)
    rows = featurize_bag(lines, featurizer)          # lazy: a bag of float64 vectors
    X = np.stack(rows.compute())

Fault tolerance: when a worker process dies mid-run (killed, out of memory), the scheduler
recomputes the partitions it held on the other workers; a partition's rows are returned once,
whichever attempt produced them (they are equal). Every partition that starts logs an event, so
:func:`retried_partitions` tells which partitions were computed more than once (it also logs a
warning for each).

Elements may be pymatgen ``Structure`` objects, ``Structure.as_dict()`` dicts, corpus-format dicts
(``{"lattice", "species", "frac"}``) or either as JSON strings — JSON is the portable choice, and
the only one that survives a Dask DataFrame, which turns object columns into strings unless
``dask.config.set({"dataframe.convert-string": False})``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ssl_featurizer.featurizers.base import check_errors
from ssl_featurizer.featurizers.structure import SSLStructureFeaturizer
from ssl_featurizer.readers import structure_from_object

ERRORS_COLUMN = "ssl_featurizer_errors"
#: Topic of the worker events logged when a partition starts (see :func:`retried_partitions`).
EVENT_TOPIC = "ssl-featurizer"

logger = logging.getLogger(__name__)


def _plugin_class() -> type:
    from distributed.diagnostics.plugin import WorkerPlugin

    class ModelPlugin(WorkerPlugin):
        """Load one pretrained model into every worker process when it starts (or now)."""

        def __init__(self, model: str, fingerprint: str):
            self.model = model
            self.fingerprint = fingerprint
            self.name = f"ssl-featurizer-model:{model}"  # one plugin per model; re-registering replaces it

        def setup(self, worker: Any) -> None:
            from ssl_featurizer.models.registry import load_model

            load_model(self.model, expected_fingerprint=self.fingerprint)

    return ModelPlugin


def register_model(client: Any, model: str = "default") -> str:
    """Preload ``model`` on every worker of ``client``, now and on workers that join later.

    Args:
        client: a ``distributed.Client``.
        model: model name or directory (as for the featurizers); directories must exist on the workers.

    Returns:
        The model's fingerprint (weights, graph settings, element table) as loaded on the client; every worker
        checks it has the same.

    Raises:
        ModelError: (from a worker) when its installed weights differ from the client's.
    """
    from ssl_featurizer.models.registry import load_model

    fingerprint = load_model(model).fingerprint
    plugin = _plugin_class()(model, fingerprint)
    register = getattr(client, "register_plugin", None) or client.register_worker_plugin
    register(plugin, name=plugin.name)
    return fingerprint


def _fitted(featurizer: SSLStructureFeaturizer) -> SSLStructureFeaturizer:
    """The featurizer with its model pinned by fingerprint (fitted on the client if it was not)."""
    if not isinstance(featurizer, SSLStructureFeaturizer):
        raise TypeError(f"expected an SSLStructureFeaturizer, got {type(featurizer).__name__}")
    if getattr(featurizer, "fitted_model_", None) != featurizer.model:
        from sklearn.base import clone

        featurizer = clone(featurizer).fit()
    return featurizer


def featurize_objects(featurizer: SSLStructureFeaturizer, objects: list) -> tuple[np.ndarray, list[str | None]]:
    """Rows and per-entry errors for structures given in any accepted form (the per-partition work).

    Returns:
        ``(rows, errors)``: ``(len(objects), n_features)`` float64 with NaN rows where ``errors[i]``
        is not None.
    """
    parsed = [structure_from_object(o) for o in objects]
    readable = [i for i, (s, _) in enumerate(parsed) if s is not None]
    rows = np.full((len(objects), len(featurizer.feature_labels())), np.nan)
    errors: list[str | None] = [e for _, e in parsed]
    if readable:
        done, failed = featurizer.featurize_with_errors([parsed[i][0] for i in readable])
        rows[readable] = done
        for i, err in zip(readable, failed):
            errors[i] = err
    return rows, errors


def _note_start(n_entries: int) -> None:
    """Log a ``partition-start`` event on the scheduler (nothing outside a Dask worker)."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return
    worker.log_event(EVENT_TOPIC, {"action": "partition-start", "key": str(worker.get_current_task()),
                                   "worker": worker.address, "n": n_entries})


def retried_partitions(client: Any) -> dict[str, int]:
    """Partitions computed more than once (their worker died or left mid-run), with the number of starts.

    Reads the ``partition-start`` events the workers logged (the scheduler keeps the most recent
    ones, 100,000 by default: ``distributed.admin.low-level-log-length``) and logs a warning per
    retried partition. A retried partition's rows are still in the result exactly once.

    Args:
        client: the ``distributed.Client`` that ran the computation.
    """
    from collections import Counter

    starts = Counter(msg["key"] for _, msg in client.get_events(EVENT_TOPIC)
                     if isinstance(msg, dict) and msg.get("action") == "partition-start")
    retried = {key: n for key, n in starts.items() if n > 1}
    for key, n in retried.items():
        logger.warning("partition %s was started %d times (a worker was lost); its rows are counted once", key, n)
    return retried


def _bag_partition(objects: Any, featurizer: SSLStructureFeaturizer) -> list:
    objects = list(objects)
    _note_start(len(objects))
    rows, errors = featurize_objects(featurizer, objects)
    check_errors(errors, featurizer.ignore_errors, noun="bag entry (index within its partition)", warn=False)
    return list(rows)


def featurize_bag(bag: Any, featurizer: SSLStructureFeaturizer | None = None) -> Any:
    """A bag of structures → a lazy bag of descriptor vectors (``(n_features,)`` float64 each).

    Args:
        bag: ``dask.bag.Bag`` of structures in any accepted form (see the module docstring).
        featurizer: the settings (default ``SSLStructureFeaturizer()``); fitted on the client if needed.

    Returns:
        ``dask.bag.Bag`` in the same order. With ``featurizer.ignore_errors`` a failed entry is a NaN
        vector; otherwise computing raises :class:`FeaturizationError` naming the entry.
    """
    featurizer = _fitted(featurizer or SSLStructureFeaturizer())
    return bag.map_partitions(_bag_partition, featurizer)


def _frame_partition(part: Any, featurizer: SSLStructureFeaturizer, column: str, return_errors: bool) -> Any:
    import pandas as pd

    _note_start(len(part))
    rows, errors = featurize_objects(featurizer, list(part[column]))
    check_errors(errors, featurizer.ignore_errors, list(part.index), noun="row", positions=False, warn=False)
    features = pd.DataFrame(rows, index=part.index, columns=featurizer.feature_labels())
    if return_errors:
        features[ERRORS_COLUMN] = pd.Series(errors, index=part.index, dtype=object)
    return pd.concat([part, features], axis=1)


def featurize_dataframe(ddf: Any, featurizer: SSLStructureFeaturizer | None = None, column: str = "structure",
                        return_errors: bool = False) -> Any:
    """Append the descriptor columns to a Dask DataFrame (matminer's ``featurize_dataframe``, distributed).

    Args:
        ddf: ``dask.dataframe.DataFrame`` whose ``column`` holds structures (JSON strings are safest).
        featurizer: the settings (default ``SSLStructureFeaturizer()``); fitted on the client if needed.
        column: the structure column.
        return_errors: add a column :data:`ERRORS_COLUMN` (None or the reason); needs
            ``featurizer.ignore_errors=True`` to be useful, since a strict featurizer raises instead.

    Returns:
        A lazy Dask DataFrame: the input columns, then ``featurizer.feature_labels()`` (float64).
    """
    import pandas as pd

    featurizer = _fitted(featurizer or SSLStructureFeaturizer())
    if column not in ddf.columns:
        raise KeyError(f"column {column!r} not in the DataFrame (columns: {list(ddf.columns)})")
    added = {label: pd.Series(dtype="float64") for label in featurizer.feature_labels()}
    if return_errors:
        added[ERRORS_COLUMN] = pd.Series(dtype=object)
    meta = pd.concat([ddf._meta, pd.DataFrame(added, index=ddf._meta.index)], axis=1)
    return ddf.map_partitions(_frame_partition, featurizer, column, return_errors, meta=meta)
