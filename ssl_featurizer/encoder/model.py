"""The encoder: element features → embedding → L crystal-graph convolutions (optionally each preceded by the
bond-angle moments of :class:`~ssl_featurizer.encoder.layers.AngularMoments`); returns every layer."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ssl_featurizer.encoder.layers import AngularMoments, CGConv, GaussianExpansion


@dataclass(frozen=True)
class EncoderConfig:
    """Architecture of :class:`CrystalEncoder`. Stored in every model card.

    Attributes:
        n_node_features: width of the element feature table.
        width: width of every hidden layer (and of every layer embedding).
        n_layers: number of convolutions L; the encoder returns L + 1 embeddings h0..hL.
        n_gaussians, gaussian_start, gaussian_stop: distance expansion grid (Å).
        message_direction: ``"in"`` (neighbour → centre, our convention) or ``"both"`` (every edge
            also used reversed; needed to reproduce Kong et al.'s released weights).
        angular_channels: channels of the bond-angle moments added before every convolution
            (:class:`~ssl_featurizer.encoder.layers.AngularMoments`); 0 (the default) leaves them out, and the
            encoder then needs edge lengths only.
        angular_order: highest degree ``K`` of those moments.
    """

    n_node_features: int = 79
    width: int = 64
    n_layers: int = 5
    n_gaussians: int = 41
    gaussian_start: float = 0.0
    gaussian_stop: float = 8.0
    message_direction: str = "in"
    angular_channels: int = 0
    angular_order: int = 4

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form for JSON model cards (the angular settings only when the encoder has them, so that the
        cards of distance-only encoders read as before)."""
        out = asdict(self)
        if not self.angular_channels:
            del out["angular_channels"], out["angular_order"]
        return out


class CrystalEncoder(nn.Module):
    r"""Stack of :class:`CGConv` layers returning the atom embeddings of every layer.

    .. math::
        h^0 = W_0 x + b_0,\qquad
        h^{l} = \phi_l\big(\mathrm{BN}_l(\mathrm{CGConv}_l(\tilde h^{l-1}, e))\big),\quad l = 1..L

    with :math:`e = W_e\,\mathrm{gauss}(d) + b_e`, :math:`\phi_l` a ReLU except for the last layer
    (identity), and :math:`\tilde h^{l-1} = h^{l-1}`, or, with ``angular_channels > 0``,
    :math:`\tilde h^{l-1} = \mathrm{Angular}_l(h^{l-1}, \mathrm{gauss}(d), \hat u)` (the bond-angle moments of
    :class:`AngularMoments`, which need the edge vectors). Layer ``l`` sees ``l`` hops of neighbours (and, with
    the angular moments, the angles between the bonds of each atom on the way).

    Shapes:
        - node_features: ``(N, n_node_features)``
        - edge_index: ``(2, E)``, row 0 neighbour, row 1 centre
        - distances: ``(E,)``
        - vectors: ``(E, 3)`` centre → neighbour vectors (only when ``angular_channels > 0``)
        - output: list of ``L + 1`` tensors ``(N, width)``
    """

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        self.expansion = GaussianExpansion(config.gaussian_start, config.gaussian_stop, config.n_gaussians)
        self.embedding1 = nn.Linear(config.n_node_features, config.width)
        self.embedding2 = nn.Linear(config.n_gaussians, config.width)
        self.convs = nn.ModuleList(CGConv(config.width, config.width) for _ in range(config.n_layers))
        self.batch_norm = nn.ModuleList(nn.BatchNorm1d(config.width) for _ in range(config.n_layers))
        if config.angular_channels:
            self.angular = nn.ModuleList(
                AngularMoments(config.width, config.n_gaussians, config.angular_channels, config.angular_order)
                for _ in range(config.n_layers))

    @property
    def needs_vectors(self) -> bool:
        """Whether :meth:`forward` needs the edge vectors (graphs built with ``vectors=True``)."""
        return bool(self.config.angular_channels)

    def forward(self, node_features: Tensor, edge_index: Tensor, distances: Tensor,
                upto: int | None = None, vectors: Tensor | None = None) -> list[Tensor]:
        """Embeddings ``[h0, ..., h_upto]`` (all ``L + 1`` layers by default).

        ``upto`` skips the convolutions no requested layer depends on: a featurizer that uses
        layers "01" runs one convolution instead of L; the returned layers are unchanged. ``vectors`` are
        required by an encoder with angular moments (:attr:`needs_vectors`) and ignored by the others.
        """
        if self.needs_vectors and vectors is None:
            raise ValueError("this encoder reads bond angles: it needs the edge vectors (graphs built with "
                             "vectors=True)")
        n_convs = len(self.convs) if upto is None else upto
        if not 0 <= n_convs <= len(self.convs):
            raise ValueError(f"upto={upto}: this encoder has layers 0..{len(self.convs)}")
        h = self.embedding1(node_features)
        layers = [h]
        if n_convs == 0:
            return layers
        # inference folds the edge embedding into each convolution's edge weights (fewer flops per edge)
        fold = not (torch.is_grad_enabled() or self.training)
        gauss = self.expansion(distances)
        edge_attr = gauss if fold else self.embedding2(gauss)
        if self.config.message_direction == "both":
            edge_index = torch.cat([edge_index, edge_index.flip(0)], dim=1)
            edge_attr = torch.cat([edge_attr, edge_attr], dim=0)
            gauss = torch.cat([gauss, gauss], dim=0)
            vectors = None if vectors is None else torch.cat([vectors, -vectors], dim=0)
        for i, (conv, norm) in enumerate(zip(self.convs[:n_convs], self.batch_norm[:n_convs])):
            if self.needs_vectors:
                h = self.angular[i](h, edge_index, gauss, vectors.to(h.dtype))
            h = norm((conv.composed(self.embedding2) if fold else conv)(h, edge_index, edge_attr))
            if i < len(self.convs) - 1:
                h = torch.relu(h)
            layers.append(h)
        return layers
