"""Pooling: per-atom embeddings of one structure → one fixed-length vector."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Available poolings. ``mean``, ``std``, ``min``, ``max`` are intensive (unchanged by a supercell);
#: ``sum`` is extensive (scales with the number of atoms in the cell).
POOLINGS = {
    "mean": lambda a: a.mean(axis=0),
    "sum": lambda a: a.sum(axis=0),
    "std": lambda a: a.std(axis=0),
    "min": lambda a: a.min(axis=0),
    "max": lambda a: a.max(axis=0),
}


def parse_pooling(pooling: str | Sequence[str]) -> tuple[str, ...]:
    """Normalise ``"mean"`` or ``("mean", "std")``; raise ValueError for unknown or repeated names."""
    names = (pooling,) if isinstance(pooling, str) else tuple(pooling)
    unknown = [p for p in names if p not in POOLINGS]
    if not names or unknown or len(set(names)) != len(names):
        raise ValueError(f"pooling={pooling!r}: choose one or more distinct of {sorted(POOLINGS)}")
    return names


def pool(atoms: np.ndarray, pooling: tuple[str, ...]) -> np.ndarray:
    """Concatenate the requested poolings of ``atoms`` ``(n_atoms, d)`` into ``(len(pooling) * d,)``."""
    a = atoms.astype(np.float64, copy=False)
    return np.concatenate([POOLINGS[p](a) for p in pooling])
