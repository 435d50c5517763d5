"""Coerce the many shapes users pass (list, array, Series, DataFrame) into plain Python lists."""

from __future__ import annotations

from typing import Any

import numpy as np

from ssl_featurizer.graph.crystal_graph import StructureError, as_structure


def _is_pandas(x: Any, kind: str) -> bool:
    return type(x).__name__ == kind and type(x).__module__.startswith("pandas")


def as_structure_list(X: Any) -> tuple[list[Any], list[Any] | None]:
    """Return ``(structures, labels)`` from a list/tuple/1-D array/Series or a one-column DataFrame.

    ``labels`` is the pandas index (to name failing rows) or None.

    Raises:
        TypeError: for a single Structure, a string, or a DataFrame with several columns.
    """
    if _is_pandas(X, "DataFrame"):
        if X.shape[1] != 1:
            raise TypeError(f"expected a one-column DataFrame of Structures, got columns {list(X.columns)}; "
                            "select the structure column (e.g. with a ColumnTransformer)")
        return list(X.iloc[:, 0]), list(X.index)
    if _is_pandas(X, "Series"):
        return list(X), list(X.index)
    if isinstance(X, np.ndarray):
        if X.ndim == 2 and X.shape[1] == 1:
            return list(X[:, 0]), None
        if X.ndim != 1:
            raise TypeError(f"expected a 1-D array of Structures, got shape {X.shape}")
        return list(X), None
    if isinstance(X, (list, tuple)):
        return [x[0] if isinstance(x, tuple) and len(x) == 1 else x for x in X], None
    raise TypeError(f"expected a list, array, Series or one-column DataFrame of Structures, got "
                    f"{type(X).__name__}; wrap a single structure in a list")


def as_site_list(X: Any) -> tuple[list[tuple[Any, int]], list[Any] | None]:
    """Return ``([(structure, site_index), ...], labels)`` from pairs or a two-column DataFrame."""
    if _is_pandas(X, "DataFrame"):
        if X.shape[1] != 2:
            raise TypeError(f"expected a DataFrame with (structure, site index) columns, got {list(X.columns)}")
        return list(zip(X.iloc[:, 0], X.iloc[:, 1])), list(X.index)
    if _is_pandas(X, "Series"):
        return [tuple(x) for x in X], list(X.index)
    if isinstance(X, (list, tuple, np.ndarray)):
        pairs = [tuple(x) for x in X]
        bad = [i for i, p in enumerate(pairs) if len(p) != 2]
        if bad:
            raise TypeError(f"entry {bad[0]} is not a (structure, site_index) pair")
        return pairs, None
    raise TypeError(f"expected (structure, site_index) pairs, got {type(X).__name__}")


def decode_structures(items: list[Any]) -> list[Any]:
    """Decode structures given as data (``Structure.as_dict()`` dicts, JSON text) into Structures; leave
    everything else, and what does not decode, as it is.

    Decoding is strict (:mod:`ssl_featurizer.graph.decode`); what cannot be converted is left for graph
    building, which gives the per-entry reason.
    """
    out = []
    for x in items:
        if isinstance(x, (dict, str, bytes)):
            try:
                x = as_structure(x)
            except StructureError:
                pass
        out.append(x)
    return out
