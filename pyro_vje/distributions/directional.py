"""The directional factor of the VJE likelihood (paper Eq. 22-24)."""

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


def directional_residual(z_hat: torch.Tensor, loc_hat: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Eq. 22 on unit vectors: ``Q_dir = sum_d ((z_hat_d - loc_hat_d) / scale_d)^2``, the squared
    standardized residual of the direction (arguments broadcast and in the compute dtype)."""
    return ((z_hat - loc_hat) / scale).pow(2).sum(-1)


def directional_log_prob(
    z_hat: torch.Tensor, loc_hat: torch.Tensor, scale: torch.Tensor, df: torch.Tensor
) -> torch.Tensor:
    r"""Eq. 23 on unit vectors: ``log p_dir(z_hat | loc_hat, diag(scale^2))``.

    ``Q_dir = sum_d ((z_hat_d - loc_hat_d) / scale_d)^2`` (Eq. 22) and
    ``log p = log C_{df,D} - sum_d log scale_d - (df + D)/2 log(1 + Q_dir/df)``.
    All arguments must already be broadcast and in the compute dtype.
    """
    dim = z_hat.shape[-1]
    q_dir = directional_residual(z_hat, loc_hat, scale)  # Eq. 22
    return (
        student_t_log_normalizer(df, dim)  # log C_{nu,D}
        - scale.log().sum(-1)  # log |Sigma|^{-1/2}
        + student_t_log_kernel(q_dir, df, dim)  # Eq. 23's bracket
    )


def sample_direction(
    df: torch.Tensor, loc_hat: torch.Tensor, scale: torch.Tensor, shape: torch.Size
) -> torch.Tensor:
    """Unit vectors ``normalize(loc_hat + scale * eps * sqrt(df / W))`` of ``shape``
    (``loc_hat`` is the unit centre direction)."""
    sample_shape = shape[: len(shape) - loc_hat.dim()]
    eps = torch.randn(shape, dtype=loc_hat.dtype, device=loc_hat.device)
    weight = student_t_mixing_weight(df, sample_shape)
    x = loc_hat + scale * eps * weight.unsqueeze(-1)
    return normalize(x, vector_norm(x))


class DirectionalStudentT(EmbeddingDistribution):
    r"""Extrinsic Student-t on the direction of an embedding (paper Eq. 23).

    For a target embedding :math:`z \in \mathbb{R}^D`, centre ``loc`` and
    per-feature scale :math:`\sigma` (``scale``; the paper's
    :math:`\sigma^2` is ``scale**2``), with
    :math:`\hat z = z / \max(\|z\|, 10^{-6})` and
    :math:`\hat s = \mathrm{loc} / \max(\|\mathrm{loc}\|, 10^{-6})`:

    .. math::

        Q_{dir} = \sum_d \frac{(\hat z_d - \hat s_d)^2}{\sigma_d^2},\qquad
        \log p(z) = \log\Gamma\!\big(\tfrac{\nu+D}{2}\big) - \log\Gamma\!\big(\tfrac{\nu}{2}\big)
        - \tfrac{D}{2}\log(\nu\pi) - \sum_d \log\sigma_d
        - \tfrac{\nu+D}{2}\log\!\big(1 + Q_{dir}/\nu\big).

    This is the density in :math:`\mathbb{R}^D` of a multivariate Student-t
    with centre :math:`\hat s` and scale matrix :math:`\mathrm{diag}(\sigma^2)`,
    evaluated at the unit vector :math:`\hat z`: ``log_prob(z)`` depends on
    ``z`` only through its direction. ``df = inf`` gives the Gaussian limit
    :math:`-\tfrac{D}{2}\log 2\pi - \sum_d\log\sigma_d - Q_{dir}/2` (Eq. 11 with
    :math:`\lambda I` replaced by :math:`\mathrm{diag}(\sigma^2)`).

    .. warning:: **Not a normalized density of the direction.** The extrinsic
        density is normalized over :math:`\mathbb{R}^D`, not over the sphere
        :math:`S^{D-1}` on which :math:`\hat z` lives. Restricted to the sphere
        its integral depends on :math:`\sigma` and :math:`\nu`: it is below one
        for broad scales, which includes the regime VJE trains in
        (:math:`D = 512`, :math:`\sigma^2 \approx 0.3`; a *subdensity*, the
        "spherical subdensity model" of the revised paper), but it exceeds one
        for concentrated scales, roughly :math:`\sigma\sqrt{D} \lesssim 1`, in
        any dimension (for ``D = 2``, ``df = inf`` it tends to
        :math:`1/(\sqrt{2\pi}\,\sigma)` as :math:`\sigma \to 0`).
        ``log_prob`` is therefore *not* the density of :meth:`rsample`; see
        ``docs/theory.md``.

    Sampling follows the generative reading of the factor: a Student-t draw
    around the centre direction, projected back to the sphere,
    :math:`\hat s + \sigma \odot \epsilon\sqrt{\nu/W}` normalized, with
    :math:`\epsilon \sim N(0, I)` and :math:`W \sim \chi^2_\nu` (reparameterized).
    Samples are unit vectors.

    :param df: degrees of freedom :math:`\nu > 0`; ``float('inf')`` for the
        Gaussian limit. Shape broadcastable to the batch shape.
    :param loc: centre :math:`s` (only its direction is used), shape ``(..., D)``.
    :param scale: per-feature standard deviation :math:`\sigma > 0`, shape
        ``(..., D)`` or a scalar.
    """

    arg_constraints = {
        "df": constraints.positive,
        "loc": constraints.real_vector,
        "scale": constraints.independent(constraints.positive, 1),
    }
    support = constraints.real_vector
    has_rsample = True

    def __init__(
        self,
        df: float | torch.Tensor,
        loc: torch.Tensor,
        scale: float | torch.Tensor,
        validate_args: bool | None = None,
    ):
        self.df, self.loc, self.scale, _, batch_shape = broadcast_params(type(self).__name__, loc, scale, df)
        super().__init__(batch_shape, self.loc.shape[-1:], validate_args=validate_args)
        if self._validate_args:
            self._validate_loc_and_scale(self.loc, self.scale)

    @staticmethod
    def infer_shapes(df=(), loc=(1,), scale=()):
        scale = tuple(scale)[:-1] if len(scale) else ()
        batch_shape = torch.Size(broadcast_shape(tuple(df), tuple(loc)[:-1], scale))
        return batch_shape, torch.Size(tuple(loc)[-1:])

    @property
    def mode(self) -> torch.Tensor:
        """The centre direction ``loc / ||loc||``."""
        return normalize(self.loc)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        self._check_value(value)
        dtype = compute_dtype(value, self.loc, self.scale)
        return directional_log_prob(
            normalize(value.to(dtype)),
            self._loc_polar(dtype)[1],
            self.scale.to(dtype),
            self.df.to(dtype),
        )

    def rsample(self, sample_shape=torch.Size()) -> torch.Tensor:
        dtype = self._dtype
        return sample_direction(
            self.df.to(dtype),
            self._loc_direction,
            self.scale.to(dtype),
            self._extended_shape(sample_shape),
        ).to(self.loc.dtype)
