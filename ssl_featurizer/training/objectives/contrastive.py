"""Contrastive: each cell and its independently masked supercell are pulled together (NT-Xent).

The second view is the structure doubled along its shortest lattice vector (a separate graph cache,
:func:`ssl_featurizer.training.cache.doubled_supercell`); both views are mean-pooled at the last layer,
projected by a small MLP, and each structure's other view is the positive among the batch's structures.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ssl_featurizer.training.objectives.objective import Objective, Resources, Step, mask_atoms

if TYPE_CHECKING:
    from torch import Tensor, nn


@dataclass(frozen=True)
class ContrastiveParams:
    """NT-Xent temperature and the weight of the loss."""

    temperature: float = 0.1
    weight: float = 1.0


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
    import torch
    from torch.nn import functional as F

    z1, z2 = F.normalize(p1, dim=1), F.normalize(p2, dim=1)
    sim = z1 @ z2.T / temperature
    target = torch.arange(sim.shape[0], device=sim.device)
    loss = 0.5 * (F.cross_entropy(sim, target) + F.cross_entropy(sim.T, target))
    return loss, (sim.argmax(1) == target).sum()


class Contrastive(Objective):
    """NT-Xent between the mean-pooled, projected last layers of the two views of each structure.

    Shapes:
        - head (projection): ``(B, width) → (B, width)``
    """

    name, order, Params = "contrastive", 2, ContrastiveParams
    needs_views = True
    single_process = True  # its negatives are the whole batch

    def make_head(self, width: int) -> nn.Module:
        from torch import nn

        return nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))

    def prepare(self, step: Step, rng: np.random.Generator, resources: Resources) -> None:
        import torch

        v = resources.views.batch(resources.view_of[step.indices])
        masked = torch.from_numpy(mask_atoms(v.batch.numpy(), resources.mask_fraction, rng))
        step.extra["view"] = {"x": resources.table[v.z].masked_fill(masked[:, None], 0.0),
                              "edge_index": v.edge_index, "distance": v.distance, "batch": v.batch,
                              "vector": v.vector}

    def loss(self, head: nn.Module, step: Step, encoder: nn.Module) -> dict[str, Tensor]:
        import torch

        from ssl_featurizer.graph.batch import graph_mean

        view = step.extra["view"]
        h_view = encoder(view["x"], view["edge_index"], view["distance"], vectors=view["vector"])[-1]
        g1 = graph_mean(step.h, step.batch, step.n_graphs)
        g2 = graph_mean(h_view, view["batch"], step.n_graphs)
        loss, correct = nt_xent(head(g1), head(g2), self.params.temperature)
        return {"loss": self.params.weight * loss, "contrastive_loss": loss.detach(),
                "contrastive_correct": correct, "contrastive_count": torch.tensor(step.n_graphs)}

    def describe(self) -> str:
        return (f"Contrastive task: on (NT-Xent, temperature {self.params.temperature}, weight {self.params.weight}, "
                "between the masked cell and its independently masked supercell doubled along the shortest lattice "
                "vector).")

    def card_rows(self, metrics: dict[str, float]) -> list[str]:
        if "val_contrastive_acc" not in metrics:
            return []
        return [(f"| contrastive: own supercell view most similar among 256 | {metrics['val_contrastive_acc']:.3f} |"
                " 1/256 |")]

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--contrastive", action="store_true",
                            help="add the NT-Xent loss between each cell and its doubled supercell (both masked)")
        parser.add_argument("--temperature", type=float, default=0.1, help="NT-Xent temperature")

    @classmethod
    def params_from_args(cls, args: argparse.Namespace) -> ContrastiveParams | None:
        return ContrastiveParams(temperature=args.temperature) if args.contrastive else None

    @classmethod
    def command_flags(cls, params: ContrastiveParams | None) -> list[str]:
        if params is None:
            return []
        if params.weight != 1.0:
            raise ValueError("the contrastive weight is set from Python only")
        return ["--contrastive"] + ([] if params.temperature == 0.1 else ["--temperature", f"{params.temperature:g}"])
