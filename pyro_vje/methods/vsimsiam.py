r"""VSimSiam (Nakamura et al., 2023): SimSiam with a Power Spherical likelihood and a concentration head.

The predictor's output direction becomes the mean direction of a Power Spherical
density and a scalar head its concentration; the stop-gradient target of the
other view is scored under it (the VJE paper's Eq. 4), and a KL term to the
uniform distribution on the sphere regularizes the concentration::

    mu_i = h(z_i) / ||h(z_i)||,   kappa_i = rho (D - 1) + D * softplus(u(b_i))   (b_i: predictor bottleneck)
    L_align = [-log PS(sg(z2)/||z2||; mu_1, kappa_1) - log PS(sg(z1)/||z1||; mu_2, kappa_2)] / 2   (Eq. 4)
    L_KL    = [KL(PS(mu_1, kappa_1) || U(S^{D-1})) + KL(PS(mu_2, kappa_2) || U(S^{D-1}))] / 2
    L = (L_align + w * L_KL) / D

Why ``w < 1`` and the division by ``D`` (docs/methods.md derives both): at large
``kappa`` the aligned NLL falls like ``-(D-1)/2 log kappa`` and the KL rises like
``+(D-1)/2 log kappa``, so the optimal concentration is
``kappa* ~ (1 - w) (D-1) / (2 log(2 / (1 + cos)))``: ``w >= 1`` drives every
concentration to the uniform distribution. Dividing by ``D`` (a constant rescaling of
the loss) keeps the gradient on the mean direction of the order of SimSiam's
negative cosine instead of ``kappa ~ D`` times larger; the head predicts ``kappa / D``
for the same reason. The floor ``rho (D - 1)``: the maximum-likelihood concentration
matches the achieved alignment (``E[mu^T x] = kappa / (D - 1 + kappa) = cos``), so the
alignment gradient ``kappa / (D (1 + cos))`` is proportional to ``cos`` itself and
vanishes at a random initialization, where ``cos ~ 0`` in high dimension; with the floor
it stays at least ``rho / (1 + cos)`` times SimSiam's.

Example::

    >>> mu = F.normalize(torch.randn(8, 16), dim=-1); kappa = torch.full((8,), 20.0)
    >>> target = F.normalize(torch.randn(8, 16), dim=-1)
    >>> nll = power_spherical_nll(mu, kappa, target)    # (8,)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..distributions import PowerSpherical
from .base import TwoViewMethod
from .mlp_heads import simsiam_projector
from .options import VSimSiamOptions

__all__ = ["VSimSiam", "VSimSiamOptions", "power_spherical_nll", "vsimsiam_loss"]


def power_spherical_nll(mu: torch.Tensor, kappa: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r"""Per sample :math:`-\log \mathrm{PS}(\mathrm{sg}(\hat z); \mu, \kappa)` (target: unit, detached)."""
    target = F.normalize(target.detach().to(mu.dtype), dim=-1)
    return -PowerSpherical(mu, kappa, validate_args=False).log_prob(target)


def vsimsiam_loss(
    mu1: torch.Tensor,
    kappa1: torch.Tensor,
    mu2: torch.Tensor,
    kappa2: torch.Tensor,
    z1: torch.Tensor,
    z2: torch.Tensor,
    kl_weight: float = 0.1,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    r"""``(loss, {"align", "kl", "kappa"})``: :math:`(L_\text{align} + w L_\text{KL}) / D` (Eq. 4 + KL).

    ``mu_i`` are unit vectors ``(N, D)``, ``kappa_i`` concentrations ``(N,)``, ``z_i``
    the projections whose directions are the (stop-gradient) targets.
    """
    dim = mu1.shape[-1]
    align = 0.5 * (power_spherical_nll(mu1, kappa1, z2) + power_spherical_nll(mu2, kappa2, z1)).mean()
    kl = (
        0.5
        * (
            PowerSpherical(mu1, kappa1, validate_args=False).kl_to_uniform()
            + PowerSpherical(mu2, kappa2, validate_args=False).kl_to_uniform()
        ).mean()
    )
    loss = (align + kl_weight * kl) / dim
    kappa = 0.5 * (kappa1.detach().mean() + kappa2.detach().mean())
    return loss, {"align": align.detach() / dim, "kl": kl.detach() / dim, "kappa": kappa}


class VSimSiam(TwoViewMethod):
    """VSimSiam on an encoder; features ``z`` (encoder), ``mu`` (mean direction), ``kappa``.

    :param encoder: the backbone f, with ``.dim``.
    :param options: :class:`VSimSiamOptions`.
    """

    def __init__(self, encoder: nn.Module, options: VSimSiamOptions | None = None):
        super().__init__(encoder)
        self.options = options if options is not None else VSimSiamOptions()
        self.options.validate()
        o = self.options
        self.projector = simsiam_projector(self.dim, o.proj_dim, o.proj_layers)
        # the SimSiam predictor, split after its bottleneck into a mean head and a concentration head
        self.predictor_trunk = nn.Sequential(
            nn.Linear(o.proj_dim, o.pred_hidden, bias=False),
            nn.BatchNorm1d(o.pred_hidden),
            nn.ReLU(inplace=True),
        )
        self.mean_head = nn.Linear(o.pred_hidden, o.proj_dim)
        self.concentration_head = nn.Linear(o.pred_hidden, 1)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(h, z, mu, kappa)``: encoder output, projection, mean direction and concentration."""
        h = self.encode(x)
        z = self.projector(h)
        b = self.predictor_trunk(z)
        mu = F.normalize(self.mean_head(b).float(), dim=-1)
        dim = self.options.proj_dim
        floor = self.options.concentration_floor * (dim - 1) + 1e-3
        kappa = floor + dim * F.softplus(self.concentration_head(b).float().squeeze(-1))
        return h, z, mu, kappa

    def training_loss(
        self, x1: torch.Tensor, x2: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        self.check_views(x1, x2)
        _, z1, mu1, kappa1 = self.posterior(x1)
        _, z2, mu2, kappa2 = self.posterior(x2)
        return vsimsiam_loss(mu1, kappa1, mu2, kappa2, z1, z2, self.options.kl_weight)

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h, _, mu, kappa = self.posterior(x)
        return {"z": h, "mu": mu, "kappa": kappa}
