"""VCL: NT-Xent against a numpy loop, and the KL bounds against a Monte-Carlo estimate of the true KL."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, special

from pyro_vje.methods import VCL, VCLOptions, gaussian_kl_to_standard, nt_xent, projected_normal_kl_bound


def _nt_xent_reference(a, b, tau):
    u = np.concatenate([a, b])
    u = u / np.linalg.norm(u, axis=1, keepdims=True)
    n2 = len(u)
    n = n2 // 2
    total = 0.0
    for i in range(n2):
        pos = i + n if i < n else i - n
        logits = [u[i] @ u[k] / tau for k in range(n2) if k != i]
        total += -(u[i] @ u[pos] / tau) + special.logsumexp(logits)
    return total / n2


def test_nt_xent_matches_reference():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((6, 5)), rng.standard_normal((6, 5))
    got = nt_xent(torch.from_numpy(a), torch.from_numpy(b), 0.3)
    assert float(got) == pytest.approx(_nt_xent_reference(a, b, 0.3), rel=1e-12)


def test_nt_xent_collapse_value():
    """All embeddings equal: every logit is 1/tau, the loss is log(2N - 1)."""
    c = torch.randn(1, 8, dtype=torch.float64).expand(5, 8)
    assert float(nt_xent(c, c, 0.5)) == pytest.approx(math.log(9), rel=1e-12)


def test_kl_bounds_closed_forms_and_properties():
    rng = np.random.default_rng(1)
    m, s = rng.standard_normal((4, 7)), rng.uniform(0.2, 2.0, (4, 7))
    mt, st = torch.from_numpy(m), torch.from_numpy(s)
    standard = 0.5 * (s**2 + m**2 - 1 - np.log(s**2)).sum(1)
    scale_free = 0.5 * (7 * np.log((m**2 + s**2).mean(1)) - np.log(s**2).sum(1))
    np.testing.assert_allclose(gaussian_kl_to_standard(mt, st).numpy(), standard, rtol=1e-12)
    np.testing.assert_allclose(projected_normal_kl_bound(mt, st).numpy(), scale_free, rtol=1e-12)
    assert bool((projected_normal_kl_bound(mt, st) <= projected_normal_kl_bound(mt, st, "standard")).all())
    # invariant to rescaling, like the projected normal itself; zero where it is uniform
    torch.testing.assert_close(projected_normal_kl_bound(3 * mt, 3 * st), projected_normal_kl_bound(mt, st))
    zero = projected_normal_kl_bound(torch.zeros(1, 7, dtype=torch.float64), torch.full((1, 7), 0.3).double())
    assert float(zero) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="unknown bound"):
        projected_normal_kl_bound(mt, st, "tight")


def _projected_normal_log_density(u, m, s):
    """log int_0^inf r^(D-1) N(r u; m, diag(s^2)) dr by quadrature (w.r.t. the surface measure)."""
    d = len(m)
    a = (u**2 / s**2).sum()
    b = (u * m / s**2).sum()
    c = (m**2 / s**2).sum()
    log_norm = -0.5 * d * np.log(2 * np.pi) - np.log(s).sum()
    r_star = (b + np.sqrt(b * b + 4 * a * (d - 1))) / (2 * a)  # mode of the integrand
    shift = (d - 1) * np.log(r_star) - 0.5 * (a * r_star**2 - 2 * b * r_star + c)
    val, _ = integrate.quad(
        lambda r: np.exp((d - 1) * np.log(r) - 0.5 * (a * r * r - 2 * b * r + c) - shift) if r > 0 else 0.0,
        0.0,
        np.inf,
    )
    return log_norm + shift + np.log(val)


@pytest.mark.parametrize(
    ("m", "s"),
    [
        ([1.0, 0.5, 0.0], [0.5, 1.0, 2.0]),
        ([0.2, -0.1, 0.3], [1.0, 1.0, 1.0]),
        ([2.0, 0.0], [0.3, 0.6]),
    ],
)
def test_bounds_dominate_a_monte_carlo_kl(m, s):
    """KL(PN(q) || U) <= min_c KL(q || N(0, c^2 I)) <= KL(q || N(0, I)) (data processing)."""
    m, s = np.array(m), np.array(s)
    d = len(m)
    rng = np.random.default_rng(0)
    x = m + s * rng.standard_normal((3000, d))
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    log_area = np.log(2) + d / 2 * np.log(np.pi) - special.gammaln(d / 2)
    log_p = np.array([_projected_normal_log_density(ui, m, s) for ui in u])
    kl_samples = log_p + log_area
    kl_mc, se = kl_samples.mean(), kl_samples.std() / np.sqrt(len(u))
    assert kl_mc > -3 * se  # a KL: non-negative up to Monte-Carlo error
    mt, st = torch.from_numpy(m)[None], torch.from_numpy(s)[None]
    scale_free = float(projected_normal_kl_bound(mt, st))
    standard = float(projected_normal_kl_bound(mt, st, "standard"))
    assert kl_mc - 3 * se <= scale_free <= standard + 1e-12


def test_method(encoder, views):
    m = VCL(encoder, VCLOptions(proj_hidden=32, out_dim=16))
    loss, terms = m.training_loss(*views)
    assert set(terms) == {"nce", "kl", "var"} and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in m.encoder.parameters())
    assert m.var_head.weight.grad.abs().sum() > 0
    m.eval()
    f = m.features(views[0])
    assert f["mu"].shape == (12, 16) and bool((f["scale"] > 0).all())


def test_bad_input():
    with pytest.raises(ValueError, match="temperature"):
        nt_xent(torch.randn(3, 4), torch.randn(3, 4), 0.0)
    with pytest.raises(ValueError, match="kl_bound"):
        VCLOptions(kl_bound="exact").validate()
    with pytest.raises(ValueError, match="out_dim"):
        VCLOptions(out_dim=1).validate()


def test_vcl_variance_floor_default_is_the_networks_floor():
    """options.py holds VCL's options without importing torch; its default floor must stay
    the inference network's (Appendix A's 1e-6)."""
    from pyro_vje.methods import VCLOptions
    from pyro_vje.networks import MIN_VAR

    assert VCLOptions().min_var == MIN_VAR
