"""Teacher targets for distillation: a frozen encoder's per-atom features of a corpus, computed once.

A foundation potential read layer by layer (:func:`ssl_featurizer.load_model`, e.g. ``"sevennet-0"``) describes
every atom of a structure by the invariant scalars after each of its interaction blocks. Distillation trains our
fast encoder to reproduce them (:mod:`ssl_featurizer.training.objectives.distill`). They are computed once per
corpus by :func:`build_teacher_targets` (chunked and resumable, like the graph cache), standardised and reduced to
their leading principal components (``dims``) so that every structure costs ``n_atoms × dims`` floats, and read
back aligned with a graph cache by :class:`TeacherTargets`.

Files in the targets folder: ``chunk_*.npz`` (the raw per-atom features, float16, one per corpus chunk),
``teacher.npz`` (ids, atom offsets, reduced targets) and ``teacher.json`` (the teacher's name, weights sha256,
fingerprint and label overlap, the layers, the variance kept).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

TARGETS = "teacher.npz"
META = "teacher.json"


def build_teacher_targets(corpus: str | Path, out_dir: str | Path, teacher: str = "sevennet-0",
                          layers: str = "12345", dims: int = 64, limit: int | None = None, chunk: int = 256,
                          batch_size: int = 16, sample_atoms: int = 50_000, seed: int = 0,
                          progress: bool = False) -> Path:
    """Compute (or finish computing) a teacher's per-atom targets for the first ``limit`` structures of ``corpus``.

    Args:
        corpus: JSON-lines corpus, the one the graph cache is built from (same structures, same atom order).
        out_dir: targets folder; a rerun resumes at the first missing chunk.
        teacher: a model name :func:`~ssl_featurizer.load_model` accepts (a foreign encoder or one of ours).
        layers: the teacher's layers, in the layer-set notation (``"12345"``: every block of SevenNet-0).
        dims: principal components kept (of the standardised features).
        limit: first structures of the corpus (default: all).
        chunk: structures per chunk file.
        batch_size: structures per forward pass of the teacher.
        sample_atoms: atoms drawn (seeded) to fit the standardisation and the components.
        seed: seed of that draw.
        progress: progress bar over the chunks.

    Returns:
        ``out_dir``. A structure the teacher refuses is left out (and counted in ``teacher.json``); the trainer
        then trains the distillation head on the structures that have targets only.
    """
    from tqdm.auto import tqdm

    from ssl_featurizer.embed import embed_structures
    from ssl_featurizer.layer_sets import parse_layers
    from ssl_featurizer.models.registry import load_model
    from ssl_featurizer.readers import open_text, structure_from_object

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = load_model(teacher)
    layer_idx = parse_layers(layers, model.n_layers)
    with open_text(corpus) as fh:
        lines = list(itertools.islice(fh, limit))
    n_chunks = (len(lines) + chunk - 1) // chunk
    for k in tqdm(range(n_chunks), desc="teacher targets", disable=not progress):
        path = out / f"chunk_{k:05d}.npz"
        if path.exists():
            continue
        rows = [json.loads(line) for line in lines[k * chunk:(k + 1) * chunk]]
        decoded = [structure_from_object(row)[0] for row in rows]
        keep = [i for i, s in enumerate(decoded) if s is not None]
        emb = embed_structures(model, [decoded[i] for i in keep], layer_idx, batch_size)
        ids, sizes, values = [], [], []
        for i, atoms in zip(keep, emb.atoms):
            if atoms is not None:
                ids.append(str(rows[i]["id"]))
                sizes.append(len(atoms))
                values.append(atoms.astype(np.float16))
        width = sum(model.layer_widths[i] for i in layer_idx)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, ids=np.array(ids, dtype=str), n_atoms=np.array(sizes, dtype=np.int64),
                 values=np.concatenate(values) if values else np.zeros((0, width), np.float16),
                 n_failed=len(rows) - len(ids))
        tmp.replace(path)
    # fit the standardisation and the components on a seeded sample of atoms, then project chunk by chunk (the raw
    # features of a whole corpus do not fit in memory as float32)
    paths = [out / f"chunk_{k:05d}.npz" for k in range(n_chunks)]
    sizes = [int(np.load(path)["n_atoms"].sum()) for path in paths]
    rng = np.random.default_rng(seed)
    picks = np.sort(rng.choice(sum(sizes), min(sample_atoms, sum(sizes)), replace=False))
    offsets = np.concatenate(([0], np.cumsum(sizes)))
    sample = np.concatenate([np.load(path)["values"][picks[(picks >= lo) & (picks < hi)] - lo].astype(np.float32)
                             for path, lo, hi in zip(paths, offsets[:-1], offsets[1:])])
    mean, std = sample.mean(0), sample.std(0) + 1e-6
    _, singular, vt = np.linalg.svd((sample - mean) / std, full_matrices=False)
    variance = singular**2 / max(len(sample) - 1, 1)
    dims = min(dims, len(variance))
    components = vt[:dims]
    ids, n_atoms, values, failed = [], [], [], 0
    for path in paths:
        part = np.load(path)
        ids.append(part["ids"])
        n_atoms.append(part["n_atoms"])
        values.append((((part["values"].astype(np.float32) - mean) / std) @ components.T).astype(np.float32))
        failed += int(part["n_failed"])
    ids, n_atoms = np.concatenate(ids), np.concatenate(n_atoms)
    np.savez(out / TARGETS, ids=ids, atom_ptr=np.concatenate(([0], np.cumsum(n_atoms))),
             values=np.concatenate(values), mean=mean, std=std, components=components,
             variance=variance[:dims].astype(np.float32))
    card = getattr(model, "card", {})
    meta = {"teacher": model.name, "sha256": model.sha256, "fingerprint": model.fingerprint,
            "label_overlap": card.get("label_overlap"), "layers": layers, "dims": int(dims),
            "variance_kept": float(variance[:dims].sum() / variance.sum()), "corpus": Path(corpus).name,
            "n_structures": len(ids), "n_failed": failed, "n_atoms": int(n_atoms.sum())}
    (out / META).write_text(json.dumps(meta, indent=1))
    return out


@dataclass(frozen=True)
class TeacherTargets:
    """Reduced per-atom teacher targets, and where each structure's rows are.

    Attributes:
        ids: corpus ids of the structures that have targets.
        atom_ptr: ``(len(ids) + 1,)`` offsets of each structure's rows in ``values``.
        values: ``(n_atoms, dims)`` float32 principal-component scores.
        variance: ``(dims,)`` the variance of each component (their sum: the loss's unit).
        meta: the contents of ``teacher.json``.
    """

    ids: np.ndarray
    atom_ptr: np.ndarray
    values: np.ndarray
    variance: np.ndarray
    meta: dict[str, Any]

    @classmethod
    def load(cls, folder: str | Path) -> TeacherTargets:
        """Read a targets folder written by :func:`build_teacher_targets`.

        Raises:
            FileNotFoundError: the folder holds no finished targets.
        """
        folder = Path(folder)
        if not (folder / TARGETS).exists() or not (folder / META).exists():
            raise FileNotFoundError(f"{folder}: no teacher targets ({TARGETS}, {META}); build them with "
                                    "ssl_featurizer.training.teacher.build_teacher_targets")
        data = np.load(folder / TARGETS)
        return cls(data["ids"], data["atom_ptr"], data["values"], data["variance"],
                   json.loads((folder / META).read_text()))

    @staticmethod
    def read_meta(folder: str | Path) -> dict[str, Any]:
        """Only ``teacher.json`` (the head's width and the card's text need no more)."""
        return json.loads((Path(folder) / META).read_text())

    def align(self, store_ids: np.ndarray, store_atoms: np.ndarray) -> np.ndarray:
        """For each structure of a graph cache, its row in :attr:`ids`, or -1 if it has no targets or a
        different number of atoms (then its targets cannot be matched atom by atom)."""
        position = {i: k for k, i in enumerate(self.ids.tolist())}
        index = np.array([position.get(str(i), -1) for i in store_ids], dtype=np.int64)
        ok = index >= 0
        sizes = self.atom_ptr[1:] - self.atom_ptr[:-1]
        ok[ok] = sizes[index[ok]] == np.asarray(store_atoms)[ok]
        index[~ok] = -1
        return index

    def rows(self, teacher_index: np.ndarray) -> np.ndarray:
        """The targets of the given structures (rows of :attr:`ids`), concatenated in that order."""
        return np.concatenate([self.values[self.atom_ptr[k]:self.atom_ptr[k + 1]] for k in teacher_index])
