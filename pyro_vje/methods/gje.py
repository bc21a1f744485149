r"""GJE / GMJE (Huang, 2026): a Gaussian (mixture) model of the joint embedding of two views.

The context and target embeddings of a pair form one joint vector
:math:`y = (z_c; z_t) \in \mathbb{R}^{2d}`, modelled by a Gaussian or a Gaussian
mixture whose conditionals :math:`p(z_t \mid z_c)` are closed-form and replace a
deterministic predictor (docs/methods.md has the equations).

* :func:`batch_gje_terms`: *naive* GJE, the Gaussian with the batch's own mean and
  (maximum-likelihood) covariance :math:`S`. Its Mahalanobis term is the constant
  :math:`\frac1N\sum_n (y_n - \bar y)^\top S^{-1}(y_n - \bar y) = \mathrm{tr}(S^{-1}S) = 2d`
  whatever the embeddings (the "Mahalanobis trace trap"): the only gradient left is
  :math:`\tfrac12\log\det S`, which rewards shrinking the embeddings, i.e. collapse.
* :class:`PrototypeJointMixture`: GMJE with ``K`` learnable prototypes
  :math:`(\pi_k, \mu_k, \Sigma_k)`, global parameters rather than batch statistics, so
  the Mahalanobis terms depend on the embeddings. Each :math:`\Sigma_k` couples
  :math:`z_{c,j}` only with :math:`z_{t,j}` (a 2x2 block per feature ``j``:
  standard deviations and a correlation :math:`\rho_{kj}`), which keeps the
  conditionals closed-form and cheap (:math:`O(Kd)`) while still letting a component
  predict the target from the context.
* :func:`gmje_loss`: the estimator trained here: the joint NLL under the mixture, per
  dimension, plus an equipartition term :math:`\lambda\,\mathrm{KL}(\bar r \,\|\, \pi)`
  on the batch-mean responsibilities :math:`\bar r`, which rules out the degenerate
  solution of every embedding falling into one prototype (as in SwAV / SeLa).

Example::

    >>> mixture = PrototypeJointMixture(dim=16, num_prototypes=8)
    >>> zc, zt = torch.randn(32, 16), torch.randn(32, 16)
    >>> loss, terms = gmje_loss(zc, zt, mixture)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import TwoViewMethod
from .mlp_heads import mlp
from .options import GJE_ESTIMATORS, GJEOptions

__all__ = [
    "GJE",
    "GJEOptions",
    "GJE_ESTIMATORS",
    "PrototypeJointMixture",
    "batch_gje_terms",
    "gaussian_conditional",
    "gmje_loss",
]

_LOG_2PI = math.log(2 * math.pi)


def gaussian_conditional(
    mean: torch.Tensor, cov: torch.Tensor, z_c: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Closed-form :math:`p(z_t \mid z_c)` of a joint Gaussian :math:`N(\mu, \Sigma)` over
    :math:`(z_c; z_t)`.

    :math:`\mu_{t|c} = \mu_t + \Sigma_{tc}\Sigma_{cc}^{-1}(z_c - \mu_c)`,
    :math:`\Sigma_{t|c} = \Sigma_{tt} - \Sigma_{tc}\Sigma_{cc}^{-1}\Sigma_{ct}` (the Schur complement).

    :param mean: ``(d_c + d_t,)``; :param cov: ``(d_c + d_t, d_c + d_t)`` positive definite;
    :param z_c: ``(N, d_c)``. Returns ``(cond_mean (N, d_t), cond_cov (d_t, d_t))``.
    """
    d_c = z_c.shape[-1]
    if mean.dim() != 1 or cov.shape != (mean.shape[0], mean.shape[0]) or not 0 < d_c < mean.shape[0]:
        raise ValueError(
            f"gaussian_conditional: mean (D,) and cov (D, D) with 0 < d_c < D expected, got mean "
            f"{tuple(mean.shape)}, cov {tuple(cov.shape)}, z_c {tuple(z_c.shape)}"
        )
    s_cc, s_ct = cov[:d_c, :d_c], cov[:d_c, d_c:]
    s_tt = cov[d_c:, d_c:]
    gain = torch.linalg.solve(s_cc, s_ct).T  # Sigma_tc Sigma_cc^{-1}, using Sigma_tc = Sigma_ct^T
    cond_mean = mean[d_c:] + (z_c - mean[:d_c]) @ gain.T
    cond_cov = s_tt - gain @ s_ct
    return cond_mean, cond_cov


def batch_gje_terms(z_c: torch.Tensor, z_t: torch.Tensor, jitter: float = 0.0) -> dict[str, torch.Tensor]:
    r"""Naive GJE: the NLL of the joint embeddings under the batch's own Gaussian.

    With :math:`\bar y` the batch mean and
    :math:`S = \frac1N\sum_n (y_n-\bar y)(y_n-\bar y)^\top + \epsilon I`, returns ``logdet``
    :math:`= \log\det S`, ``mahalanobis``
    :math:`= \frac1N\sum_n (y_n-\bar y)^\top S^{-1}(y_n-\bar y)`
    (:math:`= 2d` exactly when ``jitter = 0``: the trace trap) and
    ``nll`` :math:`= \tfrac12(\log\det S + \text{mahalanobis} + 2d\log 2\pi)` (per sample).
    Needs ``N > 2d`` when ``jitter = 0`` (else :math:`S` is singular).
    """
    if z_c.dim() != 2 or z_t.dim() != 2 or z_c.shape[0] != z_t.shape[0]:
        raise ValueError(
            f"batch_gje_terms: z_c, z_t must be (N, d), got {tuple(z_c.shape)}, {tuple(z_t.shape)}"
        )
    y = torch.cat([z_c, z_t], dim=-1).to(torch.promote_types(z_c.dtype, torch.float32))
    n, dim = y.shape
    if jitter == 0 and n <= dim:
        raise ValueError(
            f"batch_gje_terms: the batch covariance of N = {n} joint embeddings of dimension {dim} "
            "is singular; "
            f"use N > {dim} or jitter > 0"
        )
    centred = y - y.mean(0)
    cov = centred.T @ centred / n + jitter * torch.eye(dim, dtype=y.dtype, device=y.device)
    chol = torch.linalg.cholesky(cov)
    white = torch.linalg.solve_triangular(chol, centred.T, upper=False)  # L^{-1} (y - mean)
    mahalanobis = white.square().sum(0).mean()
    logdet = 2 * torch.log(torch.diagonal(chol)).sum()
    return {
        "logdet": logdet,
        "mahalanobis": mahalanobis,
        "nll": 0.5 * (logdet + mahalanobis + dim * _LOG_2PI),
    }


class PrototypeJointMixture(nn.Module):
    r"""``K`` Gaussian prototypes over :math:`(z_c; z_t) \in \mathbb{R}^{2d}`, 2x2 covariance blocks.

    Component ``k``, feature ``j``: :math:`(z_{c,j}, z_{t,j}) \sim N\big((\mu^c_{kj}, \mu^t_{kj}),
    \begin{pmatrix}\sigma^{c\,2}_{kj} & \rho_{kj}\sigma^c_{kj}\sigma^t_{kj}\\
    \rho_{kj}\sigma^c_{kj}\sigma^t_{kj} & \sigma^{t\,2}_{kj}\end{pmatrix}\big)`, independent over ``j``.
    Standard deviations are ``min_std + softplus(.)``, :math:`\rho = 0.999\tanh(.)`; the
    weights :math:`\pi` are uniform unless ``learn_weights``.

    :param dim: d, the dimension of each of z_c and z_t.
    :param num_prototypes: K.
    :param init_std: initial standard deviations (default :math:`1/\sqrt d`, the coordinate
        scale of unit vectors).
    :param min_std: floor on the standard deviations.
    :param learn_weights: learn the mixture weights :math:`\pi` too.
    """

    def __init__(
        self,
        dim: int,
        num_prototypes: int = 32,
        init_std: float | None = None,
        min_std: float = 1e-2,
        learn_weights: bool = False,
    ):
        super().__init__()
        if dim < 1 or num_prototypes < 1:
            raise ValueError(
                f"PrototypeJointMixture: dim and num_prototypes must be >= 1, got {dim}, {num_prototypes}"
            )
        init_std = 1.0 / math.sqrt(dim) if init_std is None else init_std
        if not 0 < min_std < init_std:
            raise ValueError(f"PrototypeJointMixture: need 0 < min_std < init_std, got {min_std}, {init_std}")
        self.dim, self.num_prototypes, self.min_std = dim, num_prototypes, float(min_std)
        centres = F.normalize(torch.randn(num_prototypes, dim), dim=-1)
        self.loc = nn.Parameter(torch.stack([centres, centres], dim=1))  # (K, 2, d): context, target
        raw = math.log(math.expm1(init_std - min_std))  # softplus^{-1}
        self.raw_std = nn.Parameter(torch.full((num_prototypes, 2, dim), raw))
        self.raw_corr = nn.Parameter(torch.zeros(num_prototypes, dim))
        logits = torch.zeros(num_prototypes)
        if learn_weights:
            self.logits = nn.Parameter(logits)
        else:
            self.register_buffer("logits", logits)

    def params(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(log_pi (K,), loc (K, 2, d), std (K, 2, d), rho (K, d))``."""
        std = self.min_std + F.softplus(self.raw_std)
        return F.log_softmax(self.logits, -1), self.loc, std, 0.999 * torch.tanh(self.raw_corr)

    def _check(self, *zs: torch.Tensor) -> None:
        for z in zs:
            if z.dim() != 2 or z.shape[-1] != self.dim:
                raise ValueError(
                    f"PrototypeJointMixture: embeddings must be (N, {self.dim}), got {tuple(z.shape)}"
                )

    def component_log_prob(self, z_c: torch.Tensor, z_t: torch.Tensor) -> torch.Tensor:
        r""":math:`\log N((z_c; z_t); \mu_k, \Sigma_k)` for every sample and component, ``(N, K)``."""
        self._check(z_c, z_t)
        _, loc, std, rho = self.params()
        a = (z_c.unsqueeze(1) - loc[:, 0]) / std[:, 0]  # (N, K, d)
        b = (z_t.unsqueeze(1) - loc[:, 1]) / std[:, 1]
        one_minus = 1 - rho.square()
        quad = (a.square() - 2 * rho * a * b + b.square()) / one_minus
        log_norm = _LOG_2PI + std[:, 0].log() + std[:, 1].log() + 0.5 * one_minus.log()  # (K, d)
        return (-0.5 * quad - log_norm).sum(-1)

    def log_prob(self, z_c: torch.Tensor, z_t: torch.Tensor) -> torch.Tensor:
        r""":math:`\log p(z_c, z_t) = \log\sum_k \pi_k N((z_c; z_t); \mu_k, \Sigma_k)`, ``(N,)``."""
        log_pi = self.params()[0]
        return torch.logsumexp(log_pi + self.component_log_prob(z_c, z_t), dim=-1)

    def marginal_log_prob(self, z_c: torch.Tensor) -> torch.Tensor:
        r"""``(N,)``: :math:`\log p(z_c) = \log\sum_k \pi_k N(z_c; \mu^c_k, \mathrm{diag}(\sigma^{c2}_k))`."""
        return torch.logsumexp(self._context_log_joint(z_c), dim=-1)

    def _context_log_joint(self, z_c: torch.Tensor) -> torch.Tensor:
        self._check(z_c)
        log_pi, loc, std, _ = self.params()
        a = (z_c.unsqueeze(1) - loc[:, 0]) / std[:, 0]
        return log_pi + (-0.5 * a.square() - 0.5 * _LOG_2PI - std[:, 0].log()).sum(-1)

    def conditional(self, z_c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        r"""Closed-form :math:`p(z_t \mid z_c) = \sum_k w_k(z_c)\, N(z_t; m_k(z_c), \mathrm{diag}(v_k))`.

        :math:`w_k \propto \pi_k N(z_c; \mu^c_k, \sigma^{c\,2}_k)`,
        :math:`m_k = \mu^t_k + \rho_k \frac{\sigma^t_k}{\sigma^c_k}(z_c - \mu^c_k)`,
        :math:`v_k = \sigma^{t\,2}_k (1 - \rho_k^2)`.
        Returns ``(log_w (N, K), m (N, K, d), sqrt(v) (K, d))``.
        """
        log_w = F.log_softmax(self._context_log_joint(z_c), dim=-1)
        _, loc, std, rho = self.params()
        cond_mean = loc[:, 1] + rho * std[:, 1] / std[:, 0] * (z_c.unsqueeze(1) - loc[:, 0])
        cond_std = std[:, 1] * torch.sqrt(1 - rho.square())
        return log_w, cond_mean, cond_std

    def conditional_log_prob(self, z_t: torch.Tensor, z_c: torch.Tensor) -> torch.Tensor:
        r""":math:`\log p(z_t \mid z_c)`, ``(N,)``; equals ``log_prob - marginal_log_prob``."""
        self._check(z_t)
        log_w, cond_mean, cond_std = self.conditional(z_c)
        e = (z_t.unsqueeze(1) - cond_mean) / cond_std
        comp = (-0.5 * e.square() - 0.5 * _LOG_2PI - cond_std.log()).sum(-1)
        return torch.logsumexp(log_w + comp, dim=-1)

    def predict(self, z_c: torch.Tensor) -> torch.Tensor:
        r""":math:`\mathbb{E}[z_t \mid z_c] = \sum_k w_k(z_c)\, m_k(z_c)`, ``(N, d)``."""
        log_w, cond_mean, _ = self.conditional(z_c)
        return (log_w.exp().unsqueeze(-1) * cond_mean).sum(1)


def gmje_loss(
    z_c: torch.Tensor, z_t: torch.Tensor, mixture: PrototypeJointMixture, balance_weight: float = 1.0
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    r"""``(loss, {"nll", "balance"})``: the GMJE estimator
    :math:`-\frac{1}{2dN}\sum_n \log p(z_{c,n}, z_{t,n}) + \lambda\,\mathrm{KL}(\bar r \,\|\, \pi)`.

    :math:`\bar r = \frac1N\sum_n r_n` is the batch mean of the responsibilities
    :math:`r_{nk} \propto \pi_k N(y_n; \mu_k, \Sigma_k)`.
    """
    log_pi = mixture.params()[0]
    log_joint = log_pi + mixture.component_log_prob(z_c, z_t)  # (N, K)
    nll = -torch.logsumexp(log_joint, dim=-1).mean() / (2 * mixture.dim)
    r_bar = F.softmax(log_joint, dim=-1).mean(0)
    balance = (r_bar * (r_bar.clamp_min(1e-12).log() - log_pi)).sum()
    return nll + balance_weight * balance, {"nll": nll.detach(), "balance": balance.detach()}


class GJE(TwoViewMethod):
    """GMJE (``estimator="prototype"``) or naive GJE (``"batch"``) on an encoder; features ``z``.

    Both views go through a BatchNorm projector to ``out_dim`` and onto the unit sphere;
    the loss is symmetrized over which view is the context.

    :param encoder: the backbone f, with ``.dim``.
    :param options: :class:`GJEOptions`.
    """

    def __init__(self, encoder: nn.Module, options: GJEOptions | None = None):
        super().__init__(encoder)
        self.options = options if options is not None else GJEOptions()
        self.options.validate()
        o = self.options
        self.projector = mlp(self.dim, o.proj_hidden, o.out_dim, 2)
        self.mixture = (
            PrototypeJointMixture(
                o.out_dim, o.num_prototypes, min_std=o.min_std, learn_weights=o.learn_weights
            )
            if o.estimator == "prototype"
            else None
        )

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.projector(self.encode(x)).float(), dim=-1)

    def training_loss(
        self, x1: torch.Tensor, x2: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        self.check_views(x1, x2)
        y1, y2 = self.embed(x1), self.embed(x2)
        if self.mixture is None:
            a, b = batch_gje_terms(y1, y2, self.options.jitter), batch_gje_terms(y2, y1, self.options.jitter)
            dim = 2 * self.options.out_dim
            loss = 0.25 * (a["nll"] + b["nll"]) / self.options.out_dim
            return loss, {
                "logdet": 0.5 * (a["logdet"] + b["logdet"]).detach() / dim,
                "mahalanobis": 0.5 * (a["mahalanobis"] + b["mahalanobis"]).detach(),
            }
        loss_a, terms_a = gmje_loss(y1, y2, self.mixture, self.options.balance_weight)
        loss_b, terms_b = gmje_loss(y2, y1, self.mixture, self.options.balance_weight)
        terms = {k: 0.5 * (terms_a[k] + terms_b[k]) for k in terms_a}
        return 0.5 * (loss_a + loss_b), terms
