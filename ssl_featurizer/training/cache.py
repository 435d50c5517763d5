"""Graph cache: build every corpus graph once, store flat arrays in shards, batch them fast."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ssl_featurizer.graph.batch import collate_arrays
from ssl_featurizer.graph.crystal_graph import GraphConfig, StructureError, build_graph
from ssl_featurizer.graph.elements import MAX_Z
from ssl_featurizer.readers import open_text, structure_from_object

MANIFEST = "manifest.json"


def views_cache_dir(cache_dir: str | Path) -> Path:
    """Default location of a cache's supercell-view cache (contrastive pretraining): ``<cache_dir>-supercell``."""
    cache_dir = Path(cache_dir)
    return cache_dir.with_name(cache_dir.name + "-supercell")


def doubled_supercell(structure):
    """The structure doubled along its shortest lattice vector (the contrastive supercell view)."""
    scaling = [1, 1, 1]
    scaling[int(np.argmin(structure.lattice.abc))] = 2
    return structure * scaling


def _build_shard(args: tuple[list[str], GraphConfig, str, bool, bool]) -> tuple[str, int, list[tuple[str, str]]]:
    lines, config, out_file, supercell, vectors = args
    ids, z, src, dst, dist, vec, n_atoms, n_edges, errors = [], [], [], [], [], [], [], [], []
    for line in lines:
        row = json.loads(line)
        structure, reason = structure_from_object(row)
        if structure is None:
            errors.append((row["id"], reason))
            continue
        try:
            g = build_graph(doubled_supercell(structure) if supercell else structure, config, vectors=vectors)
        except StructureError as exc:
            errors.append((row["id"], str(exc)))
            continue
        ids.append(row["id"])
        z.append(g.atomic_numbers.astype(np.uint8))
        src.append(g.edge_index[0].astype(np.int32))
        dst.append(g.edge_index[1].astype(np.int32))
        dist.append(g.distances)
        if vectors:
            vec.append(g.vectors)
        n_atoms.append(g.n_atoms)
        n_edges.append(g.n_edges)
    tmp = out_file + ".tmp.npz"
    arrays = {"vec": np.concatenate(vec)} if vectors else {}
    np.savez(tmp, ids=np.array(ids), z=np.concatenate(z), src=np.concatenate(src), dst=np.concatenate(dst),
             dist=np.concatenate(dist), n_atoms=np.array(n_atoms, np.int32), n_edges=np.array(n_edges, np.int32),
             **arrays)
    os.replace(tmp, out_file)
    return out_file, len(ids), errors


def build_graph_cache(corpus: str | Path, cache_dir: str | Path, config: GraphConfig | None = None,
                      shard_size: int = 5000, n_jobs: int = 1, limit: int | None = None,
                      progress: bool = True, supercell: bool = False, vectors: bool = False) -> Path:
    """Build (or finish building) the graph cache of a corpus; existing shards are reused.

    With ``supercell=True`` every structure is first doubled along its shortest lattice vector
    (:func:`doubled_supercell`): the second view of contrastive pretraining, stored under the same ids.
    With ``vectors=True`` each edge's Cartesian vector is stored too (12 more bytes per edge), for
    objectives that perturb atom positions (denoising).

    Returns:
        The cache directory, holding ``shard_*.npz`` and ``manifest.json``. In a data-parallel run
        (``torchrun``), rank 0 builds it while the other ranks wait.
    """
    from ssl_featurizer.training import distributed as ddp

    rank, world_size = ddp.world()
    if world_size > 1:  # data-parallel run: rank 0 builds, the others wait for it
        if rank == 0:
            _build_graph_cache(corpus, cache_dir, config, shard_size, n_jobs, limit, progress, supercell, vectors)
        ddp.barrier()
        return Path(cache_dir)
    return _build_graph_cache(corpus, cache_dir, config, shard_size, n_jobs, limit, progress, supercell, vectors)


def _build_graph_cache(corpus: str | Path, cache_dir: str | Path, config: GraphConfig | None, shard_size: int,
                       n_jobs: int, limit: int | None, progress: bool, supercell: bool, vectors: bool) -> Path:
    from tqdm.auto import tqdm

    config = config or GraphConfig()
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = cache_dir / MANIFEST
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if (GraphConfig(**manifest["graph"]) == config and manifest.get("limit") == limit
                and manifest.get("supercell", False) == supercell and (manifest.get("vectors", False) or not vectors)):
            return cache_dir
        raise ValueError(f"{cache_dir} holds a cache built with other settings; use another --cache-dir")
    jobs = []
    with open_text(corpus) as fh:
        lines = itertools.islice(fh, limit)
        for k in itertools.count():
            chunk = list(itertools.islice(lines, shard_size))
            if not chunk:
                break
            jobs.append((chunk, config, str(cache_dir / f"shard_{k:04d}.npz"), supercell, vectors))
    todo = [j for j in jobs if not Path(j[2]).exists()]
    errors: list[tuple[str, str]] = []
    bar = tqdm(total=len(todo), desc="graph cache (shards)", disable=not progress)
    if n_jobs > 1:
        with ProcessPoolExecutor(n_jobs) as pool:
            for _, _, errs in pool.map(_build_shard, todo):
                errors += errs
                bar.update()
    else:
        for job in todo:
            errors += _build_shard(job)[2]
            bar.update()
    bar.close()
    manifest = {"corpus": str(corpus), "graph": config.to_dict(), "limit": limit, "supercell": supercell,
                "vectors": vectors, "shards": [Path(j[2]).name for j in jobs], "errors": errors}
    manifest_path.write_text(json.dumps(manifest, indent=1))
    return cache_dir


@dataclass
class GraphStore:
    """All cached graphs as flat arrays with offsets (memory: ~13 bytes per edge, 25 with edge vectors)."""

    ids: np.ndarray
    z: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    dist: np.ndarray
    atom_ptr: np.ndarray
    edge_ptr: np.ndarray
    fingerprint: str
    vec: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def load(cls, cache_dir: str | Path) -> GraphStore:
        """Load every shard listed in the manifest."""
        cache_dir = Path(cache_dir)
        manifest = json.loads((cache_dir / MANIFEST).read_text())
        parts = [np.load(cache_dir / name) for name in manifest["shards"]]
        cat = {k: np.concatenate([p[k] for p in parts]) for k in ("ids", "z", "src", "dst", "dist",
                                                                   "n_atoms", "n_edges")}
        key = cat["ids"].tobytes() + json.dumps(manifest["graph"]).encode()
        if manifest.get("supercell"):
            key += b"|supercell"
        digest = hashlib.sha256(key).hexdigest()
        vec = np.concatenate([p["vec"] for p in parts]) if manifest.get("vectors") else None
        return cls(cat["ids"], cat["z"], cat["src"], cat["dst"], cat["dist"],
                   np.concatenate(([0], np.cumsum(cat["n_atoms"], dtype=np.int64))),
                   np.concatenate(([0], np.cumsum(cat["n_edges"], dtype=np.int64))), digest, vec)

    def element_counts(self, indices: Sequence[int]) -> dict[str, int]:
        """For every element H..Fm, the number of the graphs at ``indices`` that hold it (for model cards: an
        element no training structure holds has an untrained embedding)."""
        from pymatgen.core import Element

        owner = np.repeat(np.arange(len(self)), self.atom_ptr[1:] - self.atom_ptr[:-1])
        keep = np.isin(owner, np.asarray(indices, dtype=np.int64))
        width = int(self.z.max(initial=0)) + 1
        pairs = np.unique(owner[keep].astype(np.int64) * width + self.z[keep])
        counts = np.bincount(pairs % width, minlength=MAX_Z + 1)
        return {Element.from_Z(z).symbol: int(counts[z]) for z in range(1, MAX_Z + 1)}

    def n_atoms(self, indices: Sequence[int]) -> np.ndarray:
        """Atoms per graph for the given graph indices."""
        idx = np.asarray(indices)
        return self.atom_ptr[idx + 1] - self.atom_ptr[idx]

    def batch(self, indices: Sequence[int]):
        """Collate the graphs at ``indices`` into one :class:`~ssl_featurizer.graph.batch.GraphBatch` (with
        ``vector`` (E, 3) if cached)."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size == 0:  # a data-parallel rank with no share of a small last batch
            b = collate_arrays(self.z[:0], np.zeros((2, 0), np.int64), self.dist[:0], np.zeros(0, np.int64),
                               np.zeros(0, np.int64))
            if self.vec is not None:
                b.vector = torch.zeros((0, 3))
            return b
        a = [slice(self.atom_ptr[i], self.atom_ptr[i + 1]) for i in idx]
        e = [slice(self.edge_ptr[i], self.edge_ptr[i + 1]) for i in idx]
        edge_index = np.stack([np.concatenate([self.src[s] for s in e]), np.concatenate([self.dst[s] for s in e])])
        b = collate_arrays(np.concatenate([self.z[s] for s in a]), edge_index,
                           np.concatenate([self.dist[s] for s in e]), self.n_atoms(idx),
                           self.edge_ptr[idx + 1] - self.edge_ptr[idx])
        if self.vec is not None:
            b.vector = torch.from_numpy(np.concatenate([self.vec[s] for s in e]))
        return b
