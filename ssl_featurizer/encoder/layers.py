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


def monomial_exponents(order: int) -> tuple[list[tuple[int, int, int]], list[float], list[int]]:
    """Exponents ``(a, b, c)`` of every monomial ``x^a y^b z^c`` of degree ``n = a + b + c ≤ order``, with the
    multinomial coefficient ``n! / (a! b! c!)`` and the degree ``n`` of each (degree by degree)."""
    from math import factorial

    exps, coefs, degrees = [], [], []
    for n in range(order + 1):
        for a in range(n, -1, -1):
            for b in range(n - a, -1, -1):
                c = n - a - b
                exps.append((a, b, c))
                coefs.append(factorial(n) / (factorial(a) * factorial(b) * factorial(c)))
                degrees.append(n)
    return exps, coefs, degrees


class AngularMoments(nn.Module):
    r"""Bond-angle (three-body) information in one pass over the edges: rotation-invariant moments of each atom's
    neighbour directions, added to its features.

    Each edge :math:`j \to i` has a weight vector :math:`\mathbf{w}_{ij} = \operatorname{SiLU}(\mathbf{x}_j W_x +
    \mathbf{g}_{ij} W_g + \mathbf{b})` (``A`` channels; :math:`\mathbf{g}_{ij}` the distance expansion) and a unit
    direction :math:`\hat{\mathbf{u}}_{ij}`. For every degree :math:`n \le K` the atom's moment tensor
    :math:`M^{(n)}_i = \frac{1}{|\mathcal{N}(i)|}\sum_j \mathbf{w}_{ij}\,\hat{\mathbf{u}}_{ij}^{\otimes n}` is
    contracted with itself:

    .. math::
        B^{(n)}_{i} = \big\lVert M^{(n)}_i \big\rVert^2 = \frac{1}{|\mathcal{N}(i)|^2}\sum_{j,k \in \mathcal{N}(i)}
        \mathbf{w}_{ij} \odot \mathbf{w}_{ik}\,\cos^n\theta_{jik},
        \qquad \mathbf{x}'_i = \mathbf{x}_i + W_B\,[B^{(0)}_i \,\|\, \dots \,\|\, B^{(K)}_i]

    The double sum over neighbour pairs (every bond angle at atom ``i``) is evaluated without enumerating the pairs:
    :math:`\lVert M^{(n)} \rVert^2 = \sum_{a+b+c=n} \binom{n}{a,b,c} \big(\sum_j w_j u_x^a u_y^b u_z^c\big)^2`,
    so the cost is linear in the edges (35 monomials per edge for ``K = 4``). Since :math:`\cos^n` for
    :math:`n \le K` spans the Legendre polynomials :math:`P_0..P_K`, the invariants carry the angular power spectrum
    of the environment up to degree ``K``; ``K = 4`` separates tetrahedral from octahedral coordination (degree 3)
    and octahedral from cubic (degree 4). The result is exactly invariant under rotations and reflections and under
    any order of the edges.

    Shapes:
        - x: ``(N, C)`` node features
        - edge_index: ``(2, E)``; row 0 neighbour ``j``, row 1 centre ``i``
        - edge_attr: ``(E, G)`` distance expansion
        - vectors: ``(E, 3)`` centre → neighbour vectors (any length but zero)
        - output: ``(N, C)``
    """

    def __init__(self, channels: int, edge_dim: int, angular_channels: int = 16, order: int = 4):
        super().__init__()
        self.channels, self.angular_channels, self.order = channels, angular_channels, order
        self.lin_x = nn.Linear(channels, angular_channels)
        self.lin_g = nn.Linear(edge_dim, angular_channels, bias=False)
        self.lin_out = nn.Linear(angular_channels * (order + 1), channels)
        exps, coefs, degrees = monomial_exponents(order)
        self.register_buffer("exponents", torch.tensor(exps, dtype=torch.long), persistent=False)
        self.register_buffer("coefficients", torch.tensor(coefs), persistent=False)
        self.register_buffer("degree", torch.tensor(degrees, dtype=torch.long), persistent=False)

    def reset_parameters(self) -> None:
        """Reinitialise the linear maps."""
        for lin in (self.lin_x, self.lin_g, self.lin_out):
            lin.reset_parameters()

    def monomials(self, vectors: Tensor) -> Tensor:
        """``(E, M)`` monomials ``u_x^a u_y^b u_z^c`` of each edge's unit direction, degree by degree."""
        unit = vectors / torch.linalg.vector_norm(vectors, dim=1, keepdim=True)
        powers = unit[:, :, None] ** torch.arange(self.order + 1, device=unit.device, dtype=unit.dtype)  # (E, 3, K+1)
        e = self.exponents
        return powers[:, 0, e[:, 0]] * powers[:, 1, e[:, 1]] * powers[:, 2, e[:, 2]]

    def invariants(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, vectors: Tensor) -> Tensor:
        """``(N, A * (K + 1))``: :math:`B^{(n)}` of every channel, channel-major."""
        src, dst = edge_index[0], edge_index[1]
        n, a, m = x.shape[0], self.angular_channels, self.exponents.shape[0]
        weights = F.silu(self.lin_x(x).index_select(0, src) + self.lin_g(edge_attr))  # (E, A)
        per_edge = (weights[:, :, None] * self.monomials(vectors).to(weights.dtype)[:, None, :]).reshape(-1, a * m)
        degree = torch.zeros(n, dtype=weights.dtype, device=x.device).index_add_(
            0, dst, torch.ones_like(dst, dtype=weights.dtype)).clamp_(min=1.0)
        moments = torch.zeros(n, a * m, dtype=weights.dtype, device=x.device).index_add_(0, dst, per_edge)
        moments = (moments / degree[:, None]).reshape(n, a, m)
        squares = moments.square() * self.coefficients.to(weights.dtype)
        out = torch.zeros(n, a, self.order + 1, dtype=weights.dtype, device=x.device)
        return out.index_add_(2, self.degree, squares).reshape(n, -1)

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, vectors: Tensor) -> Tensor:
        """Add the angular invariants (the update rule above)."""
        return x + self.lin_out(self.invariants(x, edge_index, edge_attr, vectors))
