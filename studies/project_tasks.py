"""The project's tasks and where its data lives: the named tasks of the headline, read from ``../shared``.

The library reads files it is given (:mod:`ssl_featurizer.bench.tasks`, :func:`ssl_featurizer.bench.load_table`);
which tasks the project benchmarks, and where their files sit, is the studies' choice and lives here:

- :data:`SHARED_TASKS`: matminer JSON dataframes under ``<data>/tasks`` (Kong et al.'s structure tasks and the
  MAGNDATA transition temperature) and their target columns;
- :data:`SITE_TASKS`: MAGNDATA per-site moment sizes joined to their magnetic structures (see the data card,
  section 3a), every site, the sites of ordered structures, or the sites Kong et al. labelled;
- :data:`MATBENCH_TASKS`: matbench tasks with their official folds, read from ``MATMINER_DATA`` or
  ``<data>/matminer``;
- :func:`dev_task`: the development tasks (MP-2018 labels of corpus structures that match no benchmark
  structure) on which the default model is chosen.

``<data>`` is ``$SSL_FEATURIZER_SHARED/data`` (default ``../shared/data``, relative to the working directory), the
pretraining corpus is ``<data>/mp2025/structures.jsonl.gz``, the authors' checkpoints are under
``$SSL_FEATURIZER_SHARED/anchors/kong2023``. Importing this module loads nothing heavy (the paths serve scripts
that measure memory); the library's task readers are imported where a task is loaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ssl_featurizer.bench.tasks import Task

STUDIES = Path(__file__).resolve().parent

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
TASK_NAMES = (*SHARED_TASKS, *SITE_TASKS, *MATBENCH_TASKS)


def shared_dir() -> Path:
    """``$SSL_FEATURIZER_SHARED`` or ``../shared`` relative to the working directory."""
    return Path(os.environ.get("SSL_FEATURIZER_SHARED", "../shared"))


def shared_data_dir() -> Path:
    """The shared data folder, ``<shared>/data``."""
    return shared_dir() / "data"


def anchors_dir() -> Path:
    """Folder of the authors' checkpoints, ``<shared>/anchors/kong2023`` (the ``authors`` family's ``anchors``)."""
    return shared_dir() / "anchors" / "kong2023"


def corpus_file() -> Path:
    """The pretraining corpus, ``<shared>/data/mp2025/structures.jsonl.gz`` (JSON lines, one structure a line)."""
    return shared_data_dir() / "mp2025" / "structures.jsonl.gz"


def load_task(name: str, data_dir: str | Path | None = None, limit: int | None = None, seed: int = 0) -> Task:
    """Load a task of the project by name (:data:`TASK_NAMES`).

    ``limit`` keeps a random sample of about that many rows (whole materials of a site task,
    :func:`~ssl_featurizer.bench.tasks.sample_rows`), drawn before decoding: only the sample's structures are
    decoded. (A matbench task is loaded whole and cut, since its official folds number the whole file.)

    Raises:
        FileNotFoundError: with the path that was looked for.
        ValueError: unknown name.
    """
    from ssl_featurizer.bench.tasks import Task, failure_notes, load_matbench_file, read_structure_table, sample_rows

    data = Path(data_dir) if data_dir else shared_data_dir()
    if name in SHARED_TASKS:
        file, target = SHARED_TASKS[name]
        path = _need(data / "tasks" / file)
        notes = []
        if limit is None:
            df, failures = read_structure_table(path)
        else:
            df, failures = read_structure_table(path, select=lambda frame: sample_rows(len(frame), limit, seed)[0])
            notes = [f"random sample of {limit} source rows (seed {seed})"]
        return Task(name, list(df["structure"]), df[target].to_numpy(float), unit=target, failures=failures,
                    notes=[*failure_notes(failures), *notes])
    if name in SITE_TASKS:
        return _load_magndata_sites(name, data, limit, seed)
    if name in MATBENCH_TASKS:
        folder = Path(os.environ.get("MATMINER_DATA") or data / "matminer")
        task = load_matbench_file(_need(folder / f"{name}.json.gz"), name)
        return task if limit is None else task.subset(limit, seed)
    raise ValueError(f"unknown task {name!r}; known: {sorted(TASK_NAMES)}")


def _need(path: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"task data {path} not found (set SSL_FEATURIZER_SHARED to the shared folder)")
    return path


def _load_magndata_sites(name: str, data: Path, limit: int | None = None, seed: int = 0) -> Task:
    """MAGNDATA per-site moment sizes joined to their magnetic structures (see the data card, section 3a); with
    ``limit``, whole materials of the site table drawn at random until about ``limit`` sites, and only their
    structures decoded."""
    import pandas as pd

    from ssl_featurizer.bench.tasks import Task, failure_notes, read_structure_table, sample_rows

    _need(data / "tasks" / "magndata_structures.json.gz")
    _need(data / "tasks" / "magndata_site_moments.csv.gz")
    sites = pd.read_csv(data / "tasks" / "magndata_site_moments.csv.gz", dtype={"id": str})
    if name.endswith("kong2023"):
        sites = sites[sites["in_kong2023"].astype(bool)]
    notes = []
    if limit is not None:
        rows, note = sample_rows(len(sites), limit, seed, sites["id"].to_numpy())
        sites, notes = sites.iloc[rows], [f"{note}, drawn from the site table before decoding"]
    wanted = set(sites["id"])
    table, failures = read_structure_table(data / "tasks" / "magndata_structures.json.gz",
                                           select=lambda frame: frame["id"].astype(str).isin(wanted).to_numpy())
    structures = dict(zip(table["id"].astype(str), table["structure"]))
    unreadable = {f["id"]: f["reason"] for f in failures}
    failures: list[dict[str, Any]] = []
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
                notes=["splits group sites by material", *failure_notes(failures), *notes], failures=failures)


def dev_task(n: int, seed: int = 0) -> dict[str, Task]:
    """``{target: Task}`` for MP-2018 (MEGNet) formation energy and PBE gap of ``n`` structures of the
    JARVIS-Leaderboard train split (``<data>/tasks/mp2018_megnet_labels.csv.gz``, joined to the corpus by id).

    Rows are drawn only from corpus entries that match no benchmark structure, by id or by structure
    (``studies/results/overlap/excluded_ids.txt``, written by ``studies/overlap.py``).
    """
    import pandas as pd
    from common import corpus_rows, corpus_structure

    from ssl_featurizer.bench.tasks import Task

    labels = pd.read_csv(shared_data_dir() / "tasks" / "mp2018_megnet_labels.csv.gz")
    overlap = STUDIES / "results" / "overlap" / "excluded_ids.txt"
    if not overlap.exists():
        raise SystemExit("studies/results/overlap/excluded_ids.txt is absent: run studies/overlap.py first "
                         "(development rows must not match any benchmark structure)")
    benchmark_twins = set(overlap.read_text().split())
    corpus = corpus_file()
    in_corpus = {row["id"] for row in corpus_rows(corpus)}
    labels = labels[(labels.split == "train") & labels.id.isin(in_corpus) & ~labels.id.isin(benchmark_twins)]
    labels = labels.sample(n, random_state=seed).set_index("id")
    # only the sampled rows become Structures
    structures = {row["id"]: corpus_structure(row) for row in corpus_rows(corpus) if row["id"] in labels.index}
    df = labels.loc[list(structures)].assign(structure=list(structures.values()))
    return {t: Task.from_dataframe(df, "structure", t, name=f"mp2018_{t}_dev{n}") for t in ("e_form", "gap_pbe")}
