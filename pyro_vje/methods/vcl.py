r"""VCL / VSimCLR (Jeong, Kim & Hero, 2025): projected-normal posterior, InfoNCE on samples, KL to uniform.

For each view a Gaussian :math:`q_i = N(m_i, \mathrm{diag}(s_i^2))` is predicted from the
encoder output; its projection onto the sphere, :math:`\hat e_i = e_i / \|e_i\|` with
:math:`e_i \sim q_i` (reparameterized), is the probabilistic embedding. The loss::

    L = NT-Xent(e_1/||e_1||, e_2/||e_2||; tau) + w * [B(q_1) + B(q_2)] / (2 d)

where NT-Xent is SimCLR's InfoNCE over the 2N samples of a batch (temperature tau)
and ``B(q)`` is an upper bound of :math:`\mathrm{KL}(\mathrm{PN}(q) \,\|\, U(\mathbb{S}^{d-1}))`,
divided by ``d`` (VCL's "normalized KL"). The paper leaves the estimator of this KL
open; docs/methods.md derives the bounds implemented here from the data-processing
inequality (the projection of any :math:`N(0, c^2 I)` is uniform):

* ``"scale_free"`` (default): :math:`\min_c \mathrm{KL}(q \,\|\, N(0, c^2 I))
  = \tfrac12[d \log(\tfrac1d\sum_k (m_k^2 + s_k^2)) - \sum_k \log s_k^2]`, invariant to
  rescaling ``(m, s)``, as the projected normal is; zero exactly when ``q`` projects to
  the uniform distribution (``m = 0``, isotropic ``s``);
* ``"standard"``: :math:`\mathrm{KL}(q \,\|\, N(0, I))` (the ``c = 1`` case, looser).

Example::

    >>> a, b = torch.randn(8, 16), torch.randn(8, 16)
    >>> nt_xent(a, b, temperature=0.5)        # scalar; log(2N - 1) for random directions on average
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import TwoViewMethod
from .options import KL_BOUNDS, VCLOptions

__all__ = [
    "KL_BOUNDS",
    "VCL",
    "VCLOptions",
    "gaussian_kl_to_standard",
    "nt_xent",
    "projected_normal_kl_bound",
]



def nt_xent(a: torch.Tensor, b: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    r"""SimCLR's NT-Xent: mean over the 2N anchors of
    :math:`-\log \frac{\exp(\cos(u_i, u_{i^+})/\tau)}{\sum_{k \ne i} \exp(\cos(u_i, u_k)/\tau)}`,
    with :math:`u = (a; b)` and :math:`i^+` the other view of the same image."""
    if a.dim() != 2 or a.shape != b.shape:
        raise ValueError(f"nt_xent: a and b must both be (N, d), got {tuple(a.shape)} and {tuple(b.shape)}")
    if not temperature > 0:
        raise ValueError(f"nt_xent: temperature must be > 0, got {temperature}")
    n = a.shape[0]
    dtype = torch.promote_types(a.dtype, torch.float32)
    u = F.normalize(torch.cat([a, b]).to(dtype), dim=-1)
    logits = u @ u.T / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=u.device), float("-inf"))
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(u.device)
    return F.cross_entropy(logits, positives)


def gaussian_kl_to_standard(loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    r"""Per row, :math:`\mathrm{KL}(N(m, \mathrm{diag}(s^2)) \,\|\, N(0, I))
    = \tfrac12\sum_k (s_k^2 + m_k^2 - 1 - \log s_k^2)`."""
    var = scale.square()
    return 0.5 * (var + loc.square() - 1.0 - var.log()).sum(-1)


def projected_normal_kl_bound(
    loc: torch.Tensor, scale: torch.Tensor, bound: str = "scale_free"
) -> torch.Tensor:
    r"""Per-row upper bound of
    :math:`\mathrm{KL}(\mathrm{PN}(m, \mathrm{diag}(s^2)) \,\|\, U(\mathbb{S}^{d-1}))`.

    ``"scale_free"``: :math:`\tfrac12[d\log(\tfrac1d\sum_k(m_k^2+s_k^2)) - \sum_k\log s_k^2]`;
    ``"standard"``: :func:`gaussian_kl_to_standard`. Both are >= the true KL (docs/methods.md).
    """
    if bound == "standard":
        return gaussian_kl_to_standard(loc, scale)
    if bound != "scale_free":
        raise ValueError(f"projected_normal_kl_bound: unknown bound {bound!r}; choose from {KL_BOUNDS}")
    var = scale.square()
    d = loc.shape[-1]
    second_moment = (loc.square() + var).mean(-1)
    return 0.5 * (d * second_moment.log() - var.log().sum(-1))


class VCL(TwoViewMethod):
    """VSimCLR on an encoder; features ``z`` (encoder), ``mu`` (posterior mean m), ``scale`` (s).

    :param encoder: the backbone f, with ``.dim``.
    :param options: :class:`VCLOptions`.
    """

    def __init__(self, encoder: nn.Module, options: VCLOptions | None = None):
        super().__init__(encoder)
        self.options = options if options is not None else VCLOptions()
        self.options.validate()
        o = self.options
        self.trunk = nn.Sequential(
            nn.Linear(self.dim, o.proj_hidden), nn.BatchNorm1d(o.proj_hidden), nn.ReLU(inplace=True)
        )
        self.loc_head = nn.Linear(o.proj_hidden, o.out_dim)
        self.var_head = nn.Linear(o.proj_hidden, o.out_dim)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(z, m, s)``: encoder output and the Gaussian posterior's mean and standard deviation."""
        z = self.encode(x)
        b = self.trunk(z)
        loc = self.loc_head(b).float()
        var = F.softplus(self.var_head(b).float()) + self.options.min_var
        return z, loc, var.sqrt()

    def training_loss(
        self, x1: torch.Tensor, x2: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        self.check_views(x1, x2)
        o = self.options
        _, m1, s1 = self.posterior(x1)
        _, m2, s2 = self.posterior(x2)
        e1 = m1 + s1 * torch.randn_like(s1)  # reparameterized; NT-Xent normalizes the samples
        e2 = m2 + s2 * torch.randn_like(s2)
        nce = nt_xent(e1, e2, o.nce_temperature)
        kl = 0.5 * (
            projected_normal_kl_bound(m1, s1, o.kl_bound) + projected_normal_kl_bound(m2, s2, o.kl_bound)
        )
        kl = kl.mean() / o.out_dim
        loss = nce + o.kl_weight * kl
        var_mean = 0.5 * (s1.detach().square().mean() + s2.detach().square().mean())
        return loss, {"nce": nce.detach(), "kl": kl.detach(), "var": var_mean}

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z, loc, scale = self.posterior(x)
        return {"z": z, "mu": loc, "scale": scale}
