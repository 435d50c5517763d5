"""Pooling: per-atom embeddings of one structure → one fixed-length vector."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Available poolings, each a function of the atom vectors ``a`` ``(n_atoms, d)`` and the cell volume ``v`` (Å³).
#: ``mean``, ``std``, ``min``, ``max`` are intensive (unchanged by a supercell); ``sum`` is extensive (scales with
#: the number of atoms in the cell); ``density`` is the sum per cell volume (Å⁻³) — intensive, and the only one
#: that carries the cell volume, which properties per volume (elastic moduli) depend on.
POOLINGS = {
    "mean": lambda a, v: a.mean(axis=0),
    "sum": lambda a, v: a.sum(axis=0),
    "std": lambda a, v: a.std(axis=0),
    "min": lambda a, v: a.min(axis=0),
    "max": lambda a, v: a.max(axis=0),
    "density": lambda a, v: a.sum(axis=0) / v,
}


#: joins pooling names in one string, as in ``"mean-std"`` (the spelling of descriptor specs and the command line)
JOINER = "-"


def parse_pooling(pooling: str | Sequence[str]) -> tuple[str, ...]:
    """Normalise ``"mean"``, ``"mean-std"`` or ``("mean", "std")``; raise ValueError for unknown or repeated names.

    ``"mean+std"``, the command line's former spelling, is read as ``"mean-std"``.
    """
    names = tuple(pooling.replace("+", JOINER).split(JOINER)) if isinstance(pooling, str) else tuple(pooling)
    unknown = [p for p in names if p not in POOLINGS]
    if not names or unknown or len(set(names)) != len(names):
        raise ValueError(f"pooling={pooling!r}: choose one or more distinct of {sorted(POOLINGS)}")
    return names


def pool(atoms: np.ndarray, pooling: tuple[str, ...], volume: float | None = None) -> np.ndarray:
    """Concatenate the requested poolings of ``atoms`` ``(n_atoms, d)`` into ``(len(pooling) * d,)``.

    Args:
        atoms: one structure's atom vectors.
        pooling: names from :data:`POOLINGS`.
        volume: the cell volume in Å³; needed by ``density`` only.

    Raises:
        ValueError: ``density`` without a positive, finite volume.
    """
    if "density" in pooling and not (volume is not None and np.isfinite(volume) and volume > 0):
        raise ValueError(f"'density' pooling (sum per cell volume) needs the cell volume in Å³, got {volume!r}")
    a = atoms.astype(np.float64, copy=False)
    return np.concatenate([POOLINGS[p](a, volume) for p in pooling])
