"""Collate crystal graphs into one :class:`GraphBatch` (disjoint union), without a Python loop per edge.

The batch is a plain container of tensors in PyG's naming (``z``, ``edge_index``, ``distance``, ``batch``, ``ptr``),
so the code that reads it reads as it would with ``torch_geometric.data.Batch``; importing PyG is not needed (it costs several
seconds per process, paid by every CLI call and every worker).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ssl_featurizer.graph.crystal_graph import CrystalGraph


@dataclass
class GraphBatch:
    """Several crystal graphs as one disjoint graph.

    Shapes:
        ``z`` (N,) atomic numbers; ``edge_index`` (2, E) global node indices (source, target); ``distance`` (E,);
        ``batch`` (N,) graph of each atom; ``ptr`` (B+1,) first atom of each graph (and N); ``vector`` (E, 3) bond
        vectors (target → source neighbour image) when the graphs hold them, else None.
    """

    z: Tensor
    edge_index: Tensor
    distance: Tensor
    batch: Tensor
    ptr: Tensor
    vector: Tensor | None = None


def graph_mean(values: Tensor, batch: Tensor, n_graphs: int) -> Tensor:
    """Mean of ``values`` (N, ...) over the atoms of each graph: (B, ...); a graph without atoms gets zeros."""
    counts = torch.bincount(batch, minlength=n_graphs).clamp_(min=1).to(values.dtype)
    total = torch.zeros((n_graphs, *values.shape[1:]), dtype=values.dtype, device=values.device)
    return total.index_add_(0, batch, values) / counts.view(-1, *([1] * (values.dim() - 1)))


def collate_arrays(
    atomic_numbers: np.ndarray,
    edge_index: np.ndarray,
    distances: np.ndarray,
    n_atoms: np.ndarray,
    n_edges: np.ndarray,
) -> GraphBatch:
    """Make a :class:`GraphBatch` from already concatenated per-graph arrays.

    Args:
        atomic_numbers: ``(N,)`` all graphs' atoms, graph after graph.
        edge_index: ``(2, E)`` edges with *per-graph* (local) node indices, graph after graph.
        distances: ``(E,)``.
        n_atoms: ``(B,)`` atoms per graph.
        n_edges: ``(B,)`` edges per graph.

    Returns:
        ``GraphBatch`` with ``z`` (N,), ``edge_index`` (2, E) global indices, ``distance`` (E,),
        ``batch`` (N,) graph of each atom, and ``ptr`` (B+1,).
    """
    n_atoms = np.asarray(n_atoms, dtype=np.int64)
    ptr = np.concatenate(([0], np.cumsum(n_atoms)))
    shift = np.repeat(ptr[:-1], np.asarray(n_edges, dtype=np.int64))
    return GraphBatch(
        z=torch.from_numpy(np.asarray(atomic_numbers, dtype=np.int64)),
        edge_index=torch.from_numpy(np.asarray(edge_index, dtype=np.int64) + shift[None, :]),
        distance=torch.from_numpy(np.asarray(distances, dtype=np.float32)),
        batch=torch.from_numpy(np.repeat(np.arange(len(n_atoms)), n_atoms)),
        ptr=torch.from_numpy(ptr),
    )


def collate_graphs(graphs: Sequence[CrystalGraph]) -> GraphBatch:
    """Collate a list of :class:`CrystalGraph` into one :class:`GraphBatch` (see :func:`collate_arrays`), with ``vector``
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
