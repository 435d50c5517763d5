"""The objective interface: what one self-supervised pretraining target provides to the trainer, CLI and card.

A pretraining step (see :class:`ssl_featurizer.training.trainer.Pretrainer`) runs in four stages, and an
objective takes part in each through one method:

1. **corrupt** the inputs: the trainer masks atoms (``mask_fraction``), then every enabled objective may
   draw random numbers and alter the step (:meth:`Objective.prepare`, e.g. denoising perturbs the distances
   the encoder sees);
2. **encode**: the encoder runs once on the corrupted inputs; ``step.h`` is its last layer;
3. **predict**: each objective's head (:meth:`Objective.make_head`) and loss (:meth:`Objective.loss`);
4. **report**: the accuracy-like counts of each *part* (:attr:`Objective.parts`) are summed over the held-out
   split; the model card describes the objective (:meth:`Objective.describe`) and its held-out rows
   (:meth:`Objective.card_rows`); the command line gets the objective's flags (:meth:`Objective.add_arguments`).

A new objective is one module in this package defining a subclass with a unique :attr:`Objective.name`
and :attr:`Objective.order`, and a frozen dataclass of its settings; the package registers it.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from torch import Tensor, nn

    from ssl_featurizer.training.cache import GraphStore
    from ssl_featurizer.training.teacher import TeacherTargets


@dataclass
class Step:
    """Everything one training (or held-out) step offers to the objectives.

    Attributes:
        indices: corpus indices of this process's structures.
        x: ``(N, F)`` node inputs after masking (the encoder's input).
        z: ``(N,)`` atomic numbers.
        masked: ``(N,)`` bool, the masked atoms.
        edge_index: ``(2, E)``; row 0 neighbour, row 1 centre.
        distance: ``(E,)`` clean edge lengths (targets are computed from these).
        encoder_distance: ``(E,)`` the edge lengths the encoder sees (an objective may perturb them).
        group, period: ``(N,)`` each atom's group and period index (class labels).
        batch: ``(N,)`` graph of each atom; ``n_graphs`` graphs.
        vector: ``(E, 3)`` centre → neighbour vectors, when the graph cache holds them.
        encoder_vector: ``(E, 3)`` the edge vectors the encoder sees (an objective may perturb them, in step with
            ``encoder_distance``); read by an encoder with bond-angle moments.
        global_atoms: this process's atoms as a slice of the whole (global) batch's atoms, and
            ``n_global_atoms`` that batch's size: per-atom random draws are made for the global batch and
            sliced, so a data-parallel run draws what a single process would.
        normalizers: data-parallel loss normalisers (global counts / world size) or ``None`` (mean losses).
        h: ``(N, width)`` last-layer embeddings, set after encoding.
        extra: objective-specific data prepared before encoding (e.g. a second view).
    """

    indices: np.ndarray
    x: Tensor
    z: Tensor
    masked: Tensor
    edge_index: Tensor
    distance: Tensor
    encoder_distance: Tensor
    group: Tensor
    period: Tensor
    batch: Tensor
    n_graphs: int
    vector: Tensor | None = None
    encoder_vector: Tensor | None = None
    global_atoms: slice = field(default_factory=lambda: slice(None))
    n_global_atoms: int = 0
    normalizers: dict[str, float] | None = None
    h: Tensor | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def normalised(self, values: Tensor, kind: str) -> Tensor:
        """Mean of ``values``, or their sum over the global count ``normalizers[kind]`` in data-parallel runs."""
        return values.mean() if self.normalizers is None else values.sum() / self.normalizers[kind]


@dataclass(frozen=True)
class Resources:
    """What the trainer holds that an objective may need: the element table, the supercell views cache and the
    teacher targets (:class:`~ssl_featurizer.training.teacher.TeacherTargets` with the teacher row of every graph
    of the cache, or None)."""

    table: Tensor
    views: GraphStore | None
    view_of: np.ndarray | None
    mask_fraction: float
    teacher: tuple[TeacherTargets, np.ndarray] | None = None


class Objective:
    """Base class of a pretraining objective (see the module docstring for the stages).

    Subclasses set :attr:`name` (also the key of its settings in the run config and card), :attr:`order`
    (heads are created and random numbers drawn in increasing order, which makes runs reproducible),
    :attr:`Params` (a frozen dataclass of settings with defaults) and implement :meth:`make_head`,
    :meth:`loss`, :meth:`describe` and :meth:`add_arguments` / :meth:`params_from_args` /
    :meth:`command_flags`.
    """

    name: ClassVar[str]
    order: ClassVar[int]
    Params: ClassVar[type]
    needs_vectors: ClassVar[bool] = False  # the graph cache must hold edge vectors
    needs_views: ClassVar[bool] = False  # a second (supercell) graph cache is needed
    needs_teacher: ClassVar[bool] = False  # teacher targets for the corpus are needed (``params.targets``)
    single_process: ClassVar[bool] = False  # cannot run data-parallel
    requires: ClassVar[tuple[str, ...]] = ()  # objectives that must be on too (e.g. the one whose draws it reads)

    def __init__(self, params: Any):
        self.params = params

    # -- stages -------------------------------------------------------------------------------
    @property
    def parts(self) -> list[str]:
        """Names of the reported parts; each has ``<part>_loss``, ``<part>_correct`` and ``<part>_count``."""
        return [self.name]

    def make_head(self, width: int) -> nn.Module:
        """The prediction head on ``width``-wide embeddings."""
        raise NotImplementedError

    def prepare(self, step: Step, rng: np.random.Generator, resources: Resources) -> None:
        """Draw this objective's random numbers and alter the step's inputs (default: nothing)."""

    def loss(self, head: nn.Module, step: Step, encoder: nn.Module) -> dict[str, Tensor]:
        """``{"loss": weighted term, "<part>_loss": ..., "<part>_correct": ..., "<part>_count": ...}``."""
        raise NotImplementedError

    # -- reporting ----------------------------------------------------------------------------
    def describe(self) -> str:
        """One Markdown bullet (without the dash) for the model card's recipe section."""
        raise NotImplementedError

    def card_rows(self, metrics: dict[str, float]) -> list[str]:
        """Rows ``| task | held-out value | baseline |`` of the model card's metrics table."""
        return []

    # -- command line -------------------------------------------------------------------------
    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add this objective's flags to ``ssl-featurizer pretrain``."""
        raise NotImplementedError

    @classmethod
    def params_from_args(cls, args: argparse.Namespace) -> Any | None:
        """Settings from parsed flags, or ``None`` when the flags leave the objective off."""
        raise NotImplementedError

    @classmethod
    def command_flags(cls, params: Any | None) -> list[str]:
        """The flags that give ``params`` (``None``: the objective off); inverse of :meth:`params_from_args`.

        Raises:
            ValueError: a setting has no flag (it is set from Python only).
        """
        raise NotImplementedError


def params_dict(params: Any) -> dict[str, Any]:
    """Plain-dict form of an objective's settings."""
    return asdict(params)


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


def accuracy_counts(logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Correct top-1 predictions and the number of predictions."""
    import torch

    return (logits.argmax(1) == target).sum(), torch.tensor(target.numel())
