"""Masked atoms: the last-layer embedding of each masked atom predicts its group, period and element."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ssl_featurizer.graph.elements import MAX_Z
from ssl_featurizer.training.objectives.objective import Objective, Step, accuracy_counts

if TYPE_CHECKING:
    from torch import Tensor, nn

N_GROUPS, N_PERIODS = 18, 7


@dataclass(frozen=True)
class MaskedAtomsParams:
    """Which properties of a masked atom are predicted."""

    group: bool = True
    period: bool = True
    element: bool = True


class MaskedAtoms(Objective):
    """Cross-entropy of the masked atoms' group (18 classes), period (7) and element (100).

    Shapes:
        - head: ``(M, width) → (M, 18 + 7 + 100)`` logits (group | period | element), ``M`` masked atoms
    """

    name, order, Params = "masked_atoms", 0, MaskedAtomsParams

    @property
    def parts(self) -> list[str]:
        return [p for p in ("group", "period", "element") if getattr(self.params, p)]

    def make_head(self, width: int) -> nn.Module:
        from torch import nn

        return nn.Linear(width, N_GROUPS + N_PERIODS + MAX_Z)

    def loss(self, head: nn.Module, step: Step, encoder: nn.Module) -> dict[str, Tensor]:
        from torch.nn import functional as F

        logits = head(step.h[step.masked])
        m = step.masked
        targets = {"group": (logits[:, :N_GROUPS], step.group[m]),
                   "period": (logits[:, N_GROUPS:N_GROUPS + N_PERIODS], step.period[m]),
                   "element": (logits[:, N_GROUPS + N_PERIODS:], step.z[m] - 1)}
        out: dict[str, Tensor] = {}
        total = step.h.new_zeros(())
        for part in self.parts:
            lg, y = targets[part]
            loss = step.normalised(F.cross_entropy(lg, y, reduction="none"), "atom")
            total = total + loss
            out[f"{part}_loss"] = loss.detach()
            out[f"{part}_correct"], out[f"{part}_count"] = accuracy_counts(lg, y)
        out["loss"] = total
        return out

    def describe(self) -> str:
        return f"Masked atoms: predict {', '.join(self.parts)} of each masked atom from the last layer."

    def card_rows(self, metrics: dict[str, float]) -> list[str]:
        return [f"| {p} | {metrics[f'val_{p}_acc']:.3f} | {metrics[f'baseline_{p}_acc']:.3f} |"
                for p in self.parts if f"val_{p}_acc" in metrics and f"baseline_{p}_acc" in metrics]

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--no-element", action="store_true", help="do not predict the masked element itself")
        parser.add_argument("--no-masked", action="store_true",
                            help="no masked-atom targets at all (group, period, element)")

    @classmethod
    def params_from_args(cls, args: argparse.Namespace) -> MaskedAtomsParams | None:
        if args.no_masked:
            return None
        return MaskedAtomsParams(element=not args.no_element)

    @classmethod
    def command_flags(cls, params: MaskedAtomsParams | None) -> list[str]:
        if params is None:
            return ["--no-masked"]
        if not (params.group and params.period):
            raise ValueError("masked-atom group/period targets can be switched off from Python only")
        return [] if params.element else ["--no-element"]

