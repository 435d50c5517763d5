"""Benchmark tasks: labeled structures (or sites) with optional official folds.

Loaders cover the shared tasks (matminer's JSON dataframes under ``../shared/data/tasks``), the
MAGNDATA site-moment table, matbench tasks with their official folds (computed, no ``matbench`` needed), and any user
DataFrame with a structure column and a target column.

Source rows that cannot become an input (a structure that does not decode, a site row without its
structure, a site index or element that disagrees with the structure, or, for the ``_ordered`` site
task, a partially occupied structure) are never dropped silently: they are listed in
:attr:`Task.failures` with the reason, and counted in :attr:`Task.notes`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: shared task name → (file under tasks/, target column)
SHARED_TASKS = {
    "kong2023_formation_energy": ("kong2023_formation_energy.json.gz", "e_form"),
    "kong2023_hse_gap": ("kong2023_hse_gap.json.gz", "gap_hse"),
    "kong2023_log_kvrh": ("kong2023_log_kvrh.json.gz", "log10_kvrh"),
    "kong2023_log_gvrh": ("kong2023_log_gvrh.json.gz", "log10_gvrh"),
    "magndata_transition_temperature": ("magndata_transition_temperature.json.gz", "t_transition"),
}
SITE_TASKS = ("magndata_site_moments", "magndata_site_moments_ordered", "magndata_site_moments_kong2023")
MATBENCH_TASKS = ("matbench_dielectric",)
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
        reached, so a material keeps all its sites and the subset may exceed ``n`` by part of one material.
        """
        if n >= len(self):
            return self
        rng = np.random.default_rng(seed)
        if self.groups is None:
            idx = np.sort(rng.choice(len(self), n, replace=False))
            note = f"random subset of {n} rows (seed {seed})"
        else:
            names, inverse, counts = np.unique(self.groups, return_inverse=True, return_counts=True)
            order = rng.permutation(len(names))
            k = int(np.searchsorted(np.cumsum(counts[order]), n)) + 1
            idx = np.flatnonzero(np.isin(inverse, order[:k]))
            note = f"random subset of {k} materials, {len(idx)} rows (seed {seed}, target {n} rows)"
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


def shared_data_dir() -> Path:
    """``$SSL_FEATURIZER_SHARED/data`` or ``../shared/data`` relative to the working directory."""
    return Path(os.environ.get("SSL_FEATURIZER_SHARED", "../shared")) / "data"


def load_task(name: str, data_dir: str | Path | None = None) -> Task:
    """Load a named task (see ``SHARED_TASKS``, ``SITE_TASKS``, ``MATBENCH_TASKS``) or a matminer JSON file.

    Raises:
        FileNotFoundError: with the path that was looked for.
        ValueError: unknown name.
    """
    data = Path(data_dir) if data_dir else shared_data_dir()
    if name in SHARED_TASKS:
        file, target = SHARED_TASKS[name]
        path = data / "tasks" / file
        _need(path)
        df, failures = read_structure_table(path)
        return Task(name, list(df["structure"]), df[target].to_numpy(float), unit=target, failures=failures,
                    notes=_failure_notes(failures))
    if name in SITE_TASKS:
        return _load_magndata_sites(name, data)
    if name in MATBENCH_TASKS:
        return _load_matbench(name, data)
    path = Path(name)
    if path.suffix in (".gz", ".json") and path.exists():
        df, failures = read_structure_table(path)
        target = next(c for c in df.columns if c not in ("structure", "id", "composition"))
        return Task(path.name.split(".")[0], list(df["structure"]), df[target].to_numpy(float), unit=target,
                    failures=failures, notes=_failure_notes(failures))
    raise ValueError(f"unknown task {name!r}; known: {sorted([*SHARED_TASKS, *SITE_TASKS, *MATBENCH_TASKS])}")


def read_structure_table(path: str | Path, column: str = "structure") -> tuple[Any, list[dict[str, Any]]]:
    """A matminer JSON DataFrame whose ``column`` is decoded row by row; rows that fail are reported.

    Each entry is decoded on its own by the strict decoder (:func:`ssl_featurizer.readers.structure_from_object`),
    never by monty's generic decoder (which imports the modules a document names, and would lose every row to
    one bad entry).

    Returns:
        ``(df, failures)``: the decoded rows (original index kept) and one
        ``{"id", "site_index", "kind", "reason"}`` dict per row that did not decode (``id`` is the row's ``id``
        column, or its index label when there is none).
    """
    import pandas as pd

    from ssl_featurizer.readers import read_json_file, structure_from_object

    raw = read_json_file(path)
    if not (isinstance(raw, dict) and {"columns", "index", "data"} <= raw.keys()):
        raise ValueError(f"{path}: not a matminer JSON DataFrame (orient='split': 'columns', 'index', 'data')")
    df = pd.DataFrame(raw["data"], index=raw["index"], columns=raw["columns"])
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


def _failure_notes(failures: list[dict[str, Any]]) -> list[str]:
    if not failures:
        return []
    kinds: dict[str, int] = {}
    for f in failures:
        kinds[f["kind"]] = kinds.get(f["kind"], 0) + 1
    return [f"{len(failures)} source rows left out (Task.failures): "
            + "; ".join(f"{n} × {kind}" for kind, n in kinds.items())]


def _load_magndata_sites(name: str, data: Path) -> Task:
    """MAGNDATA per-site moment sizes joined to their magnetic structures (see the data card, section 3a)."""
    import pandas as pd

    _need(data / "tasks" / "magndata_structures.json.gz")
    _need(data / "tasks" / "magndata_site_moments.csv.gz")
    table, failures = read_structure_table(data / "tasks" / "magndata_structures.json.gz")
    structures = dict(zip(table["id"].astype(str), table["structure"]))
    unreadable = {f["id"]: f["reason"] for f in failures}
    failures: list[dict[str, Any]] = []
    sites = pd.read_csv(data / "tasks" / "magndata_site_moments.csv.gz", dtype={"id": str})
    if name.endswith("kong2023"):
        sites = sites[sites["in_kong2023"].astype(bool)]
    pairs, keep = [], []
    for row, (mid, k, element) in enumerate(zip(sites["id"], sites["site_index"], sites["element"])):
        s, k = structures.get(mid), int(k)
        if s is None:
            kind = "unreadable structure" if mid in unreadable else "missing structure"
            reason = unreadable.get(mid, "no structure with this id in magndata_structures.json.gz")
        elif not 0 <= k < len(s):
            kind, reason = "bad site index", f"site index {k} is out of range for a structure of {len(s)} sites"
        elif element not in {el.symbol for el in s[k].species.elements}:
            kind = "element mismatch"
            reason = f"element {element} in the site table but {s[k].species} at that index of the structure"
        elif name.endswith("ordered") and not s.is_ordered:
            kind = "partial occupancy"
            reason = "structure has partially occupied sites (left out of the _ordered task)"
        else:
            pairs.append((s, k))
            keep.append(row)
            continue
        failures.append({"id": mid, "site_index": k, "kind": kind, "reason": reason})
    sites = sites.iloc[keep]
    return Task(name, pairs, sites["magmom"].to_numpy(float), "site", sites["id"].to_numpy(), unit="|m| (μB)",
                notes=["splits group sites by material", *_failure_notes(failures)], failures=failures)


def _need(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(f"task data {path} not found (set SSL_FEATURIZER_SHARED to the shared folder)")


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


def _load_matbench(name: str, data: Path) -> Task:
    """A matbench task with its five official folds, read from ``MATMINER_DATA`` or ``<data>/matminer``.

    Rows are decoded one by one (:func:`read_structure_table`); a row that does not decode is listed in
    :attr:`Task.failures` and left out of every fold, the other rows keep their official folds.
    """
    folder = Path(os.environ.get("MATMINER_DATA") or data / "matminer")
    path = folder / f"{name}.json.gz"
    _need(path)
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
                failures=failures, notes=["official matbench folds", *_failure_notes(failures)])
