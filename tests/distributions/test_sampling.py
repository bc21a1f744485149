"""The samplers follow the generative process the likelihood describes.

References are independent: scipy's multivariate_t / t samplers and its CDFs.
(log_prob is not the density of these samplers — see test_normalization.py —
so Pyro's sample-vs-log_prob goodness-of-fit test does not apply.)
"""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from pyro_vje.distributions import DirectionalStudentT, PolarStudentT, RadialStudentT

N = 4000
P_MIN = 1e-3  # fixed seeds; a correct sampler fails this with probability 1e-3 per test


@pytest.mark.parametrize("df", [0.5, 3.0, math.inf])
def test_directions_match_projected_scipy_student_t(df):
    torch.manual_seed(0)
    loc = torch.tensor([3.0, -1.0, 0.5], dtype=torch.float64)
    scale = torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64)
    ours = DirectionalStudentT(df, loc, scale).sample((N,)).numpy()
    np.testing.assert_allclose(np.linalg.norm(ours, axis=-1), 1.0, rtol=1e-12)
    centre = (loc / loc.norm()).numpy()
    if math.isinf(df):
        ref = stats.multivariate_normal(centre, np.diag(scale.numpy() ** 2)).rvs(N, random_state=1)
    else:
        ref = stats.multivariate_t(centre, np.diag(scale.numpy() ** 2), df=df).rvs(N, random_state=1)
    ref = ref / np.linalg.norm(ref, axis=-1, keepdims=True)
    for k in range(3):  # each coordinate of the unit vector
        assert stats.ks_2samp(ours[:, k], ref[:, k]).pvalue > P_MIN


@pytest.mark.parametrize("df", [0.25, 2.0, 10.0, math.inf])
def test_radial_residual_is_student_t(df):
    torch.manual_seed(1)
    loc = torch.tensor([[100.0, 0.0, 0.0, 0.0]], dtype=torch.float64)  # ||loc|| >> residuals
    x = RadialStudentT(df, loc, 0.7).sample((N,))[:, 0]
    residual = (x.norm(dim=-1) - 100.0).numpy()
    if df == 0.25:  # heavy tail: compare only where the norm cannot have wrapped through 0
        residual = residual[np.abs(residual) < 100.0]
        cdf = stats.t(df, scale=0.7).cdf
        lo, hi = cdf(-100.0), cdf(100.0)
        truncated = lambda r: (cdf(r) - lo) / (hi - lo)  # noqa: E731
        assert stats.kstest(residual, truncated).pvalue > P_MIN
        return
    ref = stats.norm(scale=0.7) if math.isinf(df) else stats.t(df, scale=0.7)
    assert stats.kstest(residual, ref.cdf).pvalue > P_MIN


def test_radial_direction_is_uniform():
    torch.manual_seed(2)
    x = RadialStudentT(3.0, torch.tensor([50.0, 0.0, 0.0])).sample((N,)).double()
    u = x / x.norm(dim=-1, keepdim=True)
    # on S^2 each coordinate of a uniform direction is Uniform(-1, 1) (Archimedes)
    assert stats.kstest(u[:, 2].numpy(), stats.uniform(-1, 2).cdf).pvalue > P_MIN


def test_polar_sample_combines_direction_and_norm():
    torch.manual_seed(3)
    loc = torch.tensor([30.0, 40.0], dtype=torch.float64)  # ||loc|| = 50
    d = PolarStudentT(4.0, loc, torch.tensor([0.1, 0.3], dtype=torch.float64), radial_scale=2.0)
    x = d.sample((N,))
    residual = (x.norm(dim=-1) - 50.0).numpy()
    assert stats.kstest(residual, stats.t(4.0, scale=2.0).cdf).pvalue > P_MIN
    direction = (x / x.norm(dim=-1, keepdim=True)).numpy()
    ref = stats.multivariate_t([0.6, 0.8], np.diag([0.01, 0.09]), df=4.0).rvs(N, random_state=4)
    ref = ref / np.linalg.norm(ref, axis=-1, keepdims=True)
    assert stats.ks_2samp(direction[:, 0], ref[:, 0]).pvalue > P_MIN


@pytest.mark.parametrize("cls", [DirectionalStudentT, RadialStudentT, PolarStudentT])
def test_rsample_is_differentiable(cls):
    loc = torch.randn(5, 3, requires_grad=True)
    scale = (torch.rand(5, 3) + 0.2).requires_grad_()
    args = (2.0, loc, scale if cls is not RadialStudentT else scale[:, 0])
    x = cls(*args).rsample((4,))
    x.pow(2).sum().backward() if cls is RadialStudentT else (x[..., 0].sum()).backward()
    assert loc.grad is not None and torch.isfinite(loc.grad).all()
    assert scale.grad is not None and scale.grad.abs().sum() > 0


@pytest.mark.parametrize("cls", [DirectionalStudentT, RadialStudentT, PolarStudentT])
def test_heavy_tails_stay_finite(cls):
    torch.manual_seed(4)
    loc = torch.randn(1000, 8)
    scale = torch.rand(1000, 8) + 0.1 if cls is not RadialStudentT else 1.0
    x = cls(0.25, loc, scale).sample((10,))
    assert torch.isfinite(x).all()
