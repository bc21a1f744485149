"""pyro_vje.reference (Algorithm 4 in torch) against a numpy float64 transcription."""

import math

import numpy as np
import pytest
import torch

from pyro_vje.reference import kld, nll_dir, nll_rad, vje_loss, vje_terms


def _np_alg4(z1, z2, mu1, var1, mu2, var2, eps1, eps2, df, beta):
    """Appendix A, Algorithms 1-4, line by line, in numpy."""

    def normalize(x):
        return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-6)

    def t_nll(q, d):
        return 0.5 * q if math.isinf(df) else 0.5 * (df + d) * np.log(1 + q / df)

    def nll_dir_np(z, s, var):
        d = z.shape[-1]
        q = np.sum((normalize(z) - normalize(s)) ** 2 / var, -1)
        return t_nll(q, d) + 0.5 * np.sum(np.log(var), -1)

    def nll_rad_np(z, s):
        dr = np.linalg.norm(z, axis=-1) - np.linalg.norm(s, axis=-1)
        return t_nll(dr**2, 1)

    def kld_np(mu, var):
        return 0.5 * np.sum(var + mu**2 - 1 - np.log(var), -1)

    s1 = mu1 + np.sqrt(var1) * eps1
    s2 = mu2 + np.sqrt(var2) * eps2
    l_dir = 0.5 * (nll_dir_np(z2, s1, var1) + nll_dir_np(z1, s2, var2))
    l_rad = 0.5 * (nll_rad_np(z2, s1) + nll_rad_np(z1, s2))
    l_kl = 0.5 * (kld_np(mu1, var1) + kld_np(mu2, var2))
    return np.mean(l_dir + l_rad + beta * l_kl)


def _batch(n=9, d=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = [torch.randn(n, d, generator=g, dtype=torch.float64) for _ in range(4)]
    v = [0.05 + torch.rand(n, d, generator=g, dtype=torch.float64) for _ in range(2)]
    e = [torch.randn(n, d, generator=g, dtype=torch.float64) for _ in range(2)]
    z1, z2, mu1, mu2 = t
    return z1, z2, mu1, v[0], mu2, v[1], e[0], e[1]


@pytest.mark.parametrize("df", [0.25, 3.0, math.inf])
@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 2.0])
def test_vje_loss_matches_numpy_transcription(df, beta):
    z1, z2, mu1, var1, mu2, var2, e1, e2 = _batch()
    got = vje_loss(z1, z2, mu1, var1, mu2, var2, df=df, beta=beta, noise=(e1, e2))
    ref = _np_alg4(*(t.numpy() for t in (z1, z2, mu1, var1, mu2, var2, e1, e2)), df, beta)
    assert float(got) == pytest.approx(ref, rel=1e-12)


def test_terms_add_up_and_targets_are_detached():
    z1, z2, mu1, var1, mu2, var2, e1, e2 = _batch()
    z1.requires_grad_(), z2.requires_grad_()
    terms = vje_terms(z1, z2, mu1, var1, mu2, var2, df=3.0, noise=(e1, e2))
    total = vje_loss(z1, z2, mu1, var1, mu2, var2, df=3.0, beta=1.5, noise=(e1, e2))
    torch.testing.assert_close(total, terms["dir"] + terms["rad"] + 1.5 * terms["kl"])
    assert not total.requires_grad  # z_j enters only detached; mu/var are constants here


def test_building_blocks_shapes():
    z1, z2, mu1, var1, *_ = _batch(n=5, d=3)
    assert nll_dir(z1, z2, var1, 3.0).shape == (5,)
    assert nll_rad(z1, z2, 3.0).shape == (5,)
    assert kld(mu1, var1).shape == (5,)
    assert float(kld(torch.zeros(2, 3), torch.ones(2, 3)).abs().max()) == 0.0
