"""Gaussian limit, large df, reduced precision, gradients and bounded influence."""

import math

import pytest
import torch
from scipy import special

from pyro_vje.distributions import DirectionalStudentT, PolarStudentT, RadialStudentT


def _setup(dtype=torch.float64, n=6, dim=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    loc = torch.randn(n, dim, generator=g).to(dtype)
    scale = (0.1 + torch.rand(n, dim, generator=g)).to(dtype)
    z = (torch.randn(n, dim, generator=g) + torch.randn(n, dim, generator=g)).to(dtype)
    return loc, scale, z


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_gaussian_limit_equals_df_1e8(dtype):
    loc, scale, z = _setup(dtype)
    at_inf = PolarStudentT(math.inf, loc, scale).log_prob(z)
    at_1e8 = PolarStudentT(1e8, loc, scale).log_prob(z)
    assert torch.isfinite(at_inf).all()
    rtol = 1e-6 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(at_inf, at_1e8, rtol=rtol, atol=rtol)


def test_gaussian_limit_closed_form():
    """df = inf is N(loc_hat, diag(scale^2)) on directions and N(0, 1) on the residual."""
    loc, scale, z = _setup()
    z_hat = z / z.norm(dim=-1, keepdim=True)
    l_hat = loc / loc.norm(dim=-1, keepdim=True)
    normal_dir = torch.distributions.Normal(l_hat, scale).log_prob(z_hat).sum(-1)
    normal_rad = torch.distributions.Normal(0.0, 1.0).log_prob(z.norm(dim=-1) - loc.norm(dim=-1))
    torch.testing.assert_close(PolarStudentT(float("inf"), loc, scale).log_prob(z), normal_dir + normal_rad)


def test_log_normalizer_continuous_across_stirling_switch():
    """The normalizer is accurate on both sides of the Stirling-series switch (df/2 = 1e4)."""
    dim = 512
    for df in [1.9e4, 1.99999e4, 2.00001e4, 2.1e4, 1e6, 1e8, 1e12]:
        z = torch.tensor([[1.0] + [0.0] * (dim - 1)], dtype=torch.float64)
        d = DirectionalStudentT(df, z, torch.ones(dim, dtype=torch.float64))
        expected = (
            special.gammaln((df + dim) / 2) - special.gammaln(df / 2) - dim / 2 * math.log(df * math.pi)
        )
        # at z == loc the kernel is 0, so log_prob is the normalizer; mpmath-free reference:
        # scipy's float64 gammaln loses ~|gammaln| * 1e-16 absolute, which bounds the tolerance
        tol = 1e-9 + abs(special.gammaln(df / 2)) * 4e-16
        assert abs(float(d.log_prob(z)) - expected) < tol, df


@pytest.mark.parametrize("df", [0.25, 3.0, math.inf])
def test_float32_matches_float64(df):
    loc, scale, z = _setup(torch.float64)
    ref = PolarStudentT(df, loc, scale).log_prob(z)
    got = PolarStudentT(df, loc.float(), scale.float()).log_prob(z.float())
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), ref, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("df", [0.25, 3.0, math.inf])
def test_bfloat16_inputs_are_computed_in_float32(df):
    """bf16 parameters and values: log_prob is float32 and equals the float64 result on the
    bf16-rounded inputs (no further bf16 rounding inside)."""
    loc, scale, z = (t.to(torch.bfloat16) for t in _setup(torch.float64))
    got = PolarStudentT(df, loc, scale).log_prob(z)
    assert got.dtype == torch.float32 and torch.isfinite(got).all()
    ref = PolarStudentT(df, loc.double(), scale.double()).log_prob(z.double())
    torch.testing.assert_close(got.double(), ref, rtol=1e-5, atol=1e-3)
    sample = PolarStudentT(df, loc, scale).rsample((3,))
    assert sample.dtype == torch.bfloat16 and torch.isfinite(sample).all()


@pytest.mark.parametrize("df", [0.25, 3.0, 1e8, math.inf])
def test_gradients_are_finite(df):
    loc, scale, z = _setup(torch.float32)
    loc.requires_grad_(), scale.requires_grad_()
    df_t = torch.tensor(df, requires_grad=True)
    PolarStudentT(df_t, loc, scale).log_prob(z).sum().backward()
    assert torch.isfinite(loc.grad).all() and torch.isfinite(scale.grad).all()
    assert torch.isfinite(df_t.grad)
    if math.isinf(df):
        assert df_t.grad == 0


def test_df_gradient_matches_finite_difference():
    loc, scale, z = _setup()
    df = torch.tensor(2.5, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(PolarStudentT(df, loc, scale).log_prob(z).sum(), df)
    h = 1e-6
    lp = lambda v: PolarStudentT(v, loc, scale).log_prob(z).sum()  # noqa: E731
    fd = (lp(2.5 + h) - lp(2.5 - h)) / (2 * h)
    torch.testing.assert_close(grad, fd, rtol=1e-6, atol=1e-6)


def test_near_zero_vectors_use_the_eps_floor():
    """Appendix A: normalize divides by max(||z||, 1e-6); a tiny value stays finite."""
    loc = torch.tensor([[1.0, 0.0, 0.0]])
    tiny = torch.tensor([[1e-9, 0.0, 0.0]])
    lp = DirectionalStudentT(3.0, loc, 0.5, validate_args=False).log_prob(tiny)
    z_hat = tiny / 1e-6  # = (1e-3, 0, 0)
    q = ((z_hat - loc) / 0.5).pow(2).sum()
    ref = (
        special.gammaln(3.0)
        - special.gammaln(1.5)
        - 1.5 * math.log(3 * math.pi)
        - 3 * math.log(0.5)
        - 3.0 * math.log1p(float(q) / 3.0)
    )
    assert torch.isfinite(lp).all()
    assert abs(float(lp) - ref) < 1e-4


@pytest.mark.parametrize("df", [0.25, 0.5, 1.0, 3.0, 10.0, 100.0])
@pytest.mark.parametrize("radial_scale", [1.0, 0.5])
def test_radial_influence_is_bounded(df, radial_scale):
    """Eq. 30: |d(-log p_rad)/d Delta r| <= (df+1) / (2 sqrt(df lambda)), attained at sqrt(df lambda)."""
    lam = radial_scale**2
    bound = (df + 1) / (2 * math.sqrt(df * lam))
    loc = torch.tensor([[50.0, 0.0]], dtype=torch.float64)
    delta_r = torch.linspace(-40, 40, 8001, dtype=torch.float64)
    delta_r = torch.cat([delta_r, torch.tensor([math.sqrt(df * lam)], dtype=torch.float64)])
    z = torch.stack([50.0 + delta_r, torch.zeros_like(delta_r)], -1).requires_grad_()
    nll = -RadialStudentT(df, loc, radial_scale).log_prob(z)
    (grad,) = torch.autograd.grad(nll.sum(), z)
    influence = grad[:, 0].abs()  # d||z||/dz_0 = 1 on this ray
    assert (influence <= bound * (1 + 1e-12)).all()
    torch.testing.assert_close(influence[-1], torch.tensor(bound, dtype=torch.float64))


def test_python_number_arguments_are_not_rounded_to_bfloat16():
    loc = torch.randn(3, 5).to(torch.bfloat16)
    d = PolarStudentT(1e6, loc, 0.3, radial_scale=0.3)
    assert float(d.df[0]) == 1e6 and d.df.dtype == torch.float32
    assert float(d.radial_scale[0]) == pytest.approx(0.3, rel=1e-7)


def test_log_normalizer_of_an_expanded_scalar_df_keeps_shape_and_gradient():
    from pyro_vje.distributions._math import student_t_log_normalizer

    df = torch.tensor(2.5, dtype=torch.float64, requires_grad=True)
    expanded = student_t_log_normalizer(df.expand(4, 3), 7)
    dense = student_t_log_normalizer(torch.full((4, 3), 2.5, dtype=torch.float64), 7)
    assert expanded.shape == (4, 3)
    torch.testing.assert_close(expanded, dense)
    (grad,) = torch.autograd.grad(expanded.sum(), df)
    assert float(grad) == pytest.approx(
        12 * float(special.digamma(4.75) - special.digamma(1.25) - 7 / 2.5) / 2
    )
