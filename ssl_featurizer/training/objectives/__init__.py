"""Self-supervised pretraining objectives, one module each, behind one interface (:mod:`.objective`).

Every module of this package that defines a subclass of :class:`~.objective.Objective` is registered here:
the trainer builds the enabled objectives' heads and losses from :class:`ObjectivesConfig`, the command
line gets their flags (:func:`add_arguments`, :func:`config_from_args`; :func:`command_flags` the other
way round) and the model card their descriptions and reproduce command. Adding an objective is adding one module (and its test).

Shipped: ``masked_atoms`` (group / period / element of masked atoms), ``edge_bins`` (length bins of edges
touching masked atoms), ``contrastive`` (NT-Xent between a cell and its supercell), ``denoise``
(clean edge lengths from randomly displaced atoms), ``denoise_positions`` (each displaced atom's way back, an
equivariant prediction) and ``distill`` (a frozen teacher's per-atom features).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any

from ssl_featurizer.training.objectives.objective import Objective, Resources, Step, mask_atoms, params_dict


def _discover() -> dict[str, type[Objective]]:
    found: dict[str, type[Objective]] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name == "objective":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Objective) and value is not Objective \
                    and value.__module__ == module.__name__:
                if value.name in found:
                    raise RuntimeError(f"two pretraining objectives are named {value.name!r}")
                found[value.name] = value
    orders = [cls.order for cls in found.values()]
    if len(set(orders)) != len(orders):
        raise RuntimeError("pretraining objectives must have distinct `order` values")
    return dict(sorted(found.items(), key=lambda item: item[1].order))


OBJECTIVES: dict[str, type[Objective]] = _discover()


def _default_enabled() -> dict[str, Any]:
    return {"masked_atoms": OBJECTIVES["masked_atoms"].Params(), "edge_bins": OBJECTIVES["edge_bins"].Params()}


@dataclass(frozen=True)
class ObjectivesConfig:
    """Input masking and the enabled objectives with their settings (stored in every run config and card).

    Attributes:
        mask_fraction: share of each structure's atoms (at least one) whose element vector is zeroed.
        enabled: objective name → its settings (an instance of that objective's ``Params``); objectives not
            listed are off.
    """

    mask_fraction: float = 0.15
    enabled: dict[str, Any] = field(default_factory=_default_enabled)

    def __post_init__(self):
        unknown = sorted(set(self.enabled) - set(OBJECTIVES))
        if unknown:
            raise ValueError(f"unknown pretraining objective(s) {unknown}; known: {sorted(OBJECTIVES)}")
        if not self.enabled:
            raise ValueError("no pretraining objective is enabled")
        for name in self.enabled:
            if missing := [r for r in OBJECTIVES[name].requires if r not in self.enabled]:
                raise ValueError(f"the {name} objective needs the {', '.join(missing)} objective(s) on too")

    def build(self) -> list[Objective]:
        """The enabled objectives, in their fixed order."""
        return [cls(self.enabled[name]) for name, cls in OBJECTIVES.items() if name in self.enabled]

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form for JSON."""
        return {"mask_fraction": self.mask_fraction,
                "enabled": {name: params_dict(self.enabled[name]) for name in OBJECTIVES if name in self.enabled}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ObjectivesConfig:
        """Inverse of :meth:`to_dict`; also reads the flat ``tasks`` dict of runs and cards before version 2."""
        if "enabled" not in d:
            return cls._from_legacy(d)
        return cls(d["mask_fraction"], {name: OBJECTIVES[name].Params(**p) for name, p in d["enabled"].items()})

    @classmethod
    def _from_legacy(cls, t: dict[str, Any]) -> ObjectivesConfig:
        enabled: dict[str, Any] = {}
        parts = {p: bool(t.get(f"predict_{p}", True)) for p in ("group", "period", "element")}
        if any(parts.values()):
            enabled["masked_atoms"] = OBJECTIVES["masked_atoms"].Params(**parts)
        if t.get("predict_edge_bins", True):
            enabled["edge_bins"] = OBJECTIVES["edge_bins"].Params(bin_width=t.get("bin_width", 0.2))
        if t.get("contrastive"):
            enabled["contrastive"] = OBJECTIVES["contrastive"].Params(t.get("temperature", 0.1),
                                                                      t.get("contrastive_weight", 1.0))
        if t.get("denoise_sigma", 0.0) > 0:
            enabled["denoise"] = OBJECTIVES["denoise"].Params(t["denoise_sigma"], t.get("denoise_weight", 1.0))
        return cls(t.get("mask_fraction", 0.15), enabled)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Every objective's flags, and ``--mask-fraction``, for ``ssl-featurizer pretrain``."""
    parser.add_argument("--mask-fraction", type=float, default=0.15, help="share of each structure's atoms masked")
    for cls in OBJECTIVES.values():
        cls.add_arguments(parser)


def config_from_args(args: argparse.Namespace) -> ObjectivesConfig:
    """The objectives the parsed flags enable."""
    enabled = {name: params for name, cls in OBJECTIVES.items()
               if (params := cls.params_from_args(args)) is not None}
    return ObjectivesConfig(args.mask_fraction, enabled)


def command_flags(config: ObjectivesConfig) -> list[str]:
    """The ``ssl-featurizer pretrain`` flags that give ``config`` (inverse of :func:`config_from_args`).

    Raises:
        ValueError: a setting of ``config`` has no flag.
    """
    flags = [] if config.mask_fraction == 0.15 else ["--mask-fraction", f"{config.mask_fraction:g}"]
    for name, cls in OBJECTIVES.items():
        flags += cls.command_flags(config.enabled.get(name))
    return flags


__all__ = ["OBJECTIVES", "Objective", "ObjectivesConfig", "Resources", "Step", "add_arguments", "command_flags",
           "config_from_args", "mask_atoms"]
