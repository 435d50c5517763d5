"""Benchmark tasks: labeled structures (or sites) with optional official folds.

What the library reads: matminer JSON dataframes decoded row by row by the strict decoder
(:func:`read_structure_table`), matbench task files with their official folds (computed, no ``matbench`` needed,
:func:`load_matbench_file`), and any DataFrame with a structure column and a target column
(:meth:`Task.from_dataframe`; files of other formats: :func:`ssl_featurizer.bench.comparison.load_table`). The
project's own tasks and where its data lives are the studies' business (``studies/project_tasks.py``).

Source rows that cannot become an input (a structure that does not decode, a site row without its
structure, a site index or element that disagrees with the structure, or, for the ``_ordered`` site
task, a partially occupied structure) are never dropped silently: they are listed in
:attr:`Task.failures` with the reason, and counted in :attr:`Task.notes`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: seed of matbench v0.1's folds (see :func:`matbench_folds`)
MATBENCH_SEED = 18012019


@dataclass
class Task:
    """Inputs, targets and (optionally) fixed folds of one regression task.

    Attributes:
        name: task name.
        inputs: Structures (structure level) or ``(structure, site_index)`` pairs (site level).
        y: targets.
        level: ``"structure"`` or ``"site"``.
        groups: for site tasks, the material of each row (splits never separate a material's sites).
        folds: official ``(train_indices, test_indices)`` pairs, if the task defines them.
        unit: target unit, for reports.
        notes: free-text remarks carried into reports.
        failures: source rows left out of ``inputs``, each ``{"id", "site_index", "kind", "reason"}``
            (``site_index`` is None for structure-level rows; ``kind`` is a short category of ``reason``).
        parent: for a :meth:`subset`, the task it was drawn from and the rows taken (lets the feature
            cache reuse the parent's features).
    """

    name: str
    inputs: list[Any]
    y: np.ndarray
    level: str = "structure"
    groups: np.ndarray | None = None
    folds: list[tuple[np.ndarray, np.ndarray]] | None = None
    unit: str = ""
    notes: list[str] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    parent: tuple[Task, np.ndarray] | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, n: int, seed: int = 0) -> Task:
        """A random subset of about ``n`` rows (for quick runs and tests); official folds are dropped.

        With ``groups`` (site tasks), whole materials are drawn in random order until ``n`` rows are
        reached, so a material keeps all its sites and the subset may exceed ``n`` by part of one material
        (:func:`sample_rows`).
        """
        if n >= len(self):
            return self
        idx, note = sample_rows(len(self), n, seed, self.groups)
        return Task(f"{self.name}[{n}]", [self.inputs[i] for i in idx], self.y[idx], self.level,
                    None if self.groups is None else self.groups[idx], None, self.unit, [*self.notes, note],
                    list(self.failures), (self, idx))

    def fingerprint(self) -> str:
        """Hash of the inputs (keys the feature cache; tasks on the same structures share features)."""
        h = hashlib.sha256(str(len(self.inputs)).encode())
        for item in self.inputs:
            s, idx = item if self.level == "site" else (item, None)
            h.update(np.ascontiguousarray(s.lattice.matrix).tobytes())
            h.update(np.ascontiguousarray(s.frac_coords).tobytes())
            # species of an ordered structure (unchanged key); full occupancies of a disordered one
            species = s.species if s.is_ordered else [site.species for site in s]
            h.update(" ".join(str(sp) for sp in species).encode())
            if idx is not None:
                h.update(str(idx).encode())
        return h.hexdigest()[:20]

    @classmethod
    def from_dataframe(cls, df: Any, structure_col: str, target_col: str, name: str = "dataframe",
                       site_col: str | None = None, group_col: str | None = None) -> Task:
        """A task from any DataFrame with a Structure column and a numeric target column."""
        y = df[target_col].to_numpy(dtype=float)
        if site_col is None:
            return cls(name, list(df[structure_col]), y)
        groups = df[group_col].to_numpy() if group_col else None
        return cls(name, list(zip(df[structure_col], df[site_col].astype(int))), y, "site", groups)


def sample_rows(n_rows: int, n: int, seed: int = 0, groups: Any = None) -> tuple[np.ndarray, str]:
    """Sorted positions of a random sample of about ``n`` of ``n_rows`` rows, and a note saying what was drawn.

    Without ``groups``: ``n`` rows drawn without replacement. With ``groups`` (one label per row, e.g. the material
    of a site), whole groups are drawn in random order until ``n`` rows are reached, so the sample may exceed ``n``
    by part of one group. ``n >= n_rows`` keeps every row. The same ``(n_rows, n, seed, groups)`` always draw the
    same rows, whether the rows are decoded yet or not (:meth:`Task.subset`, the ``limit`` of the loaders).
    """
    if n >= n_rows:
        return np.arange(n_rows), f"all {n_rows} rows"
    rng = np.random.default_rng(seed)
    if groups is None:
        return np.sort(rng.choice(n_rows, n, replace=False)), f"random subset of {n} rows (seed {seed})"
    names, inverse, counts = np.unique(np.asarray(groups), return_inverse=True, return_counts=True)
    order = rng.permutation(len(names))
    k = int(np.searchsorted(np.cumsum(counts[order]), n)) + 1
    idx = np.flatnonzero(np.isin(inverse, order[:k]))
    return idx, f"random subset of {k} materials, {len(idx)} rows (seed {seed}, target {n} rows)"


def read_structure_table(path: str | Path, column: str = "structure",
                         select: Callable[[Any], Any] | None = None) -> tuple[Any, list[dict[str, Any]]]:
    """A matminer JSON DataFrame whose ``column`` is decoded row by row; rows that fail are reported.

    Each entry is decoded on its own by the strict decoder (:func:`ssl_featurizer.readers.structure_from_object`),
    never by monty's generic decoder (which imports the modules a document names, and would lose every row to
    one bad entry).

    Args:
        path: the file (``.json`` or ``.json.gz``, ``orient='split'``).
        column: the structure column.
        select: called with the undecoded DataFrame, returns the positions (or a boolean mask) of the rows to keep;
            only those are decoded (a sample, or chosen ids, of a large file costs what the kept rows cost). Rows
            not selected are neither returned nor reported.

    Returns:
        ``(df, failures)``: the decoded rows (original index kept) and one
        ``{"id", "site_index", "kind", "reason"}`` dict per row that did not decode (``id`` is the row's ``id``
        column, or its index label when there is none).
    """
    import pandas as pd

    from ssl_featurizer.readers import read_json_file, selected_positions, structure_from_object

    raw = read_json_file(path)
    if not (isinstance(raw, dict) and {"columns", "index", "data"} <= raw.keys()):
        raise ValueError(f"{path}: not a matminer JSON DataFrame (orient='split': 'columns', 'index', 'data')")
    df = pd.DataFrame(raw["data"], index=raw["index"], columns=raw["columns"])
    if column not in df.columns:
        raise ValueError(f"{path}: no column {column!r}; the columns are {list(df.columns)}")
    if select is not None:
        df = df.iloc[selected_positions(select(df))]
    decoded, failures = [], []
    for label, item in zip(df.index, df[column]):
        key = df.at[label, "id"] if "id" in df.columns else label
        obj, reason = structure_from_object(item)  # strict: nothing a document names is imported
        if obj is None:
            failures.append({"id": str(key), "site_index": None, "kind": "unreadable structure",
                             "reason": f"{column} could not be read: {reason}"})
        decoded.append(obj)
    df = df.assign(**{column: decoded})
    return df[df[column].notna()], failures


def failure_notes(failures: list[dict[str, Any]]) -> list[str]:
    if not failures:
        return []
    kinds: dict[str, int] = {}
    for f in failures:
        kinds[f["kind"]] = kinds.get(f["kind"], 0) + 1
    return [f"{len(failures)} source rows left out (Task.failures): "
            + "; ".join(f"{n} × {kind}" for kind, n in kinds.items())]


def matbench_folds(n_rows: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The five official folds of a matbench regression task with ``n_rows`` rows, without the ``matbench`` package.

    Matbench v0.1 drew them as ``KFold(n_splits=5, shuffle=True, random_state=18012019)`` over the dataset's row
    order (its ids ``mb-<task>-<i+1>`` number the rows in that order); ``tests/test_bench.py`` checks equality with
    the splits that ship with ``matbench`` when it is installed. (Matbench's classification tasks use stratified
    folds and are not covered.)

    Returns:
        ``(train_positions, test_positions)`` per fold, in matbench's fold order.
    """
    from sklearn.model_selection import KFold

    kfold = KFold(n_splits=5, shuffle=True, random_state=MATBENCH_SEED)
    return list(kfold.split(np.arange(n_rows)))


def load_matbench_file(path: str | Path, name: str | None = None) -> Task:
    """A matbench regression task with its five official folds, from its matminer JSON file
    (``matbench_dielectric.json.gz`` and friends, as ``matminer.datasets`` stores them).

    Rows are decoded one by one (:func:`read_structure_table`); a row that does not decode is listed in
    :attr:`Task.failures` and left out of every fold, the other rows keep their official folds.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the rows are not labelled ``0..n-1`` in dataset order.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    name = name or path.name.split(".")[0]
    df, failures = read_structure_table(path)
    n_rows = len(df) + len(failures)
    kept = np.flatnonzero(np.isin(np.arange(n_rows), df.index.to_numpy()))  # dataset positions of decoded rows
    if len(kept) != len(df):
        raise ValueError(f"{path}: expected rows labelled 0..{n_rows - 1} in dataset order")
    new_position = np.full(n_rows, -1)
    new_position[kept] = np.arange(len(kept))
    folds = [(new_position[tr][new_position[tr] >= 0], new_position[te][new_position[te] >= 0])
             for tr, te in matbench_folds(n_rows)]
    target = next(c for c in df.columns if c not in ("structure", "id"))
    return Task(name, list(df["structure"]), df[target].to_numpy(float), folds=folds, unit=target,
                failures=failures, notes=["official matbench folds", *failure_notes(failures)])
