"""Distillation: every atom's last-layer embedding predicts a frozen teacher's features of that atom.

The targets are a foundation potential's per-atom block scalars, computed once per corpus and reduced to their
leading principal components (:mod:`ssl_featurizer.training.teacher`). A small head on the last-layer embedding
``h`` predicts them; the loss is the squared error summed over components, in units of their total variance (1:
no better than predicting the mean). Only structures with targets are trained on when the objective is on. A model
trained with it learns from a supervised teacher: it inherits the teacher's training-label overlap (its card says
which), and it is not a self-supervised model.
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
class DistillParams:
    """The targets folder (:func:`~ssl_featurizer.training.teacher.build_teacher_targets`) and the loss weight."""

    targets: str = ""
    weight: float = 1.0


class Distill(Objective):
    """Squared error of the predicted teacher components, over their total variance.

    Shapes:
        - head: ``(N, width) → (N, dims)``
        - targets: ``(N, dims)`` (every atom of the batch; the trainer keeps only structures with targets)
    """

    name, order, Params = "distill", 4, DistillParams
    needs_teacher = True

    def make_head(self, width: int) -> nn.Module:
        from torch import nn

        from ssl_featurizer.training.teacher import TeacherTargets

        dims = TeacherTargets.read_meta(self.params.targets)["dims"]
        return nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, dims))

    def prepare(self, step: Step, rng: np.random.Generator, resources: Resources) -> None:
        import torch

        teacher, index = resources.teacher
        step.extra["teacher"] = torch.from_numpy(teacher.rows(index[step.indices]))
        step.extra["teacher_variance"] = float(teacher.variance.sum())

    def loss(self, head: nn.Module, step: Step, encoder: nn.Module) -> dict[str, Tensor]:
        import torch

        target = step.extra["teacher"]
        predicted = head(step.h)
        error = ((predicted - target) ** 2).sum(1) / step.extra["teacher_variance"]
        loss = step.normalised(error, "all_atoms")
        better = error.detach() < (target ** 2).sum(1) / step.extra["teacher_variance"]
        return {"loss": self.params.weight * loss, "distill_loss": loss.detach(), "distill_correct": better.sum(),
                "distill_count": torch.tensor(target.shape[0])}

    def describe(self) -> str:
        from ssl_featurizer.training.teacher import TeacherTargets

        meta = TeacherTargets.read_meta(self.params.targets)
        overlap = (meta.get("label_overlap") or {}).get("labels", "not stated by its card")
        return (f"Distillation: from each atom's last-layer embedding, predict the first {meta['dims']} principal "
                f"components ({meta['variance_kept']:.0%} of the variance) of the standardised per-atom features of "
                f"layers {meta['layers']} of the frozen `{meta['teacher']}` (weights sha256 "
                f"{meta['sha256'][:12]}…), computed once on {meta['n_structures']:,} corpus structures (squared "
                f"error over their total variance, weight {self.params.weight}). The teacher was trained with "
                f"labels: {overlap}.")

    def card_rows(self, metrics: dict[str, float]) -> list[str]:
        if "val_distill_loss" not in metrics:
            return []
        return [f"| distillation: unexplained share of the teacher's variance | {metrics['val_distill_loss']:.3f} | 1 |",
                f"| distillation: atoms predicted better than the mean | {metrics['val_distill_acc']:.3f} | — |"]

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--distill-targets", default="",
                            help="distillation: folder of a teacher's per-atom targets for this corpus "
                                 "(ssl_featurizer.training.teacher.build_teacher_targets; default: off)")
        parser.add_argument("--distill-weight", type=float, default=1.0, help="weight of the distillation loss")

    @classmethod
    def params_from_args(cls, args: argparse.Namespace) -> DistillParams | None:
        return DistillParams(args.distill_targets, args.distill_weight) if args.distill_targets else None

    @classmethod
    def command_flags(cls, params: DistillParams | None) -> list[str]:
        if params is None:
            return []
        return ["--distill-targets", params.targets] + (
            [] if params.weight == 1.0 else ["--distill-weight", f"{params.weight:g}"])
