"""Self-supervised tasks: seeded atom masking, prediction heads, losses and accuracies.

* **masked atoms**: a fraction (default 15 %, at least one) of the atoms of every structure have
  their whole element vector zeroed; the last layer's embedding of each masked atom must predict
  its group (18 classes), period (7) and, optionally, the element itself (100).
* **edge distance bins**: for every edge touching a masked atom, ``h_src + h_dst`` must predict
  the 0.2 Å bin (0..40) of the edge length.
* **denoising** (optional, ``denoise_sigma > 0``): every atom is displaced by Gaussian noise of
  ``denoise_sigma`` Å per Cartesian component; the encoder sees the perturbed interatomic distances,
  and for every edge a small head on ``h_src + h_dst`` and the noisy distance must predict the clean
  distance (the correction, in units of ``denoise_sigma``). It teaches geometry (which bond lengths a
  chemical environment prefers), not only identity. Needs a graph cache with edge vectors.
* **contrastive** (optional): two views of every structure — the masked cell and an independently masked
  supercell (doubled along its shortest lattice vector) — are mean-pooled at the last layer, projected by a
  small MLP, and pulled together against the other structures of the batch with the NT-Xent loss.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ssl_featurizer.graph.elements import MAX_Z

N_GROUPS, N_PERIODS, N_BINS = 18, 7, 41


@dataclass(frozen=True)
class TaskConfig:
    """Which self-supervised targets are trained, and how atoms are masked."""

    mask_fraction: float = 0.15
    predict_group: bool = True
    predict_period: bool = True
    predict_element: bool = True
    predict_edge_bins: bool = True
    bin_width: float = 0.2
    contrastive: bool = False
    temperature: float = 0.1
    contrastive_weight: float = 1.0
    denoise_sigma: float = 0.0
    denoise_weight: float = 1.0

    def to_dict(self) -> dict:
        """Plain-dict form for JSON model cards."""
        return asdict(self)


def mask_atoms(batch_vector: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Choose ``max(1, round(fraction * n))`` atoms of every graph, uniformly at random.

    Args:
        batch_vector: ``(N,)`` graph index of each atom (non-decreasing).
        fraction: share of atoms masked per graph.
        rng: seeded generator; the same generator state gives the same mask.

    Returns:
        Boolean mask ``(N,)``.
    """
    keys = rng.random(batch_vector.shape[0])
    order = np.lexsort((keys, batch_vector))
    counts = np.bincount(batch_vector)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size) - np.repeat(starts, counts)
    n_mask = np.maximum(1, np.rint(fraction * counts)).astype(np.int64)
    return rank < n_mask[batch_vector]


class SSLHeads(nn.Module):
    """Linear prediction heads on the last layer's atom embeddings.

    Shapes:
        - atom head: ``(M, width) → (M, 18 + 7 + 100)`` logits (group | period | element)
        - edge head: ``(E_m, width) → (E_m, 41)`` logits
        - denoise head (optional): ``(E, width + 1) → (E, 1)`` distance correction / sigma
    """

    def __init__(self, width: int, projection: bool = False, denoise: bool = False):
        super().__init__()
        self.atom = nn.Linear(width, N_GROUPS + N_PERIODS + MAX_Z)
        self.edge = nn.Linear(width, N_BINS)
        if projection:
            self.project = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))
        if denoise:
            self.denoise = nn.Sequential(nn.Linear(width + 1, width), nn.SiLU(), nn.Linear(width, 1))


def perturbed_distances(vectors: Tensor, edge_index: Tensor, noise: Tensor) -> Tensor:
    """Edge lengths after displacing every atom by ``noise``.

    Edge ``k`` runs from neighbour ``edge_index[0, k]`` to centre ``edge_index[1, k]`` and ``vectors[k]`` points
    from the centre to the neighbour's periodic image, so the perturbed vector is
    ``vectors[k] + noise[src] - noise[dst]`` (every image of an atom moves with it).

    Shapes:
        - vectors: ``(E, 3)``; edge_index: ``(2, E)``; noise: ``(N, 3)``
        - returns: ``(E,)``
    """
    return torch.linalg.vector_norm(vectors + noise[edge_index[0]] - noise[edge_index[1]], dim=1)


def denoise_loss(heads: SSLHeads, h_last: Tensor, edge_index: Tensor, clean: Tensor, noisy: Tensor,
                 config: TaskConfig, normalizer: float | None = None) -> dict[str, Tensor]:
    """Squared error of the predicted clean distance of every edge, in units of ``denoise_sigma``.

    Args:
        normalizer: if given, the summed squared error is divided by it instead of taking the mean
            (data-parallel runs pass the global edge count divided by the world size).

    Returns:
        ``denoise_loss``, ``denoise_correct`` / ``denoise_count`` (edges whose predicted distance is closer to the
        clean one than the noisy input was) and the weighted ``loss`` term.
    """
    sigma = config.denoise_sigma
    src, dst = edge_index
    features = torch.cat([h_last[src] + h_last[dst], (noisy / 8.0)[:, None]], dim=1)
    predicted = heads.denoise(features).squeeze(1)
    target = (clean - noisy) / sigma
    squared = (predicted - target) ** 2
    loss = squared.mean() if normalizer is None else squared.sum() / normalizer
    better = (predicted.detach() - target).abs() < target.abs()
    return {"loss": config.denoise_weight * loss, "denoise_loss": loss.detach(), "denoise_correct": better.sum(),
            "denoise_count": torch.tensor(target.numel())}


def nt_xent(p1: Tensor, p2: Tensor, temperature: float) -> tuple[Tensor, Tensor]:
    r"""Normalised-temperature cross-entropy of paired views (SimCLR), symmetric in the two views.

    With :math:`s_{ij} = \cos(p^1_i, p^2_j) / \tau`, the loss is the mean over ``i`` of the cross-entropy
    of row ``i`` of ``s`` (and of ``s^T``) against the diagonal: each structure's other view is the positive,
    the other structures of the batch are the negatives.

    Shapes:
        - p1, p2: ``(B, d)`` projections of the two views of the same ``B`` structures
        - returns: scalar loss, and the number of rows whose most similar other-view entry is its own pair

    Returns:
        ``(loss, correct)``.
    """
    z1, z2 = F.normalize(p1, dim=1), F.normalize(p2, dim=1)
    sim = z1 @ z2.T / temperature
    target = torch.arange(sim.shape[0], device=sim.device)
    loss = 0.5 * (F.cross_entropy(sim, target) + F.cross_entropy(sim.T, target))
    return loss, (sim.argmax(1) == target).sum()


def contrastive_loss(heads: SSLHeads, h1: Tensor, batch1: Tensor, h2: Tensor, batch2: Tensor,
                     n_graphs: int, config: TaskConfig) -> dict[str, Tensor]:
    """NT-Xent between the mean-pooled, projected last-layer embeddings of two views of each graph.

    Returns:
        ``contrastive_loss``, ``contrastive_correct`` / ``contrastive_count`` (top-1 retrieval of the
        paired view within the batch) and the weighted ``loss`` term.
    """
    from torch_geometric.utils import scatter

    g1 = scatter(h1, batch1, dim=0, dim_size=n_graphs, reduce="mean")
    g2 = scatter(h2, batch2, dim=0, dim_size=n_graphs, reduce="mean")
    loss, correct = nt_xent(heads.project(g1), heads.project(g2), config.temperature)
    return {"loss": config.contrastive_weight * loss, "contrastive_loss": loss.detach(),
            "contrastive_correct": correct, "contrastive_count": torch.tensor(n_graphs)}


def ssl_losses(heads: SSLHeads, h_last: Tensor, z: Tensor, masked: Tensor, edge_index: Tensor,
               distances: Tensor, group: Tensor, period: Tensor, config: TaskConfig,
               normalizers: dict[str, float] | None = None) -> dict[str, Tensor]:
    """Losses (cross-entropy) and correct-prediction counts of the enabled tasks.

    Args:
        normalizers: if given, each task's loss is its *summed* cross-entropy divided by
            ``normalizers["atom"]`` (atom tasks) or ``normalizers["edge"]`` instead of the mean. Data-parallel
            training uses it so that the ranks' losses add up to the mean over the whole global batch.

    Returns:
        dict with ``loss`` (sum of enabled losses), and for each task ``<task>_loss``,
        ``<task>_correct`` and ``<task>_count`` (counts for accuracy bookkeeping).
    """
    out: dict[str, Tensor] = {}
    logits = heads.atom(h_last[masked])
    targets = {
        "group": (logits[:, :N_GROUPS], group[masked], config.predict_group),
        "period": (logits[:, N_GROUPS:N_GROUPS + N_PERIODS], period[masked], config.predict_period),
        "element": (logits[:, N_GROUPS + N_PERIODS:], z[masked] - 1, config.predict_element),
    }
    if config.predict_edge_bins:
        touch = masked[edge_index[0]] | masked[edge_index[1]]
        e = edge_index[:, touch]
        bins = torch.clamp((distances[touch] / config.bin_width).long(), 0, N_BINS - 1)
        targets["edge"] = (heads.edge(h_last[e[0]] + h_last[e[1]]), bins, True)
    total = h_last.new_zeros(())
    for name, (lg, y, enabled) in targets.items():
        if not enabled:
            continue
        if normalizers is None:
            loss = F.cross_entropy(lg, y)
        else:
            loss = F.cross_entropy(lg, y, reduction="sum") / normalizers["edge" if name == "edge" else "atom"]
        total = total + loss
        out[f"{name}_loss"] = loss.detach()
        out[f"{name}_correct"] = (lg.argmax(1) == y).sum()
        out[f"{name}_count"] = torch.tensor(y.numel())
    out["loss"] = total
    return out
