"""The radial factor of the VJE likelihood (paper Eq. 27-30)."""

from __future__ import annotations

import torch
from pyro.distributions.util import broadcast_shape
from torch.distributions import constraints

from ._base import EmbeddingDistribution, broadcast_params
from ._math import (
    compute_dtype,
    normalize,
    student_t_log_kernel,
    student_t_log_normalizer,
    student_t_mixing_weight,
    vector_norm,
)


def radial_log_prob(
    value_norm: torch.Tensor, loc_norm: torch.Tensor, scale: torch.Tensor, df: torch.Tensor
) -> torch.Tensor:
    r"""Eq. 28: ``log t_df(Delta r; 0, scale)`` with ``Delta r = ||z|| - ||loc||`` (Eq. 27)."""
    delta_r = value_norm - loc_norm  # Eq. 27
    return (
        student_t_log_normalizer(df, 1) - scale.log() + student_t_log_kernel((delta_r / scale).pow(2), df, 1)
    )


def sample_residual(df: torch.Tensor, scale: torch.Tensor, sample_shape: torch.Size) -> torch.Tensor:
    """Draws of ``Delta r ~ scale * t_df`` of shape ``sample_shape + scale.shape``."""
    eps = torch.randn(sample_shape + scale.shape, dtype=scale.dtype, device=scale.device)
    return scale * eps * student_t_mixing_weight(df, sample_shape)


class RadialStudentT(EmbeddingDistribution):
    r"""Student-t on the norm residual of an embedding (paper Eq. 28).

    For a target embedding :math:`z \in \mathbb{R}^D` and centre ``loc``,
    with :math:`\Delta r = \|z\| - \|\mathrm{loc}\|` (Eq. 27) and
    :math:`\lambda` = ``scale**2``:

    .. math::

        \log p(z) = \log\Gamma\!\big(\tfrac{\nu+1}{2}\big) - \log\Gamma\!\big(\tfrac{\nu}{2}\big)
        - \tfrac12\log(\nu\pi\lambda)
        - \tfrac{\nu+1}{2}\log\!\big(1 + \tfrac{\Delta r^2}{\nu\lambda}\big).

    The paper fixes :math:`\lambda = 1` (``scale=1.0``, the default, Section
    4.3). ``df = inf`` gives ``Normal(0, scale).log_prob(Delta r)``. The
    influence is bounded: :math:`|\partial(-\log p)/\partial\Delta r| \le
    (\nu+1)/(2\sqrt{\nu\lambda})` (Eq. 30).

    ``log_prob(z)`` depends on ``z`` only through :math:`\|z\|`. It is the
    density of the residual :math:`\Delta r \in \mathbb{R}`; since
    :math:`\|z\| \ge 0`, as a density of the norm it is a subdensity (it puts
    mass :math:`P(\Delta r < -\|\mathrm{loc}\|)` on impossible norms).

    Sampling: :math:`\Delta r \sim \mathrm{scale}\cdot t_\nu`, and the sample is
    :math:`u\,(\|\mathrm{loc}\| + \Delta r)` with :math:`u` uniform on the
    sphere (the radial factor says nothing about direction, Eq. 20). Where
    :math:`\|\mathrm{loc}\| + \Delta r < 0` the draw passes through the origin.

    :param df: degrees of freedom :math:`\nu > 0` (``float('inf')`` allowed).
    :param loc: centre :math:`s`, shape ``(..., D)``; only its norm is used.
    :param scale: radial standard deviation :math:`\sqrt{\lambda} > 0`, one per
        batch element (default 1.0).
    """

    arg_constraints = {
        "df": constraints.positive,
        "loc": constraints.real_vector,
        "scale": constraints.positive,
    }
    support = constraints.real_vector
    has_rsample = True
    _reads_direction = False

    def __init__(
        self,
        df: float | torch.Tensor,
        loc: torch.Tensor,
        scale: float | torch.Tensor = 1.0,
        validate_args: bool | None = None,
    ):
        self.df, self.loc, self.scale, _, batch_shape = broadcast_params(
            type(self).__name__, loc, scale, df, vector_scale=False
        )
        super().__init__(batch_shape, self.loc.shape[-1:], validate_args=validate_args)
        if self._validate_args:
            self._validate_loc_and_scale(self.loc, self.scale)

    @staticmethod
    def infer_shapes(df=(), loc=(1,), scale=()):
        batch_shape = torch.Size(broadcast_shape(tuple(df), tuple(loc)[:-1], tuple(scale)))
        return batch_shape, torch.Size(tuple(loc)[-1:])

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        self._check_value(value)
        dtype = compute_dtype(value, self.loc, self.scale)
        return radial_log_prob(
            vector_norm(value.to(dtype)),
            self._loc_polar(dtype)[0],
            self.scale.to(dtype),
            self.df.to(dtype),
        )

    def rsample(self, sample_shape=torch.Size()) -> torch.Tensor:
        sample_shape = torch.Size(sample_shape)
        dtype = self._dtype
        residual = sample_residual(self.df.to(dtype), self.scale.to(dtype), sample_shape)
        shape = self._extended_shape(sample_shape)
        direction = normalize(torch.randn(shape, dtype=dtype, device=self.loc.device))
        radius = self._loc_norm + residual
        return (direction * radius.unsqueeze(-1)).to(self.loc.dtype)
