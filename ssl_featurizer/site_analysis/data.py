"""Sites of structures as a table, their all-layer embeddings and what was left out.

* :class:`MagneticSites` — a site task (``(structure, site_index)`` inputs and targets) with a table of its sites
  and a table of every site left out and why; :meth:`MagneticSites.from_task` builds it from any site
  :class:`~ssl_featurizer.bench.tasks.Task`.
* :func:`read_magnetic_cifs` — your own magnetic CIF (``.mcif``) files, every unparseable file reported.
* :func:`site_descriptors` — all-layer site embeddings and the CrystalNN fingerprint of every site, through the
  benchmark's cached descriptors; featurization failures are added to the failures.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ssl_featurizer.bench.tasks import Task

FAILURE_COLUMNS = ["id", "site_index", "stage", "kind", "reason"]


@dataclass
class MagneticSites:
    """Magnetic sites of MAGNDATA structures, their moment sizes and what was left out.

    Attributes:
        task: the benchmark site task (``(structure, site_index)`` inputs, ``|m|`` targets, material groups).
        table: one row per task input: ``id``, ``site_index``, ``element``, ``magmom`` (``|m|`` in μB).
        failures: one row per source row or site that could not be used, with ``id``, ``site_index``,
            ``stage`` (``load``, ``embedding`` or ``crystalnn``), ``kind`` and ``reason``.
    """

    task: Task
    table: pd.DataFrame
    failures: pd.DataFrame

    def __len__(self) -> int:
        return len(self.table)

    @classmethod
    def from_task(cls, task: Task) -> MagneticSites:
        """The sites of a site task: ``id`` from its groups (the material), the main element of each site, the
        target as ``magmom``; the task's own failures become rows of stage ``load``."""
        if task.level != "site":
            raise ValueError(f"task {task.name!r} is a {task.level}-level task; MagneticSites needs a site task")
        groups = task.groups if task.groups is not None else np.arange(len(task))
        table = pd.DataFrame({
            "id": np.asarray(groups, dtype=str),
            "site_index": [int(k) for _, k in task.inputs],
            "element": [_main_element(s[int(k)].species) for s, k in task.inputs],
            "magmom": task.y,
        })
        failures = pd.DataFrame([{**f, "stage": "load"} for f in task.failures], columns=FAILURE_COLUMNS)
        return cls(task, table, failures)


def _main_element(species: Any) -> str:
    """Symbol of the species with the largest occupancy on a site (the element of an ordered site)."""
    return str(getattr(max(species.items(), key=lambda kv: kv[1])[0], "symbol", "")) if len(species) else ""


def _kind(reason: str) -> str:
    """A short category of a failure reason: numbers removed, first clause only."""
    import re

    return re.sub(r"\d+(\.\d+)?", "N", reason.split(";")[0].split(" (")[0])[:60]


def read_magnetic_cifs(paths: Iterable[str | Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parse magnetic CIF (``.mcif``) files with pymatgen, reporting every file that fails and why.

    Each file gives its first structure as the full magnetic cell (``primitive=False``), with the
    site property ``magmom``. A file is reported (not dropped) when pymatgen raises, returns no structure,
    or returns placeholder (non-element) species.

    Args:
        paths: files; the id of a file is its name without the suffix.

    Returns:
        ``(structures, failures)``: a DataFrame with ``id``, ``structure`` and ``n_magnetic_sites``, and
        one with ``id``, ``path`` and ``reason``.
    """
    from pymatgen.core.periodic_table import DummySpecies
    from pymatgen.io.cif import CifParser

    rows, failures = [], []
    for path in map(Path, paths):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                parsed = CifParser(str(path)).parse_structures(primitive=False)
            if not parsed:
                raise ValueError("no structure in the file")
            structure = parsed[0]
            dummies = sorted({str(sp) for sp in structure.composition if isinstance(sp, DummySpecies)})
            if dummies:
                raise ValueError(f"placeholder species {dummies} (not chemical elements)")
        except Exception as exc:  # noqa: BLE001 - pymatgen raises many types; each becomes a reported reason
            failures.append({"id": path.stem, "path": str(path), "reason": f"{type(exc).__name__}: {exc}"})
            continue
        moments = structure.site_properties.get("magmom", [None] * len(structure))
        n_magnetic = sum(m is not None and float(np.linalg.norm(np.asarray(m, dtype=float))) > 0 for m in moments)
        rows.append({"id": path.stem, "structure": structure, "n_magnetic_sites": n_magnetic})
    return (pd.DataFrame(rows, columns=["id", "structure", "n_magnetic_sites"]),
            pd.DataFrame(failures, columns=["id", "path", "reason"]))


def site_descriptors(sites: MagneticSites, model: str = "default", cache_dir: str | Path | None = None,
                     ) -> tuple[np.ndarray, np.ndarray, int]:
    """All-layer SSL site embeddings and CrystalNN fingerprints of the task's sites (cached, reused by bench).

    Sites whose embedding or fingerprint failed keep NaN rows; they are appended to ``sites.failures``
    (stage ``embedding`` or ``crystalnn``) with the featurizer's reason.

    Args:
        sites: the sites (:meth:`MagneticSites.from_task`).
        model: pretrained model name or directory.
        cache_dir: the descriptor cache of :mod:`ssl_featurizer.bench.descriptors` (e.g. ``studies/cache``).

    Returns:
        ``(embeddings, crystalnn, width)``: ``(n_sites, (n_layers + 1) * width)`` layer embeddings ordered
        layer by layer, the ``(n_sites, 61)`` CrystalNN fingerprint (matminer ``ops`` preset), and the
        embedding width per layer.
    """
    from ssl_featurizer.bench.descriptors import compute
    from ssl_featurizer.models.registry import load_model

    loaded = load_model(model)
    all_layers = "".join(str(k) for k in range(loaded.n_layers + 1))
    emb, _ = compute(f"ssl_site:{all_layers}", sites.task, cache_dir, model)
    cnn, _ = compute("crystalnn_site", sites.task, cache_dir, model)
    new = []
    for stage, x in (("embedding", emb), ("crystalnn", cnn)):
        bad = np.flatnonzero(np.isnan(x).any(axis=1))
        if len(bad):
            reasons = _failure_reasons(stage, [sites.task.inputs[i] for i in bad], model)
            new += [{"id": sites.table["id"].iat[i], "site_index": int(sites.table["site_index"].iat[i]),
                     "stage": stage, "kind": _kind(reason), "reason": reason}
                    for i, reason in zip(bad, reasons)]
    if new:
        sites.failures = pd.concat([sites.failures, pd.DataFrame(new, columns=FAILURE_COLUMNS)], ignore_index=True)
    return emb, cnn, loaded.width


def _failure_reasons(stage: str, pairs: list, model: str) -> list[str]:
    """The featurizer's own reason for each failed site (failures are few: recomputing them is cheap)."""
    if stage == "embedding":
        from ssl_featurizer.featurizers.site import SSLSiteFeaturizer

        rows = SSLSiteFeaturizer(model=model, layers="0").featurize_many(pairs, ignore_errors=True,
                                                                         return_errors=True, pbar=False)
    else:
        from matminer.featurizers.site import CrystalNNFingerprint

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rows = CrystalNNFingerprint.from_preset("ops").featurize_many(
                [(s, int(k)) for s, k in pairs], ignore_errors=True, return_errors=True, pbar=False)
    return [str(row[-1]).strip() if isinstance(row[-1], str) else "no reason given (NaN features)" for row in rows]


