"""Benchmark tasks: labeled structures (or sites) with optional official folds.

Loaders cover the shared tasks (matminer's JSON dataframes under ``../shared/data/tasks``), the
MAGNDATA site-moment table, matbench tasks through ``matbench`` with official folds, and any user
DataFrame with a structure column and a target column.
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
SITE_TASKS = ("magndata_site_moments", "magndata_site_moments_kong2023")
MATBENCH_TASKS = ("matbench_dielectric",)


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
    """

    name: str
    inputs: list[Any]
    y: np.ndarray
    level: str = "structure"
    groups: np.ndarray | None = None
    folds: list[tuple[np.ndarray, np.ndarray]] | None = None
    unit: str = ""
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, n: int, seed: int = 0) -> Task:
        """A random subset of ``n`` rows (for quick runs and tests); official folds are dropped."""
        if n >= len(self):
            return self
        idx = np.sort(np.random.default_rng(seed).choice(len(self), n, replace=False))
        return Task(f"{self.name}[{n}]", [self.inputs[i] for i in idx], self.y[idx], self.level,
                    None if self.groups is None else self.groups[idx], None, self.unit,
                    [*self.notes, f"random subset of {n} rows (seed {seed})"])

    def fingerprint(self) -> str:
        """Hash of the inputs (keys the feature cache; tasks on the same structures share features)."""
        h = hashlib.sha256(str(len(self.inputs)).encode())
        for item in self.inputs:
            s, idx = item if self.level == "site" else (item, None)
            h.update(np.ascontiguousarray(s.lattice.matrix).tobytes())
            h.update(np.ascontiguousarray(s.frac_coords).tobytes())
            h.update(" ".join(str(sp) for sp in s.species).encode())
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
    from matminer.utils.io import load_dataframe_from_json

    data = Path(data_dir) if data_dir else shared_data_dir()
    if name in SHARED_TASKS:
        file, target = SHARED_TASKS[name]
        path = data / "tasks" / file
        _need(path)
        df = load_dataframe_from_json(str(path), pbar=False)
        return Task(name, list(df["structure"]), df[target].to_numpy(float), unit=target)
    if name in SITE_TASKS:
        import pandas as pd

        _need(data / "tasks" / "magndata_structures.json.gz")
        structures = load_dataframe_from_json(str(data / "tasks" / "magndata_structures.json.gz"),
                                              pbar=False).set_index("id")["structure"]
        sites = pd.read_csv(data / "tasks" / "magndata_site_moments.csv.gz", dtype={"id": str})
        if name.endswith("kong2023"):
            sites = sites[sites["in_kong2023"]]
        pairs = [(structures[i], int(k)) for i, k in zip(sites["id"], sites["site_index"])]
        return Task(name, pairs, sites["magmom"].to_numpy(float), "site", sites["id"].to_numpy(), unit="|m| (μB)",
                    notes=["splits group sites by material"])
    if name in MATBENCH_TASKS:
        return _load_matbench(name, data)
    path = Path(name)
    if path.suffix in (".gz", ".json") and path.exists():
        df = load_dataframe_from_json(str(path), pbar=False)
        target = next(c for c in df.columns if c not in ("structure", "id", "composition"))
        return Task(path.name.split(".")[0], list(df["structure"]), df[target].to_numpy(float), unit=target)
    raise ValueError(f"unknown task {name!r}; known: {sorted([*SHARED_TASKS, *SITE_TASKS, *MATBENCH_TASKS])}")


def _need(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(f"task data {path} not found (set SSL_FEATURIZER_SHARED to the shared folder)")


def _load_matbench(name: str, data: Path) -> Task:
    """A matbench task with its five official folds (offline: reads ``MATMINER_DATA``)."""
    os.environ.setdefault("MATMINER_DATA", str((data / "matminer").resolve()))
    _need(Path(os.environ["MATMINER_DATA"]) / f"{name}.json.gz")
    from matbench.bench import MatbenchBenchmark

    mb = MatbenchBenchmark(autoload=False, subset=[name])
    task = mb.tasks_map[name]
    task.load()
    df = task.df
    position = {key: i for i, key in enumerate(df.index)}
    folds = []
    for fold in task.folds:
        train = np.array([position[k] for k in task.get_train_and_val_data(fold, as_type="df").index])
        test = np.array([position[k] for k in task.get_test_data(fold, as_type="df", include_target=True).index])
        folds.append((train, test))
    target = next(c for c in df.columns if c != "structure")
    return Task(name, list(df["structure"]), df[target].to_numpy(float), folds=folds, unit=target,
                notes=["official matbench folds"])
