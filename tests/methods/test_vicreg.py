"""VICReg's loss against a float64 numpy re-derivation of Bardes et al. (2022), and its collapse value."""

import numpy as np
import pytest
import torch
from torch import nn

from pyro_vje.methods import VICReg, VICRegOptions, vicreg_loss


def _reference(z1, z2, lam=25.0, mu=25.0, nu=1.0, gamma=1.0, eps=1e-4):
    n, d = z1.shape
    inv = ((z1 - z2) ** 2).sum() / (n * d)

    def var(z):
        std = np.sqrt(z.var(axis=0, ddof=1) + eps)
        return np.maximum(0.0, gamma - std).mean()

    def cov(z):
        c = np.cov(z, rowvar=False)  # unbiased
        return (c**2).sum() - (np.diag(c) ** 2).sum()

    return lam * inv + mu * (var(z1) + var(z2)) / 2 + nu * (cov(z1) + cov(z2)) / d


def test_loss_matches_float64_reference():
    rng = np.random.default_rng(0)
    z1, z2 = rng.standard_normal((20, 6)) * 0.7, rng.standard_normal((20, 6)) * 1.3
    loss, terms = vicreg_loss(torch.from_numpy(z1), torch.from_numpy(z2))
    assert float(loss) == pytest.approx(_reference(z1, z2), rel=1e-12)
    weighted = 25 * terms["inv"] + 25 * terms["var"] + terms["cov"]
    assert float(weighted) == pytest.approx(float(loss), rel=1e-12)
    loss_w, _ = vicreg_loss(torch.from_numpy(z1), torch.from_numpy(z2), 2.0, 3.0, 0.5, 0.8, 1e-3)
    assert float(loss_w) == pytest.approx(_reference(z1, z2, 2.0, 3.0, 0.5, 0.8, 1e-3), rel=1e-12)


def test_collapse_value():
    """Constant identical embeddings: invariance 0, covariance 0, variance 25 * (gamma - sqrt(eps))."""
    c = torch.randn(1, 16, dtype=torch.float64).expand(10, 16)
    loss, terms = vicreg_loss(c, c)
    assert float(terms["inv"]) == 0.0 and float(terms["cov"]) == pytest.approx(0.0, abs=1e-20)
    assert float(loss) == pytest.approx(25 * (1.0 - 1e-2), rel=1e-12)


def test_bfloat16_is_computed_in_float32():
    z = torch.randn(32, 8).to(torch.bfloat16)
    loss, _ = vicreg_loss(z, z)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_method(encoder, views):
    m = VICReg(encoder, VICRegOptions(expander_dim=32))
    assert sum(isinstance(mod, nn.Linear) for mod in m.expander) == 3
    loss, terms = m.training_loss(*views)
    assert set(terms) == {"inv", "var", "cov"}
    loss.backward()
    assert all(p.grad is not None for p in m.encoder.parameters())


def test_bad_input():
    with pytest.raises(ValueError, match="at least 2"):
        vicreg_loss(torch.randn(1, 4), torch.randn(1, 4))
    with pytest.raises(ValueError, match=r"\(N, d\)"):
        vicreg_loss(torch.randn(4, 4), torch.randn(4, 5))
    with pytest.raises(ValueError, match="gamma"):
        VICRegOptions(gamma=0.0).validate()
    with pytest.raises(ValueError, match="var_weight"):
        VICRegOptions(var_weight=float("nan")).validate()
