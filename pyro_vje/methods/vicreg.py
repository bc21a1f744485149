r"""VICReg (Bardes, Ponce & LeCun, 2022): variance, invariance and covariance terms on an expander.

Loss (their Eq. 1-6; docs/methods.md), for expanded embeddings ``Z, Z'`` of shape ``(N, d)``::

    s(Z, Z') = (1/N) sum_n ||z_n - z'_n||^2 / d                           invariance (mean squared error)
    v(Z)     = (1/d) sum_j max(0, gamma - sqrt(Var(z^j) + eps))           variance hinge
    c(Z)     = (1/d) sum_{i != j} C(Z)_{ij}^2,  C = (Z - mean)^T (Z - mean) / (N - 1)
    L = lambda s(Z, Z') + mu [v(Z) + v(Z')] / 2 + nu [c(Z) + c(Z')]

with ``lambda = mu = 25``, ``nu = 1``, ``gamma = 1``, ``eps = 1e-4`` (the paper's values;
the halving of the variance term and the sum of the two covariance terms follow
the authors' code). The expander is three 2048-wide linear layers with BatchNorm
and ReLU between them.

Example::

    >>> loss, terms = vicreg_loss(torch.randn(64, 32), torch.randn(64, 32))
    >>> sorted(terms)
    ['cov', 'inv', 'var']
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import TwoViewMethod
from .mlp_heads import mlp
from .options import VICRegOptions

__all__ = ["VICReg", "VICRegOptions", "covariance_term", "variance_term", "vicreg_loss"]


def variance_term(z: torch.Tensor, gamma: float = 1.0, eps: float = 1e-4) -> torch.Tensor:
    r"""Eq. 1 (unbiased variance):
    :math:`v(Z) = \frac1d\sum_j \max(0, \gamma - \sqrt{\mathrm{Var}(z^j) + \epsilon})`."""
    std = torch.sqrt(z.var(dim=0) + eps)
    return F.relu(gamma - std).mean()


def covariance_term(z: torch.Tensor) -> torch.Tensor:
    r"""Eq. 3-4: :math:`c(Z) = \frac1d\sum_{i\ne j} C(Z)_{ij}^2`, :math:`C(Z)` the unbiased covariance."""
    n, d = z.shape
    centred = z - z.mean(dim=0)
    cov = centred.T @ centred / (n - 1)
    off_diagonal = cov - torch.diag_embed(torch.diagonal(cov))
    return off_diagonal.square().sum() / d


def vicreg_loss(
    z1: torch.Tensor,
    z2: torch.Tensor,
    sim_weight: float = 25.0,
    var_weight: float = 25.0,
    cov_weight: float = 1.0,
    gamma: float = 1.0,
    eps: float = 1e-4,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    r"""``(loss, {"inv", "var", "cov"})``: :math:`\lambda s + \mu (v(Z)+v(Z'))/2 + \nu (c(Z)+c(Z'))` (Eq. 6).

    Computed in float32 or wider (the covariance of bfloat16 features would lose the hinge).
    Needs ``N >= 2`` (the variances are unbiased).
    """
    if z1.dim() != 2 or z1.shape != z2.shape:
        raise ValueError(
            f"vicreg_loss: z1 and z2 must both be (N, d), got {tuple(z1.shape)} and {tuple(z2.shape)}"
        )
    if z1.shape[0] < 2:
        raise ValueError(
            f"vicreg_loss: needs a batch of at least 2 (unbiased variances), got N = {z1.shape[0]}"
        )
    dtype = torch.promote_types(z1.dtype, torch.float32)
    z1, z2 = z1.to(dtype), z2.to(dtype)
    inv = F.mse_loss(z1, z2)
    var = 0.5 * (variance_term(z1, gamma, eps) + variance_term(z2, gamma, eps))
    cov = covariance_term(z1) + covariance_term(z2)
    loss = sim_weight * inv + var_weight * var + cov_weight * cov
    return loss, {"inv": inv.detach(), "var": var.detach(), "cov": cov.detach()}


class VICReg(TwoViewMethod):
    """VICReg on an encoder: ``training_loss`` is :func:`vicreg_loss` on the expanded views.

    :param encoder: the backbone f, with ``.dim``.
    :param options: :class:`VICRegOptions`.
    """

    #: VICReg's recipe (LARS) exempts biases and normalization layers from weight decay.
    exclude_norms_and_biases_from_weight_decay = True

    def __init__(self, encoder: nn.Module, options: VICRegOptions | None = None):
        super().__init__(encoder)
        self.options = options if options is not None else VICRegOptions()
        self.options.validate()
        o = self.options
        self.expander = mlp(self.dim, o.expander_dim, o.expander_dim, o.expander_layers, last_bias=False)

    def training_loss(
        self, x1: torch.Tensor, x2: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        self.check_views(x1, x2)
        o = self.options
        e1 = self.expander(self.encode(x1))
        e2 = self.expander(self.encode(x2))
        return vicreg_loss(e1, e2, o.sim_weight, o.var_weight, o.cov_weight, o.gamma, o.eps)
