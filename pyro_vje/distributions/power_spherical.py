r"""The Power Spherical distribution on the unit sphere (De Cao & Aziz, 2020).

Used by the VSimSiam baseline (Nakamura et al., 2023; the VJE paper's Eq. 4):
a density on :math:`\mathbb{S}^{D-1} \subset \mathbb{R}^D` with mean direction
:math:`\mu` (a unit vector) and concentration :math:`\kappa \ge 0`,

.. math::

    p(x; \mu, \kappa) = C(\kappa, D)\,(1 + \mu^\top x)^{\kappa},\qquad
    C(\kappa, D)^{-1} = 2^{\alpha+\beta}\,\pi^{\beta}\,
        \frac{\Gamma(\alpha)}{\Gamma(\alpha+\beta)},

with :math:`\alpha = (D-1)/2 + \kappa` and :math:`\beta = (D-1)/2`. The density is
with respect to the surface measure of the sphere; :math:`\kappa = 0` is the
uniform distribution. Unlike the von Mises-Fisher distribution, both the
normalizer and the reparameterized sampler are free of Bessel functions and
rejection steps:

* the cosine :math:`t = \mu^\top x` has :math:`(1 + t)/2 \sim \mathrm{Beta}(\alpha, \beta)`
  (torch's Beta sampler is reparameterized, so gradients reach :math:`\kappa`);
* :math:`y = (t, \sqrt{1 - t^2}\, v)` with :math:`v` uniform on :math:`\mathbb{S}^{D-2}`
  is a draw with mean direction :math:`e_1`, and the Householder reflection
  :math:`H = I - 2uu^\top`, :math:`u = (e_1 - \mu)/\|e_1 - \mu\|`, maps it to
  mean direction :math:`\mu` (gradients reach :math:`\mu` through :math:`u`).

Closed forms used below (De Cao & Aziz 2020, Section 3):
:math:`\mathbb{E}[t] = (\alpha - \beta)/(\alpha + \beta)` so :math:`\mathbb{E}[x] = \mathbb{E}[t]\,\mu`;
:math:`\mathbb{E}[\log(1 + t)] = \log 2 + \psi(\alpha) - \psi(\alpha + \beta)`, hence the entropy
:math:`H = -\log C - \kappa(\log 2 + \psi(\alpha) - \psi(\alpha+\beta))` and the KL
divergence to the uniform distribution,
:math:`\mathrm{KL}(p \,\|\, U(\mathbb{S}^{D-1})) = \log|\mathbb{S}^{D-1}| - H` with
:math:`|\mathbb{S}^{D-1}| = 2\pi^{D/2}/\Gamma(D/2)`.
"""

from __future__ import annotations

import math

import torch
from pyro.distributions import constraints
from pyro.distributions.util import broadcast_shape
from torch.distributions import constraints as torch_constraints

from ._base import EmbeddingDistribution, check_vector
from ._math import as_tensor, compute_dtype, normalize

__all__ = ["PowerSpherical", "log_sphere_area"]


def log_sphere_area(dim: int) -> float:
    r"""``log |S^{D-1}| = log 2 + (D/2) log pi - lgamma(D/2)``: the surface area of the unit sphere in R^D."""
    return math.log(2.0) + 0.5 * dim * math.log(math.pi) - math.lgamma(0.5 * dim)


class PowerSpherical(EmbeddingDistribution):
    r"""Power Spherical distribution :math:`\mathrm{PS}(\mu, \kappa)` on :math:`\mathbb{S}^{D-1}`.

    ``event_shape == (D,)``; ``loc`` has shape ``(..., D)`` (unit vectors) and
    ``concentration`` shape ``(...)`` (one :math:`\kappa \ge 0` per batch element);
    they broadcast like torch's distributions. ``D >= 2``.

    Example (VSimSiam's alignment term, the VJE paper's Eq. 4)::

        mu = normalize(predictor(z1))                 # (N, D)
        kappa = F.softplus(kappa_head(h1)).squeeze(-1)  # (N,)
        nll = -PowerSpherical(mu, kappa).log_prob(normalize(z2.detach())).mean()

    :param loc: mean direction :math:`\mu`, unit vectors of shape ``(..., D)``.
    :param concentration: :math:`\kappa \ge 0` (``0`` is the uniform distribution).
    """

    arg_constraints = {
        "loc": constraints.sphere,
        "concentration": torch_constraints.nonnegative,
    }
    support = constraints.sphere
    has_rsample = True
    _reads_direction = True

    def __init__(
        self,
        loc: torch.Tensor,
        concentration: float | torch.Tensor,
        validate_args: bool | None = None,
    ):
        name = type(self).__name__
        check_vector("loc", loc, name)
        if not loc.is_floating_point():
            loc = loc.to(torch.get_default_dtype())
        dim = loc.shape[-1]
        if dim < 2:
            raise ValueError(f"{name}: the sphere S^(D-1) needs D >= 2, got loc with D = {dim}")
        concentration = as_tensor(concentration, loc)
        try:
            batch_shape = torch.Size(broadcast_shape(loc.shape[:-1], concentration.shape))
        except ValueError as err:
            raise ValueError(
                f"{name}: batch shapes do not broadcast: loc {tuple(loc.shape[:-1])} (+ event ({dim},)), "
                f"concentration {tuple(concentration.shape)}"
            ) from err
        self.loc = loc.expand(batch_shape + (dim,))
        self.concentration = concentration.expand(batch_shape)
        super().__init__(batch_shape, torch.Size((dim,)), validate_args=validate_args)
        if self._validate_args:
            if not bool(torch.isfinite(self.loc).all()):
                raise ValueError(f"{name}: argument 'loc' contains NaN or infinite entries")
            if not bool(torch.isfinite(self.concentration).all()):
                raise ValueError(f"{name}: argument 'concentration' contains NaN or infinite entries")

    @staticmethod
    def infer_shapes(loc=(2,), concentration=()):
        batch_shape = torch.Size(broadcast_shape(tuple(loc)[:-1], tuple(concentration)))
        return batch_shape, torch.Size(tuple(loc)[-1:])

    # ------------------------------------------------------------ parameters
    def _alpha_beta(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """:math:`\\alpha = (D-1)/2 + \\kappa`, :math:`\\beta = (D-1)/2` (as tensors of the batch shape)."""
        half = 0.5 * (self.event_shape[0] - 1)
        alpha = self.concentration.to(dtype) + half
        return alpha, torch.full_like(alpha, half)

    def log_normalizer(self) -> torch.Tensor:
        r"""The log-normalizer :math:`\log C =
        -[(\alpha+\beta)\log 2 + \beta\log\pi + \log\Gamma(\alpha) - \log\Gamma(\alpha+\beta)]`."""
        dtype = compute_dtype(self.loc, self.concentration)
        alpha, beta = self._alpha_beta(dtype)
        return -(
            (alpha + beta) * math.log(2.0)
            + beta * math.log(math.pi)
            + torch.lgamma(alpha)
            - torch.lgamma(alpha + beta)
        )

    @property
    def mean(self) -> torch.Tensor:
        r""":math:`\mathbb{E}[x] = \frac{\alpha-\beta}{\alpha+\beta}\mu = \frac{\kappa}{D-1+\kappa}\mu`."""
        dtype = compute_dtype(self.loc, self.concentration)
        alpha, beta = self._alpha_beta(dtype)
        return ((alpha - beta) / (alpha + beta)).unsqueeze(-1) * self.loc.to(dtype)

    # --------------------------------------------------------------- density
    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        r""":math:`\log C(\kappa, D) + \kappa\log(1 + \mu^\top x)` for unit vectors ``value``."""
        self._check_value(value)
        dtype = compute_dtype(value, self.loc, self.concentration)
        cos = (self.loc.to(dtype) * value.to(dtype)).sum(-1).clamp(-1.0, 1.0)
        kappa = self.concentration.to(dtype)
        # kappa * log1p(cos), with 0 * log(0) = 0 where kappa = 0 (the uniform distribution)
        kernel = torch.where(kappa == 0, torch.zeros_like(cos), kappa * torch.log1p(cos))
        return self.log_normalizer() + kernel

    def entropy(self) -> torch.Tensor:
        r""":math:`H = -\log C - \kappa(\log 2 + \psi(\alpha) - \psi(\alpha+\beta))`."""
        dtype = compute_dtype(self.loc, self.concentration)
        alpha, beta = self._alpha_beta(dtype)
        expected_log = math.log(2.0) + torch.digamma(alpha) - torch.digamma(alpha + beta)
        return -self.log_normalizer() - alpha.sub(beta) * expected_log

    def kl_to_uniform(self) -> torch.Tensor:
        r"""The KL divergence to the uniform distribution on the sphere,
        :math:`\mathrm{KL}(\mathrm{PS}\,\|\,U(\mathbb{S}^{D-1})) = \log|\mathbb{S}^{D-1}| - H \ge 0`."""
        return log_sphere_area(self.event_shape[0]) - self.entropy()

    # -------------------------------------------------------------- sampling
    def rsample(self, sample_shape=torch.Size()) -> torch.Tensor:
        """Reparameterized draws: Beta marginal of the cosine, then a Householder reflection."""
        sample_shape = torch.Size(sample_shape)
        dtype = compute_dtype(self.loc, self.concentration)
        dim = self.event_shape[0]
        loc = self.loc.to(dtype)
        alpha, beta = self._alpha_beta(dtype)
        z = torch.distributions.Beta(alpha, beta).rsample(sample_shape)
        t = (2.0 * z - 1.0).unsqueeze(-1)  # the cosine mu^T x
        shape = sample_shape + self.batch_shape + (dim - 1,)
        v = normalize(torch.randn(shape, dtype=dtype, device=loc.device))  # uniform on S^(D-2)
        y = torch.cat([t, (1.0 - t.square()).clamp_min(0.0).sqrt() * v], dim=-1)  # mean direction e1
        e1 = torch.zeros_like(loc)
        e1[..., 0] = 1.0
        u = normalize(e1 - loc)  # u = 0 where loc = e1: the reflection is then the identity
        x = y - 2.0 * (y * u).sum(-1, keepdim=True) * u
        return x.to(self.loc.dtype)
