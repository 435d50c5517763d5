"""Edge distance bins: every edge touching a masked atom predicts the bin of its length."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ssl_featurizer.training.objectives.objective import Objective, Step, accuracy_counts

if TYPE_CHECKING:
    from torch import Tensor, nn

N_BINS = 41


@dataclass(frozen=True)
class EdgeBinsParams:
    """Bin width (Å) of the edge-length classes (41 bins; the last one holds every longer edge)."""

    bin_width: float = 0.2


class EdgeBins(Objective):
    """Cross-entropy of the (clean) length bin of each edge touching a masked atom, from ``h_src + h_dst``.

    Shapes:
        - head: ``(E_m, width) → (E_m, 41)`` logits, ``E_m`` edges touching a masked atom
    """

    name, order, Params = "edge_bins", 1, EdgeBinsParams

    @property
    def parts(self) -> list[str]:
        return ["edge"]

    def make_head(self, width: int) -> nn.Module:
        from torch import nn

        return nn.Linear(width, N_BINS)

    def loss(self, head: nn.Module, step: Step, encoder: nn.Module) -> dict[str, Tensor]:
        import torch
        from torch.nn import functional as F

        touch = step.masked[step.edge_index[0]] | step.masked[step.edge_index[1]]
        e = step.edge_index[:, touch]
        bins = torch.clamp((step.distance[touch] / self.params.bin_width).long(), 0, N_BINS - 1)
        logits = head(step.h[e[0]] + step.h[e[1]])
        loss = step.normalised(F.cross_entropy(logits, bins, reduction="none"), "edge")
        correct, count = accuracy_counts(logits, bins)
        return {"loss": loss, "edge_loss": loss.detach(), "edge_correct": correct, "edge_count": count}

    def describe(self) -> str:
        return (f"Edge task: on (distance bin of edges touching masked atoms, {self.params.bin_width} Å bins, from "
                "h_src + h_dst).")

    def card_rows(self, metrics: dict[str, float]) -> list[str]:
        if "val_edge_acc" not in metrics:
            return []
        return [f"| edge distance bin ({self.params.bin_width} Å, {N_BINS} bins) | {metrics['val_edge_acc']:.3f} | — |"]

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--no-edge", action="store_true", help="no edge distance-bin target")

    @classmethod
    def params_from_args(cls, args: argparse.Namespace) -> EdgeBinsParams | None:
        return None if args.no_edge else EdgeBinsParams()

    @classmethod
    def command_flags(cls, params: EdgeBinsParams | None) -> list[str]:
        if params is None:
            return ["--no-edge"]
        if params != EdgeBinsParams():
            raise ValueError("the edge bin width is set from Python only")
        return []
