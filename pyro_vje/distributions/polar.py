"""The VJE likelihood: product of the directional and radial factors (Eq. 31)."""

from __future__ import annotations

import torch
from pyro.distributions.util import broadcast_shape
from torch.distributions import constraints

from ._base import EmbeddingDistribution, broadcast_params
from ._math import compute_dtype, normalize, vector_norm
from .directional import DirectionalStudentT, directional_log_prob, directional_residual, sample_direction
from .radial import RadialStudentT, radial_log_prob, sample_residual


class PolarStudentT(EmbeddingDistribution):
    r"""The VJE likelihood :math:`p_\psi(y \mid s, \sigma^2)` (paper Eq. 31).

    The product of :class:`DirectionalStudentT` (Eq. 23) on the direction of
    ``z`` and :class:`RadialStudentT` (Eq. 28) on the norm residual
    :math:`\Delta r = \|z\| - \|s\|`, sharing the degrees of freedom:

    .. math::

        \log p(z) = \log p_{dir}(\hat z \mid \hat s, \mathrm{diag}(\sigma^2))
                  + \log p^{(\Delta)}_{rad}(\|z\| - \|s\|;\ \lambda).

    In VJE, ``loc`` is the latent sample :math:`s_i`, ``scale`` the posterior
    standard deviation :math:`\sigma_i` (shared with the guide), ``z`` the
    detached opposite embedding :math:`z_j`, and ``radial_scale`` is
    :math:`\sqrt{\lambda} = 1`. The two factors are exposed as
    :attr:`directional` and :attr:`radial` so scores can be split (Eq. 39),
    and :meth:`log_prob_terms` returns both from one pass.

    The directional factor is an extrinsic density that is not normalized on
    the sphere, and the radial factor puts mass on negative norms, so
    ``log_prob`` is not the density of :meth:`rsample` (see both factors and
    ``docs/theory.md``). Sampling draws a direction from the directional
    factor and multiplies it by :math:`\|s\| + \Delta r`,
    :math:`\Delta r \sim \sqrt{\lambda}\, t_\nu`.

    Example, as an observation inside a Pyro model::

        def model(z):  # z: (N, D) embeddings
            s = pyro.sample("s", dist.Normal(torch.zeros(D), 1.0).to_event(1))
            sigma = pyro.sample("sigma", dist.LogNormal(torch.zeros(D), 1.0).to_event(1))
            with pyro.plate("data", z.shape[0]):
                pyro.sample("z", PolarStudentT(3.0, s, sigma), obs=z)

    (With an autoguide, use ``init_loc_fn=init_to_sample``: the default
    initializations start ``s`` at the zero vector, which has no direction
    and is rejected under validation. ``examples/polar_prototypes.py`` is a
    complete, tested example.)

    :param df: degrees of freedom :math:`\nu > 0`, shared by both factors
        (``float('inf')`` gives the Gaussian limit of both).
    :param loc: centre :math:`s`, shape ``(..., D)``.
    :param scale: per-feature standard deviation :math:`\sigma`, shape
        ``(..., D)`` or scalar (the paper's :math:`\sigma^2` is ``scale**2``).
    :param radial_scale: radial standard deviation :math:`\sqrt{\lambda}`
        (default 1.0, as the paper fixes :math:`\lambda = 1`).
    """

    arg_constraints = {
        "df": constraints.positive,
        "loc": constraints.real_vector,
        "scale": constraints.independent(constraints.positive, 1),
        "radial_scale": constraints.positive,
    }
    support = constraints.real_vector
    has_rsample = True

    def __init__(
        self,
        df: float | torch.Tensor,
        loc: torch.Tensor,
        scale: float | torch.Tensor,
        radial_scale: float | torch.Tensor = 1.0,
        validate_args: bool | None = None,
    ):
        name = type(self).__name__
        self.df, self.loc, self.scale, self.radial_scale, batch_shape = broadcast_params(
            name, loc, scale, df, radial_scale
        )
        super().__init__(batch_shape, self.loc.shape[-1:], validate_args=validate_args)
        if self._validate_args:
            self._validate_loc_and_scale(self.loc, self.scale)
            if not bool(torch.isfinite(self.radial_scale).all()):
                raise ValueError(f"{name}: argument 'radial_scale' contains infinite entries")

    @staticmethod
    def infer_shapes(df=(), loc=(1,), scale=(), radial_scale=()):
        scale = tuple(scale)[:-1] if len(scale) else ()
        batch_shape = torch.Size(broadcast_shape(tuple(df), tuple(loc)[:-1], scale, tuple(radial_scale)))
        return batch_shape, torch.Size(tuple(loc)[-1:])

    @property
    def directional(self) -> DirectionalStudentT:
        """The directional factor (Eq. 23) with this distribution's parameters."""
        return DirectionalStudentT(self.df, self.loc, self.scale, validate_args=False)

    @property
    def radial(self) -> RadialStudentT:
        """The radial factor (Eq. 28) with this distribution's parameters."""
        return RadialStudentT(self.df, self.loc, self.radial_scale, validate_args=False)

    def log_prob_terms(self, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(log p_dir, log p_rad)`` of ``value``, computed from one pass over it."""
        self._check_value(value)
        dtype = compute_dtype(value, self.loc, self.scale, self.radial_scale)
        value, df = value.to(dtype), self.df.to(dtype)
        value_norm = vector_norm(value)
        loc_norm, loc_hat = self._loc_polar(dtype)
        log_dir = directional_log_prob(normalize(value, value_norm), loc_hat, self.scale.to(dtype), df)
        log_rad = radial_log_prob(value_norm, loc_norm, self.radial_scale.to(dtype), df)
        return log_dir, log_rad

    def directional_residual(self, value: torch.Tensor) -> torch.Tensor:
        r"""Eq. 22's :math:`Q_{dir} = \sum_d ((\hat z_d - \hat s_d) / \sigma_d)^2` of ``value``: the
        squared standardized distance of its direction from the centre's, the only place the data
        enter the directional factor (Eq. 23 is :math:`\log C_{\nu,D} - \sum_d \log\sigma_d -
        \tfrac{\nu+D}{2}\log(1 + Q_{dir}/\nu)`). Under the ambient Student-t of Eq. 23,
        :math:`Q_{dir}/D \sim F(D, \nu)` (:math:`\chi^2_D / D` for :math:`\nu = \infty`) whatever
        :math:`\sigma`, so it ranks inputs by the model's tail probability."""
        self._check_value(value)
        dtype = compute_dtype(value, self.loc, self.scale, self.radial_scale)
        value = value.to(dtype)
        _, loc_hat = self._loc_polar(dtype)
        return directional_residual(normalize(value, vector_norm(value)), loc_hat, self.scale.to(dtype))

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        log_dir, log_rad = self.log_prob_terms(value)
        return log_dir + log_rad  # Eq. 31

    def rsample(self, sample_shape=torch.Size()) -> torch.Tensor:
        sample_shape = torch.Size(sample_shape)
        dtype = self._dtype
        df = self.df.to(dtype)
        shape = self._extended_shape(sample_shape)
        direction = sample_direction(df, self._loc_direction, self.scale.to(dtype), shape)
        radius = self._loc_norm + sample_residual(df, self.radial_scale.to(dtype), sample_shape)
        return (direction * radius.unsqueeze(-1)).to(self.loc.dtype)
