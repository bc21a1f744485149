"""PowerSpherical against closed forms (De Cao & Aziz 2020) written here: scipy, quadrature, sampling."""

import math

import numpy as np
import pyro
import pytest
import torch
from pyro import poutine
from scipy import integrate, special, stats

from pyro_vje.distributions import PowerSpherical, log_sphere_area


def _unit(rng: np.random.Generator, *shape) -> np.ndarray:
    x = rng.standard_normal(shape)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _ps_logpdf(x: np.ndarray, mu: np.ndarray, kappa: float) -> float:
    """log C + kappa log1p(mu.x); 1/C = 2^(a+b) pi^b Gamma(a)/Gamma(a+b), a = (D-1)/2 + kappa, b = (D-1)/2."""
    d = mu.shape[-1]
    a, b = (d - 1) / 2 + kappa, (d - 1) / 2
    log_c = -((a + b) * np.log(2) + b * np.log(np.pi) + special.gammaln(a) - special.gammaln(a + b))
    return float(log_c + kappa * np.log1p(float(mu @ x)))


@pytest.mark.parametrize("dim", [2, 3, 5, 64])
def test_log_prob_float64_matches_closed_form(dim):
    rng = np.random.default_rng(dim)
    mu, x = _unit(rng, 6, dim), _unit(rng, 6, dim)
    kappa = np.array([0.0, 0.3, 1.0, 7.5, 50.0, 400.0])
    d = PowerSpherical(torch.from_numpy(mu), torch.from_numpy(kappa))
    got = d.log_prob(torch.from_numpy(x)).numpy()
    expected = [_ps_logpdf(x[i], mu[i], kappa[i]) for i in range(6)]
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


def test_uniform_at_zero_concentration():
    rng = np.random.default_rng(0)
    d = PowerSpherical(torch.from_numpy(_unit(rng, 5)), 0.0)
    area = 2 * np.pi ** (5 / 2) / special.gamma(5 / 2)
    got = d.log_prob(torch.from_numpy(_unit(rng, 4, 5)))
    np.testing.assert_allclose(got.numpy(), -np.log(area) * np.ones(4), rtol=1e-12)
    assert log_sphere_area(5) == pytest.approx(np.log(area), rel=1e-12)
    # the antipode of mu is density 0 for kappa > 0, and not NaN at kappa = 0
    mu = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    assert PowerSpherical(mu, 0.0).log_prob(-mu).isfinite()
    assert PowerSpherical(mu, 2.0).log_prob(-mu) == -math.inf


@pytest.mark.parametrize("kappa", [0.0, 0.5, 3.0, 40.0])
def test_normalization_d3_exact_integral(kappa):
    """On S^2: int (1 + mu.x)^k dx = 2 pi int_{-1}^{1} (1 + t)^k dt = 2 pi 2^(k+1) / (k+1)."""
    mu = torch.tensor([0.0, 0.6, 0.8], dtype=torch.float64)
    log_c = float(PowerSpherical(mu, kappa).log_normalizer())
    assert log_c == pytest.approx(-math.log(2 * math.pi * 2 ** (kappa + 1) / (kappa + 1)), rel=1e-12)


def test_normalization_d2_by_quadrature_on_the_circle():
    mu = torch.tensor([math.cos(0.7), math.sin(0.7)], dtype=torch.float64)
    d = PowerSpherical(mu, 4.0)

    def density(theta: float) -> float:
        x = torch.tensor([math.cos(theta), math.sin(theta)], dtype=torch.float64)
        return math.exp(float(d.log_prob(x)))

    total, _ = integrate.quad(density, 0.0, 2 * math.pi, limit=200)
    assert total == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize("dim", [4, 10])
def test_normalization_by_quadrature_over_the_cosine(dim):
    """int_{S^(D-1)} f(mu.x) dx = |S^(D-2)| int_{-1}^{1} f(t) (1 - t^2)^((D-3)/2) dt."""
    mu = torch.zeros(dim, dtype=torch.float64)
    mu[1] = 1.0
    kappa = 2.5
    d = PowerSpherical(mu, kappa)
    log_c = float(d.log_normalizer())
    area_sub = 2 * np.pi ** ((dim - 1) / 2) / special.gamma((dim - 1) / 2)
    total, _ = integrate.quad(
        lambda t: math.exp(log_c) * (1 + t) ** kappa * (1 - t * t) ** ((dim - 3) / 2), -1.0, 1.0
    )
    assert total * area_sub == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize(("dim", "kappa"), [(2, 1.0), (3, 5.0), (16, 10.0), (128, 60.0)])
def test_mean_resultant_length_matches_beta_marginal(dim, kappa):
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    mu = torch.from_numpy(_unit(rng, dim))
    n = 20000
    x = PowerSpherical(mu, kappa).sample((n,))
    torch.testing.assert_close(x.norm(dim=-1), torch.ones(n, dtype=torch.float64))
    t = (x @ mu).numpy()
    a, b = (dim - 1) / 2 + kappa, (dim - 1) / 2
    mean_t = (a - b) / (a + b)
    sd_t = 2 * math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    assert abs(t.mean() - mean_t) < 5 * sd_t / math.sqrt(n)
    # the whole cosine distribution: (1 + t) / 2 ~ Beta(a, b)
    assert stats.kstest((1 + t) / 2, stats.beta(a, b).cdf).pvalue > 1e-3
    # no mean component orthogonal to mu
    orth = x.mean(0) - (x.mean(0) @ mu) * mu
    assert float(orth.norm()) < 5 * math.sqrt(1 / n)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_householder_edge_cases_loc_at_plus_minus_e1(sign):
    loc = torch.zeros(5, dtype=torch.float64)
    loc[0] = sign
    x = PowerSpherical(loc, 30.0).sample((4000,))
    assert torch.isfinite(x).all()
    expected = 30.0 / (4 + 30.0)
    assert float((x @ loc).mean()) == pytest.approx(expected, abs=0.01)


def test_entropy_and_kl_to_uniform():
    torch.manual_seed(0)
    mu = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    kappa = 3.0
    d = PowerSpherical(mu, kappa)
    # quadrature on S^2: KL = int p log(p |S^2|) = 2 pi int_{-1}^{1} p(t) log(4 pi p(t)) dt
    log_c = float(d.log_normalizer())

    def integrand(t: float) -> float:
        log_p = log_c + kappa * math.log1p(t)
        return 2 * math.pi * math.exp(log_p) * (log_p + math.log(4 * math.pi))

    kl, _ = integrate.quad(integrand, -1.0, 1.0)
    assert float(d.kl_to_uniform()) == pytest.approx(kl, rel=1e-8)
    # Monte Carlo entropy
    x = d.sample((50000,))
    assert float(-d.log_prob(x).mean()) == pytest.approx(float(d.entropy()), abs=0.02)
    assert float(PowerSpherical(mu, 0.0).kl_to_uniform()) == pytest.approx(0.0, abs=1e-12)


def test_mean_property():
    mu = torch.tensor([0.6, 0.8])
    torch.testing.assert_close(PowerSpherical(mu, 3.0).mean, 3.0 / (1 + 3.0) * mu)


def test_rsample_is_differentiable_in_loc_and_concentration():
    raw = torch.randn(4, 6, requires_grad=True)
    log_kappa = torch.zeros(4, requires_grad=True)
    loc = raw / raw.norm(dim=-1, keepdim=True)
    target = torch.nn.functional.normalize(torch.randn(4, 6), dim=-1)
    x = PowerSpherical(loc, log_kappa.exp() * 5).rsample((8,))
    (x * target).sum().backward()
    assert torch.isfinite(raw.grad).all() and raw.grad.abs().sum() > 0
    assert torch.isfinite(log_kappa.grad).all() and log_kappa.grad.abs().sum() > 0


def test_gradient_of_mean_alignment_with_respect_to_kappa_has_the_closed_form_sign():
    """d/dk E[mu.x] = d/dk k/(D-1+k) > 0: the reparameterized gradient agrees in expectation."""
    torch.manual_seed(0)
    mu = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    kappa = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    (PowerSpherical(mu, kappa).rsample((40000,)) @ mu).mean().backward()
    expected = 3.0 / (3.0 + 2.0) ** 2
    assert float(kappa.grad) == pytest.approx(expected, rel=0.05)


@pytest.mark.parametrize("batch_shape", [(), (7,), (3, 5)])
@pytest.mark.parametrize("sample_shape", [(), (2,), (2, 3)])
def test_shapes(batch_shape, sample_shape):
    loc = torch.nn.functional.normalize(torch.randn(batch_shape + (4,)), dim=-1)
    d = PowerSpherical(loc, torch.rand(batch_shape) * 5)
    assert d.batch_shape == batch_shape and d.event_shape == (4,)
    x = d.rsample(sample_shape)
    assert x.shape == sample_shape + batch_shape + (4,)
    assert d.log_prob(x).shape == sample_shape + batch_shape
    assert d.entropy().shape == batch_shape


@pytest.mark.parametrize("new_shape", [(7,), (2, 7)])
def test_expand_and_infer_shapes(new_shape):
    loc = torch.nn.functional.normalize(torch.randn(7, 4), dim=-1)
    d = PowerSpherical(loc, torch.rand(7) * 5)
    e = d.expand(new_shape)
    assert type(e) is PowerSpherical and e.batch_shape == new_shape
    x = e.sample()
    torch.testing.assert_close(e.log_prob(x), d.log_prob(x))
    with pytest.raises((ValueError, RuntimeError)):
        d.expand((6,))
    assert PowerSpherical.infer_shapes(loc=(5, 4), concentration=(3, 1)) == ((3, 5), (4,))


def test_as_an_observed_site_in_a_plate():
    loc = torch.nn.functional.normalize(torch.randn(10, 3), dim=-1)
    z = torch.nn.functional.normalize(torch.randn(10, 3), dim=-1)

    def model():
        with pyro.plate("n", 10):
            pyro.sample("z", PowerSpherical(loc, 2.0), obs=z)

    tr = poutine.trace(model).get_trace()
    tr.compute_log_prob()
    torch.testing.assert_close(tr.nodes["z"]["log_prob"], PowerSpherical(loc, 2.0).log_prob(z))


def test_bad_input_raises_clear_errors():
    loc = torch.tensor([0.0, 1.0, 0.0])
    with pytest.raises(ValueError, match="concentration"):
        PowerSpherical(loc, -1.0, validate_args=True)
    with pytest.raises(ValueError, match="loc"):
        PowerSpherical(torch.tensor([0.0, 2.0, 0.0]), 1.0, validate_args=True)
    with pytest.raises(ValueError, match="D >= 2"):
        PowerSpherical(torch.tensor([1.0]), 1.0)
    with pytest.raises(ValueError, match="concentration"):
        PowerSpherical(loc, float("nan"), validate_args=True)
    d = PowerSpherical(loc, 1.0, validate_args=True)
    with pytest.raises(ValueError):
        d.log_prob(torch.tensor([0.0, 3.0, 0.0]))  # off the sphere
    with pytest.raises(ValueError, match="expected"):
        d.log_prob(torch.tensor([0.0, 1.0]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_low_precision_and_large_concentration(dtype):
    loc = torch.nn.functional.normalize(torch.randn(8, 32), dim=-1).to(dtype)
    d = PowerSpherical(loc, torch.full((8,), 1e4, dtype=dtype), validate_args=False)
    x = d.rsample((3,))
    assert x.dtype == dtype and torch.isfinite(x).all()
    lp = d.log_prob(torch.nn.functional.normalize(x.float(), dim=-1))
    assert lp.dtype == torch.float32 and torch.isfinite(lp).all()
