"""VSimSiam's loss (the VJE paper's Eq. 4 + KL to uniform) against float64 closed forms written with scipy."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import optimize, special

from pyro_vje.methods import VSimSiam, VSimSiamOptions, power_spherical_nll, vsimsiam_loss


def _log_c(kappa, d):
    a, b = (d - 1) / 2 + kappa, (d - 1) / 2
    return -((a + b) * np.log(2) + b * np.log(np.pi) + special.gammaln(a) - special.gammaln(a + b))


def _nll(mu, kappa, target):
    t = target / np.linalg.norm(target, axis=-1, keepdims=True)
    return -(_log_c(kappa, mu.shape[-1]) + kappa * np.log1p((mu * t).sum(-1)))


def _kl_uniform(kappa, d):
    a, b = (d - 1) / 2 + kappa, (d - 1) / 2
    entropy = -_log_c(kappa, d) - kappa * (np.log(2) + special.digamma(a) - special.digamma(a + b))
    log_area = np.log(2) + d / 2 * np.log(np.pi) - special.gammaln(d / 2)
    return log_area - entropy


def _unit(rng, n, d):
    x = rng.standard_normal((n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_loss_matches_float64_reference():
    rng = np.random.default_rng(0)
    n, d, w = 7, 16, 0.3
    mu1, mu2 = _unit(rng, n, d), _unit(rng, n, d)
    k1, k2 = rng.uniform(0.5, 40, n), rng.uniform(0.5, 40, n)
    z1, z2 = rng.standard_normal((n, d)) * 3, rng.standard_normal((n, d))
    t = [torch.from_numpy(a) for a in (mu1, k1, mu2, k2, z1, z2)]
    loss, terms = vsimsiam_loss(*t, kl_weight=w)
    align = 0.5 * (_nll(mu1, k1, z2) + _nll(mu2, k2, z1)).mean()
    kl = 0.5 * (_kl_uniform(k1, d) + _kl_uniform(k2, d)).mean()
    assert float(loss) == pytest.approx((align + w * kl) / d, rel=1e-10)
    assert float(terms["align"]) == pytest.approx(align / d, rel=1e-10)
    assert float(terms["kl"]) == pytest.approx(kl / d, rel=1e-10)


def test_perfectly_aligned_collapse_value():
    """mu = target direction: -log PS = -log C(kappa) - kappa log 2 (the density's maximum)."""
    d, kappa = 8, 5.0
    x = F.normalize(torch.randn(1, d, dtype=torch.float64), dim=-1).expand(4, d)
    nll = power_spherical_nll(x, torch.full((4,), kappa, dtype=torch.float64), 3.0 * x)
    np.testing.assert_allclose(nll.numpy(), -(_log_c(kappa, d) + kappa * np.log(2)) * np.ones(4), rtol=1e-12)


def test_target_is_detached():
    raw = torch.randn(3, 5, requires_grad=True)
    target = torch.randn(3, 5, requires_grad=True)
    power_spherical_nll(F.normalize(raw, dim=-1), torch.full((3,), 2.0), target).sum().backward()
    assert target.grad is None and raw.grad.abs().sum() > 0


@pytest.mark.parametrize("w", [0.0, 0.1, 0.5])
def test_optimal_concentration_matches_the_documented_asymptote(w):
    """kappa* ~ (1 - w)(D - 1) / (2 log(2 / (1 + cos))) (docs/methods.md), on the exact float64 loss."""
    d, cos = 2048, 0.9
    beta = (d - 1) / 2

    def loss(log_kappa):
        k = np.exp(log_kappa)
        return -(_log_c(k, d) + k * np.log1p(cos)) + w * _kl_uniform(k, d)

    res = optimize.minimize_scalar(loss, bounds=(0.0, 15.0), method="bounded", options={"xatol": 1e-8})
    predicted = (1 - w) * beta / np.log(2 / (1 + cos))
    assert np.exp(res.x) == pytest.approx(predicted, rel=0.1)


def test_method(encoder, views):
    m = VSimSiam(encoder, VSimSiamOptions(proj_dim=32, pred_hidden=8))
    loss, terms = m.training_loss(*views)
    assert set(terms) == {"align", "kl", "kappa"} and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in m.encoder.parameters())
    assert m.concentration_head.weight.grad.abs().sum() > 0
    m.eval()
    f = m.features(views[0])
    assert f["z"].shape == (12, 128) and f["mu"].shape == (12, 32) and f["kappa"].shape == (12,)
    torch.testing.assert_close(f["mu"].norm(dim=-1), torch.ones(12))
    assert bool((f["kappa"] > 0).all())


def test_kl_weight_of_one_or_more_is_refused():
    with pytest.raises(ValueError, match="kl_weight must be < 1"):
        VSimSiamOptions(kl_weight=1.0).validate()
    with pytest.raises(ValueError, match="kl_weight"):
        VSimSiamOptions(kl_weight=-0.1).validate()
