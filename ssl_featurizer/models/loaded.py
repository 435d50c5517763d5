"""What a loaded pretrained model is: the frozen encoder with its card, and the error raised when one cannot be
loaded. Both the registry (:mod:`ssl_featurizer.models.registry`) and the kong2023 preset
(:mod:`ssl_featurizer.models.kong2023`) build these objects; neither imports the other for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch

from ssl_featurizer.encoder.model import CrystalEncoder
from ssl_featurizer.graph.crystal_graph import GraphConfig
from ssl_featurizer.models.catalog import ModelError

__all__ = ["ModelError", "PretrainedModel", "for_inference"]


@dataclass(frozen=True)
class PretrainedModel:
    """A loaded, frozen encoder with its card.

    Attributes:
        name: registry name (``<name>@<version>``) or the directory it came from.
        card: the parsed ``card.json``.
        encoder: :class:`CrystalEncoder` in eval mode, gradients off, float64.
        node_table: ``(MAX_Z + 1, n_node_features)`` element feature matrix, float64.
    """

    name: str
    card: dict[str, Any]
    encoder: CrystalEncoder
    node_table: torch.Tensor

    @property
    def sha256(self) -> str:
        """sha256 of the weights file."""
        return self.card["weights"]["sha256"]

    @cached_property
    def fingerprint(self) -> str:
        """sha256 of everything that defines the descriptor: the weights' digest, the graph settings, the encoder
        settings and the element feature table in use (not the card's prose or metrics).

        A shipped card records it at export (``card["fingerprint"]``) and loading checks it, so an edited
        ``max_neighbors`` or element table is refused rather than giving other numbers under the same name; a
        fitted featurizer records it too and refuses a model that no longer has it.
        """
        import hashlib
        import json

        settings = {"weights_sha256": self.sha256, "graph": self.graph_config.to_dict(),
                    "encoder": self.encoder.config.to_dict()}
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
        digest.update(self.node_table.detach().to(torch.float64).contiguous().numpy().tobytes())
        return digest.hexdigest()

    @cached_property
    def graph_config(self) -> GraphConfig:
        """How this model's graphs are built."""
        return GraphConfig(**self.card["graph"])

    @property
    def n_layers(self) -> int:
        """Number of convolutions L (embeddings h0..hL)."""
        return self.encoder.config.n_layers

    @property
    def width(self) -> int:
        """Width of each layer embedding."""
        return self.encoder.config.width

    @property
    def layer_widths(self) -> tuple[int, ...]:
        """Features per atom of layers 0..L (all :attr:`width`; the interface every encoder has)."""
        return (self.width,) * (self.n_layers + 1)


def for_inference(encoder: CrystalEncoder, node_table: torch.Tensor) -> tuple[CrystalEncoder, torch.Tensor]:
    """Frozen, eval-mode, float64 copies: descriptors are computed in double precision so that equivalent
    inputs (permuted, rotated, supercell) agree to ~1e-12 rather than to float32 round-off."""
    return encoder.eval().requires_grad_(False).double(), node_table.double()
