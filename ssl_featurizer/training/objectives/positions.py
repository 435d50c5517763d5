"""Position denoising: from the displaced atoms of the denoising objective, predict each atom's way back.

It uses the displacement that :mod:`.denoise` draws (it needs that objective on): every atom of the noisy graph
predicts the move that restores its clean position, centred per structure (a rigid shift of a whole crystal is not
observable), in units of ``sigma``. The prediction is equivariant by construction: a sum over the atom's bonds of a
learned scalar (from both ends' last-layer embeddings and the noisy bond length) times the bond's noisy direction,
so it rotates with the crystal. Near equilibrium the way back is what a force field learns, which is why this target
asks the encoder for directions (bond angles), which edge lengths alone do not.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ssl_featurizer.training.objectives.objective import Objective, Step

if TYPE_CHECKING:
    from torch import Tensor, nn


@dataclass(frozen=True)
class PositionsParams:
    """The weight of the loss (the displacement is the denoising objective's)."""

    weight: float = 1.0


class DenoisePositions(Objective):
    """Squared error of the predicted restoring move per atom, per component, in units of ``sigma²``.

    .. math::
        \\hat{\\delta}_i = \\sum_{j \\in \\mathcal{N}(i)} s\\big(h_i, h_j, \\tilde d_{ij}\\big)\\,
        \\frac{\\tilde{\\mathbf{v}}_{ij}}{\\tilde d_{ij}},
        \\qquad \\delta_i = -\\frac{\\mathbf{n}_i - \\bar{\\mathbf{n}}}{\\sigma}

    with :math:`\\tilde{\\mathbf{v}}_{ij}` the noisy centre → neighbour vector, :math:`\\mathbf{n}_i` atom ``i``'s
    displacement and :math:`\\bar{\\mathbf{n}}` its structure's mean displacement.

    Shapes:
        - head: ``(E, 2 * width + 1) → (E, 1)`` (the scalar ``s`` of every bond)
        - prediction and target: ``(N, 3)``
    """

    name, order, Params = "denoise_positions", 5, PositionsParams
    needs_vectors = True
    requires: ClassVar[tuple[str, ...]] = ("denoise",)

    @property
    def parts(self) -> list[str]:
        return ["positions"]

    def make_head(self, width: int) -> nn.Module:
        from torch import nn

        return nn.Sequential(nn.Linear(2 * width + 1, width), nn.SiLU(), nn.Linear(width, 1))

    def loss(self, head: nn.Module, step: Step, encoder: nn.Module) -> dict[str, Tensor]:
        import torch

        from ssl_featurizer.graph.batch import graph_mean

        noise, sigma = step.extra["noise"], step.extra["noise_sigma"]
        target = -(noise - graph_mean(noise, step.batch, step.n_graphs)[step.batch])
        target = target / sigma
        src, dst = step.edge_index
        length = torch.linalg.vector_norm(step.encoder_vector, dim=1, keepdim=True)
        scalar = head(torch.cat([step.h[dst], step.h[src], length / 8.0], dim=1))
        predicted = torch.zeros_like(target).index_add_(0, dst, scalar * step.encoder_vector / length)
        error = (predicted - target).square().sum(1)
        loss = step.normalised(error / 3.0, "all_atoms")
        closer = error.detach() < target.square().sum(1)
        return {"loss": self.params.weight * loss, "positions_loss": loss.detach(), "positions_correct": closer.sum(),
                "positions_count": torch.tensor(target.shape[0])}

    def describe(self) -> str:
        return ("Position denoising: with the denoising displacement, every atom predicts the move back to its clean "
                "position (centred per structure, in units of sigma) as a sum over its bonds of a learned scalar times "
                f"the bond's noisy direction (rotates with the crystal); squared error, weight {self.params.weight}.")

    def card_rows(self, metrics: dict[str, float]) -> list[str]:
        if "val_positions_acc" not in metrics:
            return []
        return [(f"| position denoising: atoms moved closer to their clean position | {metrics['val_positions_acc']:.3f} "
                "| — |"),
                (f"| position denoising: mean squared error per component / sigma² (no move: about 1) | "
                f"{metrics['val_positions_loss']:.3f} | 1 |")]

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--denoise-positions", action="store_true",
                            help="position denoising: every atom also predicts its way back from the denoising "
                                 "displacement (needs --denoise-sigma)")
        parser.add_argument("--positions-weight", type=float, default=1.0, help="weight of the position-denoising loss")

    @classmethod
    def params_from_args(cls, args: argparse.Namespace) -> PositionsParams | None:
        return PositionsParams(args.positions_weight) if args.denoise_positions else None

    @classmethod
    def command_flags(cls, params: PositionsParams | None) -> list[str]:
        if params is None:
            return []
        return ["--denoise-positions"] + ([] if params.weight == 1.0 else ["--positions-weight", f"{params.weight:g}"])
