"""GJE / GMJE: closed-form conditionals against the precision-matrix route, the Mahalanobis trace trap of
naive batch GJE, and the prototype mixture against scipy's multivariate normal."""

import numpy as np
import pytest
import torch
from scipy import special, stats

from pyro_vje.methods import (
    GJE,
    GJEOptions,
    PrototypeJointMixture,
    batch_gje_terms,
    gaussian_conditional,
    gmje_loss,
)


def _spd(rng, n):
    a = rng.standard_normal((n, n))
    return a @ a.T + n * np.eye(n)


def test_gaussian_conditional_matches_the_precision_matrix_form():
    """Independent route: with Lambda = Sigma^-1,
    p(t | c) = N(mu_t - Lambda_tt^-1 Lambda_tc (c - mu_c), Lambda_tt^-1)."""
    rng = np.random.default_rng(0)
    dc, dt = 3, 2
    mean, cov = rng.standard_normal(dc + dt), _spd(rng, dc + dt)
    zc = rng.standard_normal((4, dc))
    prec = np.linalg.inv(cov)
    lam_tt, lam_tc = prec[dc:, dc:], prec[dc:, :dc]
    ref_cov = np.linalg.inv(lam_tt)
    ref_mean = mean[dc:] - (zc - mean[:dc]) @ (ref_cov @ lam_tc).T
    got_mean, got_cov = gaussian_conditional(*(torch.from_numpy(a) for a in (mean, cov, zc)))
    np.testing.assert_allclose(got_mean.numpy(), ref_mean, rtol=1e-10)
    np.testing.assert_allclose(got_cov.numpy(), ref_cov, rtol=1e-10)


@pytest.mark.parametrize("scale", [0.01, 1.0, 50.0])
def test_mahalanobis_trace_trap_of_naive_batch_gje(scale):
    """With the batch's own covariance the mean Mahalanobis term is exactly 2d, whatever the embeddings,
    and carries no gradient: only log det S is left, which rewards shrinking the embeddings."""
    rng = np.random.default_rng(int(scale * 100))
    d, n = 3, 40
    zc = torch.from_numpy(rng.standard_normal((n, d)) * scale + 5).requires_grad_()
    zt = torch.from_numpy(rng.standard_normal((n, d)) ** 3).requires_grad_()
    terms = batch_gje_terms(zc, zt)
    assert float(terms["mahalanobis"].detach()) == pytest.approx(2 * d, rel=1e-10)
    terms["mahalanobis"].backward(retain_graph=True)
    assert float(zc.grad.abs().max()) < 1e-9 and float(zt.grad.abs().max()) < 1e-9
    # the whole NLL is then 0.5 log det S + const: shrinking the embeddings lowers it without bound
    y = np.concatenate([zc.detach().numpy(), zt.detach().numpy()], 1)
    ref = -stats.multivariate_normal(y.mean(0), np.cov(y, rowvar=False, bias=True)).logpdf(y).mean()
    assert float(terms["nll"].detach()) == pytest.approx(ref, rel=1e-10)
    shrunk = batch_gje_terms(0.5 * zc.detach(), 0.5 * zt.detach())
    assert float(shrunk["nll"]) == pytest.approx(float(terms["nll"].detach()) - 2 * d * np.log(2), rel=1e-10)


def test_batch_gje_needs_more_samples_than_dimensions():
    with pytest.raises(ValueError, match="singular"):
        batch_gje_terms(torch.randn(6, 3), torch.randn(6, 3))
    assert torch.isfinite(batch_gje_terms(torch.randn(6, 3), torch.randn(6, 3), jitter=1e-3)["nll"])


def _mixture_params(mix: PrototypeJointMixture):
    log_pi, loc, std, rho = (t.detach().double().numpy() for t in mix.params())
    return log_pi, loc, std, rho


def _full_component(loc_k, std_k, rho_k):
    """The 2d x 2d covariance of one component, in the (z_c; z_t) order."""
    d = loc_k.shape[-1]
    cov = np.zeros((2 * d, 2 * d))
    cov[:d, :d] = np.diag(std_k[0] ** 2)
    cov[d:, d:] = np.diag(std_k[1] ** 2)
    cross = np.diag(rho_k * std_k[0] * std_k[1])
    cov[:d, d:], cov[d:, :d] = cross, cross
    return np.concatenate([loc_k[0], loc_k[1]]), cov


@pytest.fixture
def mixture():
    torch.manual_seed(0)
    mix = PrototypeJointMixture(dim=3, num_prototypes=4, learn_weights=True).double()
    with torch.no_grad():  # move away from the symmetric initialization
        for p in mix.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return mix


def test_prototype_mixture_log_prob_matches_scipy(mixture):
    rng = np.random.default_rng(0)
    zc, zt = rng.standard_normal((5, 3)) * 0.5, rng.standard_normal((5, 3)) * 0.5
    log_pi, loc, std, rho = _mixture_params(mixture)
    comps = []
    for k in range(4):
        mean, cov = _full_component(loc[k], std[k], rho[k])
        comps.append(stats.multivariate_normal(mean, cov).logpdf(np.concatenate([zc, zt], 1)))
    comps = np.stack(comps, 1)
    got = mixture.component_log_prob(torch.from_numpy(zc), torch.from_numpy(zt)).detach().numpy()
    np.testing.assert_allclose(got, comps, rtol=1e-10)
    joint = mixture.log_prob(torch.from_numpy(zc), torch.from_numpy(zt)).detach().numpy()
    np.testing.assert_allclose(joint, special.logsumexp(comps + log_pi, axis=1), rtol=1e-10)


def test_prototype_conditionals_are_the_closed_form_ones(mixture):
    rng = np.random.default_rng(1)
    zc, zt = torch.from_numpy(rng.standard_normal((5, 3))), torch.from_numpy(rng.standard_normal((5, 3)))
    log_w, cond_mean, cond_std = mixture.conditional(zc)
    _, loc, std, rho = _mixture_params(mixture)
    for k in range(4):
        mean, cov = _full_component(loc[k], std[k], rho[k])
        ref_mean, ref_cov = gaussian_conditional(torch.from_numpy(mean), torch.from_numpy(cov), zc)
        np.testing.assert_allclose(cond_mean[:, k].detach().numpy(), ref_mean.numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(np.diag(ref_cov.numpy()), cond_std[k].detach().numpy() ** 2, rtol=1e-9)
    # log p(c, t) = log p(c) + log p(t | c)
    joint = mixture.log_prob(zc, zt)
    split = mixture.marginal_log_prob(zc) + mixture.conditional_log_prob(zt, zc)
    torch.testing.assert_close(joint, split)
    assert mixture.predict(zc).shape == (5, 3)


def test_prototype_variant_escapes_the_trap(mixture):
    """The prototype NLL depends on the embeddings and has non-zero gradients (unlike naive GJE's 2d)."""
    rng = np.random.default_rng(2)
    zc = torch.from_numpy(rng.standard_normal((16, 3)) * 0.4).requires_grad_()
    zt = torch.from_numpy(rng.standard_normal((16, 3)) * 0.4).requires_grad_()
    loss, _ = gmje_loss(zc, zt, mixture, balance_weight=0.0)
    loss.backward()
    assert float(zc.grad.abs().max()) > 1e-3 and float(zt.grad.abs().max()) > 1e-3
    other, _ = gmje_loss(2 * zc.detach(), zt.detach(), mixture, balance_weight=0.0)
    assert abs(float(other.detach()) - float(loss.detach())) > 1e-3


def test_balance_term_is_the_kl_of_mean_responsibilities():
    mix = PrototypeJointMixture(dim=2, num_prototypes=5).double()
    with torch.no_grad():
        mix.loc.zero_()
        mix.loc[0] = 5.0  # every embedding near prototype 0
    z = torch.full((8, 2), 5.0, dtype=torch.float64)
    _, terms = gmje_loss(z, z, mix)
    assert float(terms["balance"]) == pytest.approx(np.log(5), rel=1e-6)


@pytest.mark.parametrize("estimator", ["prototype", "batch"])
def test_method(encoder, views, estimator):
    m = GJE(encoder, GJEOptions(estimator=estimator, proj_hidden=32, out_dim=4, num_prototypes=3))
    loss, terms = m.training_loss(*views)
    assert torch.isfinite(loss)
    assert set(terms) == ({"nll", "balance"} if estimator == "prototype" else {"logdet", "mahalanobis"})
    loss.backward()
    assert all(p.grad is not None for p in m.encoder.parameters())


def test_bad_options():
    with pytest.raises(ValueError, match="estimator"):
        GJEOptions(estimator="gng").validate()
    with pytest.raises(ValueError, match="min_std"):
        GJEOptions(out_dim=64, min_std=0.2).validate()
