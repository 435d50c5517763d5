"""Collate crystal graphs into one PyG ``Batch`` (disjoint union), without a Python loop per edge."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch_geometric.data import Batch

from ssl_featurizer.graph.crystal_graph import CrystalGraph


def collate_arrays(
    atomic_numbers: np.ndarray,
    edge_index: np.ndarray,
    distances: np.ndarray,
    n_atoms: np.ndarray,
    n_edges: np.ndarray,
) -> Batch:
    """Make a PyG ``Batch`` from already concatenated per-graph arrays.

    Args:
        atomic_numbers: ``(N,)`` all graphs' atoms, graph after graph.
        edge_index: ``(2, E)`` edges with *per-graph* (local) node indices, graph after graph.
        distances: ``(E,)``.
        n_atoms: ``(B,)`` atoms per graph.
        n_edges: ``(B,)`` edges per graph.

    Returns:
        ``Batch`` with ``z`` (N,), ``edge_index`` (2, E) global indices, ``distance`` (E,),
        ``batch`` (N,) graph of each atom, and ``ptr`` (B+1,).
    """
    n_atoms = np.asarray(n_atoms, dtype=np.int64)
    ptr = np.concatenate(([0], np.cumsum(n_atoms)))
    shift = np.repeat(ptr[:-1], np.asarray(n_edges, dtype=np.int64))
    batch = Batch(
        z=torch.from_numpy(np.asarray(atomic_numbers, dtype=np.int64)),
        edge_index=torch.from_numpy(np.asarray(edge_index, dtype=np.int64) + shift[None, :]),
        distance=torch.from_numpy(np.asarray(distances, dtype=np.float32)),
        batch=torch.from_numpy(np.repeat(np.arange(len(n_atoms)), n_atoms)),
        ptr=torch.from_numpy(ptr),
    )
    batch._num_graphs = len(n_atoms)
    return batch


def collate_graphs(graphs: Sequence[CrystalGraph]) -> Batch:
    """Collate a list of :class:`CrystalGraph` into one ``Batch`` (see :func:`collate_arrays`), with ``vector``
    ``(E, 3)`` when every graph holds its edge vectors."""
    if not graphs:
        raise ValueError("cannot collate an empty list of graphs")
    batch = collate_arrays(
        np.concatenate([g.atomic_numbers for g in graphs]),
        np.concatenate([g.edge_index for g in graphs], axis=1),
        np.concatenate([g.distances for g in graphs]),
        np.array([g.n_atoms for g in graphs]),
        np.array([g.n_edges for g in graphs]),
    )
    if all(g.vectors is not None for g in graphs):
        batch.vector = torch.from_numpy(np.concatenate([g.vectors for g in graphs]).astype(np.float32))
    return batch
