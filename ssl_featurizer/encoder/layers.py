"""Neural-network operators of the encoder, one class per operator."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class GaussianExpansion(nn.Module):
    r"""Expand distances on a grid of Gaussians.

    .. math::
        e_{k}(d) = \exp\!\left(-\frac{(d - \mu_k)^2}{\sigma^2}\right),\quad
        \mu_k = \mu_{\min} + k\,\frac{\mu_{\max}-\mu_{\min}}{K-1}

    with ``sigma`` defaulting to the grid spacing (0.2 Å for 41 centres on 0–8 Å).

    Shapes:
        - input: distances ``(E,)``
        - output: ``(E, K)``
    """

    def __init__(self, start: float = 0.0, stop: float = 8.0, num: int = 41, width: float | None = None):
        super().__init__()
        self.register_buffer("centers", torch.linspace(start, stop, num), persistent=False)
        self.width = float(width if width is not None else (stop - start) / (num - 1))

    def forward(self, distances: Tensor) -> Tensor:
        return torch.exp(-((distances[:, None] - self.centers[None, :]) ** 2) / self.width**2)


class CGConv(nn.Module):
    r"""Crystal graph convolution (Xie & Grossman, PRL 120, 145301, 2018), sum aggregation.

    .. math::
        \mathbf{x}'_i = \mathbf{x}_i + \sum_{j \in \mathcal{N}(i)}
        \sigma\!\left(\mathbf{z}_{ij}\mathbf{W}_f + \mathbf{b}_f\right) \odot
        \operatorname{softplus}\!\left(\mathbf{z}_{ij}\mathbf{W}_s + \mathbf{b}_s\right),
        \qquad \mathbf{z}_{ij} = [\mathbf{x}_i \,\|\, \mathbf{x}_j \,\|\, \mathbf{e}_{ij}]

    Parameters are laid out as in PyG's ``CGConv`` (``lin_f``, ``lin_s`` acting on
    ``[x_i ‖ x_j ‖ e_ij]``) so state dicts are interchangeable, but the product is evaluated as
    ``x_i W^(i) + x_j W^(j) + e_ij W^(e)``: the node terms are computed once per node instead of once
    per edge, which is ~2–3× faster for ~13 edges per atom.

    Shapes:
        - x: ``(N, C)`` node features
        - edge_index: ``(2, E)``; row 0 source ``j`` (neighbour), row 1 target ``i`` (centre)
        - edge_attr: ``(E, D)``
        - output: ``(N, C)``
    """

    def __init__(self, channels: int, edge_dim: int):
        super().__init__()
        self.channels = channels
        self.lin_f = nn.Linear(2 * channels + edge_dim, channels)
        self.lin_s = nn.Linear(2 * channels + edge_dim, channels)

    def reset_parameters(self) -> None:
        """Reinitialise both linear maps (PyG's convention for operators)."""
        self.lin_f.reset_parameters()
        self.lin_s.reset_parameters()

    def composed(self, edge_map: nn.Linear) -> CGConv:
        """The same convolution taking ``edge_map``'s *inputs* as edge features (``e = edge_map(g)``).

        The edge part of both linear maps is multiplied through the map (``e W^(e) = g (W^(e) W_map)^T + W^(e)
        b_map``), so a caller that embeds edges with a linear map (the encoder's Gaussian expansion → width) can skip
        the ``(E, D)`` embedding: for the default model ~2× fewer multiply-adds per edge, equal to float64
        round-off. The returned operator holds new tensors (no gradient flows back to this one): for inference.

        Shapes:
            - edge_map: ``Linear(G, D)`` with ``D`` this operator's ``edge_dim``
            - returned operator's edge_attr: ``(E, G)``
        """
        c = self.channels
        out = CGConv(c, edge_map.in_features).to(dtype=self.lin_f.weight.dtype, device=self.lin_f.weight.device)
        with torch.no_grad():
            for mine, theirs in ((self.lin_f, out.lin_f), (self.lin_s, out.lin_s)):
                edge_weight = mine.weight[:, 2 * c:]
                theirs.weight.copy_(torch.cat([mine.weight[:, : 2 * c], edge_weight @ edge_map.weight], dim=1))
                theirs.bias.copy_(torch.addmv(mine.bias, edge_weight, edge_map.bias))
        return out.requires_grad_(False).eval()

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor) -> Tensor:
        """Convolve (the update rule above)."""
        c = self.channels
        weight = torch.cat([self.lin_f.weight, self.lin_s.weight], dim=0)  # (2C, 2C+D)
        bias = torch.cat([self.lin_f.bias, self.lin_s.bias], dim=0)
        edge_weight = weight[:, 2 * c :]
        src, dst = edge_index[0], edge_index[1]
        node_i = x @ weight[:, :c].T  # as centre
        node_j = x @ weight[:, c : 2 * c].T  # as neighbour
        z = torch.addmm(bias, edge_attr, edge_weight.T)
        if torch.is_grad_enabled():
            z = z + node_i.index_select(0, dst) + node_j.index_select(0, src)
            gate, core = z.split(c, dim=1)
            messages = torch.sigmoid(gate) * F.softplus(core)
        else:  # inference: the same arithmetic in place, no (E, 2C) temporaries (~20 % faster)
            z += node_i.index_select(0, dst)
            z += node_j.index_select(0, src)
            gate, core = z.split(c, dim=1)
            messages = torch.sigmoid(gate).mul_(F.softplus(core))
        out = torch.zeros_like(x).index_add_(0, dst, messages)
        return x + out
