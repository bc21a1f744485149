"""Numerical building blocks shared by the VJE likelihood factors.

Everything here is written once and reused by :mod:`.directional`,
:mod:`.radial` and :mod:`.polar` (and by :class:`.PolarStudentT`, which
evaluates both factors from one pass over the value):

* the eps floor of the paper's Appendix A (``normalize`` divides by
  ``max(||x||, 1e-6)``),
* the Student-t log-normalizer, accurate from ``df = 0.25`` to ``df = inf``,
* the Student-t log-kernel with its Gaussian limit (Eq. 11 / Eq. 13 as
  ``df -> inf``),
* the Student-t scale-mixture weight used by the samplers.
"""

from __future__ import annotations

import math
from numbers import Real

import torch

#: Appendix A: floor on the norm inside ``normalize``, "a small constant (e.g. 1e-6)"
#: (the inference network's variance floor is its own, ``networks.inference.MIN_VAR``).
NORM_EPS = 1e-6

# Above this value of df / 2 the log-normalizer is evaluated with the Stirling
# series below instead of the difference of two huge lgamma values.
_STIRLING_THRESHOLD = 1e4

_LOG_2PI = math.log(2 * math.pi)


def compute_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """The dtype log-densities are computed in: the widest input float type,
    and never narrower than float32 (bfloat16/float16 inputs are upcast)."""
    dtype = torch.float32
    for t in tensors:
        if t.is_floating_point():
            dtype = torch.promote_types(dtype, t.dtype)
    return dtype


def as_tensor(value, like: torch.Tensor) -> torch.Tensor:
    """``value`` as a floating tensor on ``like``'s device (keeps tensors as they are).

    Python numbers become tensors of ``like``'s dtype, but never narrower than
    float32: ``df = 1e6`` must not be rounded to bfloat16 (999424).
    """
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point():
            value = value.to(torch.get_default_dtype())
        return value
    if not isinstance(value, Real):
        raise TypeError(f"expected a number or a tensor, got {type(value).__name__}")
    dtype = compute_dtype(like)
    return torch.tensor(float(value), dtype=dtype, device=like.device)


def vector_norm(x: torch.Tensor) -> torch.Tensor:
    """Euclidean norm over the last (event) dimension."""
    return torch.linalg.vector_norm(x, dim=-1)


def normalize(x: torch.Tensor, norm: torch.Tensor | None = None) -> torch.Tensor:
    """``x / max(||x||, 1e-6)`` over the last dimension (Appendix A, "Stability")."""
    if norm is None:
        norm = vector_norm(x)
    return x / norm.clamp_min(NORM_EPS).unsqueeze(-1)


def _finite_df(df: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mask of finite df, df with infinite entries replaced by 1).

    The replacement keeps every branch of the ``torch.where`` below finite, so
    that neither values nor gradients pick up NaN from the unused branch.
    """
    finite = torch.isfinite(df)
    return finite, torch.where(finite, df, torch.ones_like(df))


def student_t_log_normalizer(df: torch.Tensor, dim: int) -> torch.Tensor:
    r"""``log C_{df,D} = lgamma((df+D)/2) - lgamma(df/2) - (D/2) log(df*pi)``.

    The log-normalizer of a ``D``-variate Student-t with identity scale
    (Eq. 13 without ``|Sigma|^{-1/2}``); ``-(D/2) log(2*pi)`` at ``df = inf``
    (Eq. 11). Written as ``A(df) - (D/2) log(2*pi)`` with
    ``A = lgamma(x + a) - lgamma(x) - a log x``, ``x = df/2``, ``a = D/2``,
    which tends to 0 as ``df -> inf``. ``A`` is computed in float64; for
    ``x > 1e4`` it uses the Stirling series

    ``A = (x + a - 1/2) log1p(a/x) - a + (1/(x+a) - 1/x)/12 - (1/(x+a)^3 - 1/x^3)/360``

    so that large finite ``df`` (1e6, 1e8, ...) does not lose every digit to
    the cancellation of two lgamma values of size ``df log df``.
    """
    if df.dim() and df.numel() > 1 and not any(df.stride()):
        # an expanded scalar (the usual case: one df for the whole batch)
        return student_t_log_normalizer(df[(0,) * df.dim()], dim).expand(df.shape)
    out_dtype = df.dtype
    df64 = df.to(torch.float64)
    finite, df_safe = _finite_df(df64)
    x = 0.5 * df_safe
    a = 0.5 * dim
    direct = torch.lgamma(x + a) - torch.lgamma(x) - a * torch.log(x)
    xs = torch.clamp(x, min=_STIRLING_THRESHOLD)  # only used where x is large
    stirling = (
        (xs + a - 0.5) * torch.log1p(a / xs)
        - a
        + (1.0 / (xs + a) - 1.0 / xs) / 12.0
        - (1.0 / (xs + a) ** 3 - 1.0 / xs**3) / 360.0
    )
    big = x > _STIRLING_THRESHOLD
    a_term = torch.where(big, stirling, direct)
    a_term = torch.where(finite, a_term, torch.zeros_like(a_term))
    return (a_term - 0.5 * dim * _LOG_2PI).to(out_dtype)


def student_t_log_kernel(maha: torch.Tensor, df: torch.Tensor, dim: int) -> torch.Tensor:
    r"""``-(df + D)/2 * log1p(maha / df)``; ``-maha / 2`` where ``df`` is infinite.

    ``maha`` is the squared Mahalanobis distance (``Q_dir`` of Eq. 22, or
    ``Delta r^2 / lambda`` of Eq. 28).
    """
    finite, df_safe = _finite_df(df)
    t_kernel = -0.5 * (df_safe + dim) * torch.log1p(maha / df_safe)
    return torch.where(finite, t_kernel, -0.5 * maha)


def student_t_mixing_weight(df: torch.Tensor, sample_shape: torch.Size) -> torch.Tensor:
    r"""``sqrt(df / W)`` with ``W ~ Chi2(df)``; exactly 1 where ``df`` is infinite.

    A Student-t draw is ``eps * sqrt(df / W)`` with ``eps ~ N(0, 1)``
    (shared across the coordinates of one multivariate draw). The chi-square
    draw is reparameterized (torch's Gamma has ``rsample``), and floored at the
    smallest positive float so that ``df = 0.25`` cannot produce ``inf``.
    """
    finite, df_safe = _finite_df(df)
    chi2 = torch.distributions.Chi2(df_safe).rsample(sample_shape)
    chi2 = chi2.clamp_min(torch.finfo(chi2.dtype).tiny)
    weight = torch.sqrt(df_safe / chi2)
    return torch.where(finite, weight, torch.ones_like(weight))
