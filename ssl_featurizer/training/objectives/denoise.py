"""Denoising: atoms are displaced at random; every edge predicts its clean length from the noisy graph.

Each atom moves by Gaussian noise of ``sigma`` Å per Cartesian component (all periodic images of an atom
move with it), the encoder sees the perturbed edge lengths, and a small head on ``h_src + h_dst`` and the
noisy length predicts the correction to the clean length, in units of ``sigma``. The target teaches
geometry — which bond lengths a chemical environment prefers — rather than identity alone. It needs a
graph cache built with edge vectors (``build_graph_cache(..., vectors=True)``).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ssl_featurizer.training.objectives.objective import Objective, Resources, Step

if TYPE_CHECKING:
    from torch import Tensor, nn


@dataclass(frozen=True)
class DenoiseParams:
    """Noise per Cartesian component (Å) and the weight of the loss."""

    sigma: float = 0.1
    weight: float = 1.0


def perturbed_vectors(vectors: Tensor, edge_index: Tensor, noise: Tensor) -> Tensor:
    """Edge vectors after displacing every atom by ``noise``.

    Edge ``k`` runs from neighbour ``edge_index[0, k]`` to centre ``edge_index[1, k]`` and ``vectors[k]`` points
    from the centre to the neighbour's periodic image, so the perturbed vector is
    ``vectors[k] + noise[src] - noise[dst]``.

    Shapes:
        - vectors: ``(E, 3)``; edge_index: ``(2, E)``; noise: ``(N, 3)``
        - returns: ``(E, 3)``
    """
    return vectors + noise[edge_index[0]] - noise[edge_index[1]]


class Denoise(Objective):
    """Squared error of the predicted clean edge length, in units of ``sigma``.

    Shapes:
        - head: ``(E, width + 1) → (E, 1)`` (``h_src + h_dst`` and the noisy length / 8 Å)
    """

    name, order, Params = "denoise", 3, DenoiseParams
    needs_vectors = True

    def make_head(self, width: int) -> nn.Module:
        from torch import nn

        return nn.Sequential(nn.Linear(width + 1, width), nn.SiLU(), nn.Linear(width, 1))

    def prepare(self, step: Step, rng: np.random.Generator, resources: Resources) -> None:
        import torch

        noise = (rng.standard_normal((step.n_global_atoms, 3)) * self.params.sigma).astype(np.float32)
        mine = torch.from_numpy(noise[step.global_atoms])
        step.encoder_vector = perturbed_vectors(step.vector, step.edge_index, mine)
        step.extra["noise"], step.extra["noise_sigma"] = mine, self.params.sigma  # for position denoising
        step.encoder_distance = torch.linalg.vector_norm(step.encoder_vector, dim=1)

    def loss(self, head: nn.Module, step: Step, encoder: nn.Module) -> dict[str, Tensor]:
        import torch

        sigma, noisy = self.params.sigma, step.encoder_distance
        src, dst = step.edge_index
        predicted = head(torch.cat([step.h[src] + step.h[dst], (noisy / 8.0)[:, None]], dim=1)).squeeze(1)
        target = (step.distance - noisy) / sigma
        loss = step.normalised((predicted - target) ** 2, "all_edges")
        better = (predicted.detach() - target).abs() < target.abs()
        return {"loss": self.params.weight * loss, "denoise_loss": loss.detach(), "denoise_correct": better.sum(),
                "denoise_count": torch.tensor(target.numel())}

    def describe(self) -> str:
        return (f"Denoising: every atom displaced by Gaussian noise of {self.params.sigma} Å per component; from the "
                f"noisy graph, predict each edge's clean length (squared error in units of sigma, weight "
                f"{self.params.weight}).")

    def card_rows(self, metrics: dict[str, float]) -> list[str]:
        if "val_denoise_acc" not in metrics:
            return []
        return [f"| denoising: edges moved closer to their clean length | {metrics['val_denoise_acc']:.3f} | — |",
                f"| denoising: mean squared error / sigma² (noisy input: 2) | {metrics['val_denoise_loss']:.3f} | 2 |"]

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--denoise-sigma", type=float, default=0.0,
                            help="denoising: displace atoms by Gaussian noise of this many Å per component and "
                                 "predict the clean edge lengths (0: off; builds a cache with edge vectors)")
        parser.add_argument("--denoise-weight", type=float, default=1.0, help="weight of the denoising loss")

    @classmethod
    def params_from_args(cls, args: argparse.Namespace) -> DenoiseParams | None:
        return DenoiseParams(args.denoise_sigma, args.denoise_weight) if args.denoise_sigma > 0 else None

    @classmethod
    def command_flags(cls, params: DenoiseParams | None) -> list[str]:
        if params is None:
            return []
        return ["--denoise-sigma", f"{params.sigma:g}"] + (
            [] if params.weight == 1.0 else ["--denoise-weight", f"{params.weight:g}"])
