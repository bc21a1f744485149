"""The paper's Appendix A pseudocode (Algorithms 1-4), written directly in torch.

This is a *reference* for tests and speed comparisons: training goes through
the Pyro model/guide in :mod:`pyro_vje.model`. It deliberately shares no code
with :mod:`pyro_vje.distributions`, so that each checks the other. Like the
paper, it takes the posterior **variance** ``var`` (sigma^2) and omits
constants that do not depend on ``(mu, sigma^2)``.

Example::

    >>> import torch
    >>> from pyro_vje.reference import vje_loss
    >>> z1, z2 = torch.randn(8, 16), torch.randn(8, 16)
    >>> mu1, mu2 = torch.randn(8, 16), torch.randn(8, 16)
    >>> var1, var2 = torch.rand(8, 16) + 0.1, torch.rand(8, 16) + 0.1
    >>> loss = vje_loss(z1, z2, mu1, var1, mu2, var2, df=3.0, beta=1.0)
    >>> loss.shape
    torch.Size([])
"""

from __future__ import annotations

import math

import torch

EPS = 1e-6  # Appendix A, "Stability"


def _normalize(x: torch.Tensor) -> torch.Tensor:
    return x / torch.clamp(x.norm(dim=-1, keepdim=True), min=EPS)


def _t_nll(q: torch.Tensor, df: float, dim: int) -> torch.Tensor:
    """``(df + dim)/2 log(1 + q/df)``, and ``q/2`` for ``df = inf``."""
    if math.isinf(df):
        return 0.5 * q
    return 0.5 * (df + dim) * torch.log1p(q / df)


def nll_dir(z: torch.Tensor, s: torch.Tensor, var: torch.Tensor, df: float) -> torch.Tensor:
    """Algorithm 1: directional NLL (Eq. 24), per row."""
    z_hat, s_hat = _normalize(z), _normalize(s)
    q_dir = ((z_hat - s_hat) ** 2 / var).sum(-1)
    return _t_nll(q_dir, df, z.shape[-1]) + 0.5 * torch.log(var).sum(-1)


def nll_rad(z: torch.Tensor, s: torch.Tensor, df: float, radial_var: float = 1.0) -> torch.Tensor:
    """Algorithm 2: radial NLL (Eq. 29) on ``Delta r = ||z|| - ||s||``, per row."""
    delta_r = z.norm(dim=-1) - s.norm(dim=-1)
    return _t_nll(delta_r**2 / radial_var, df, 1)


def kld(mu: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """Algorithm 3: ``KL(N(mu, diag(var)) || N(0, I))`` (Eq. 34), per row."""
    return 0.5 * (var + mu**2 - 1.0 - torch.log(var)).sum(-1)


def vje_terms(
    z1: torch.Tensor,
    z2: torch.Tensor,
    mu1: torch.Tensor,
    var1: torch.Tensor,
    mu2: torch.Tensor,
    var2: torch.Tensor,
    df: float = 3.0,
    noise: tuple[torch.Tensor, torch.Tensor] | None = None,
    radial_var: float = 1.0,
) -> dict[str, torch.Tensor]:
    """Algorithm 4, lines 1-6: the batch means of ``l_dir``, ``l_rad`` and ``l_KL``.

    ``noise = (eps1, eps2)`` fixes the reparameterization noise of line 3
    (``s_i = mu_i + sqrt(var_i) * eps_i``); by default it is drawn with
    ``torch.randn_like``.
    """
    if noise is None:
        noise = (torch.randn_like(mu1), torch.randn_like(mu2))
    eps1, eps2 = noise
    s1 = mu1 + torch.sqrt(var1) * eps1  # line 3
    s2 = mu2 + torch.sqrt(var2) * eps2
    l_dir = 0.5 * (nll_dir(z2.detach(), s1, var1, df) + nll_dir(z1.detach(), s2, var2, df))
    l_rad = 0.5 * (nll_rad(z2.detach(), s1, df, radial_var) + nll_rad(z1.detach(), s2, df, radial_var))
    l_kl = 0.5 * (kld(mu1, var1) + kld(mu2, var2))
    return {"dir": l_dir.mean(), "rad": l_rad.mean(), "kl": l_kl.mean()}


def vje_loss(
    z1: torch.Tensor,
    z2: torch.Tensor,
    mu1: torch.Tensor,
    var1: torch.Tensor,
    mu2: torch.Tensor,
    var2: torch.Tensor,
    df: float = 3.0,
    beta: float | torch.Tensor = 1.0,
    noise: tuple[torch.Tensor, torch.Tensor] | None = None,
    radial_var: float = 1.0,
) -> torch.Tensor:
    """Algorithm 4: ``l_dir + l_rad + beta * l_KL`` (Eq. 38), averaged over the batch.

    :param z1, z2: embeddings of the two views, ``(N, D)`` (detached inside).
    :param mu1, var1, mu2, var2: posterior means and variances, ``(N, D)``.
    :param df: Student-t degrees of freedom (``float('inf')`` for the Gaussian limit).
    :param beta: KL weight.
    :param noise: optional ``(eps1, eps2)`` for line 3.
    :param radial_var: the radial scale ``lambda`` (the paper fixes 1).
    """
    terms = vje_terms(z1, z2, mu1, var1, mu2, var2, df, noise, radial_var)
    return terms["dir"] + terms["rad"] + beta * terms["kl"]
