"""log_prob of the three likelihood factors against scipy in float64."""

import itertools
import math

import numpy as np
import pytest
import torch

from pyro_vje.distributions import DirectionalStudentT, PolarStudentT, RadialStudentT

from .reference import directional_logpdf, polar_logpdf, radial_logpdf

DIMS = [1, 2, 3, 16, 512]
DFS = [0.25, 1.0, 3.0, 30.0, 1e6, math.inf]
BATCH_SHAPES = [(), (7,), (3, 5)]


def _params(batch_shape, dim, seed=0):
    g = torch.Generator().manual_seed(seed)
    shape = batch_shape + (dim,)
    loc = torch.randn(shape, generator=g, dtype=torch.float64) * 2.0
    scale = 0.2 + 1.8 * torch.rand(shape, generator=g, dtype=torch.float64)
    radial_scale = 0.5 + torch.rand(batch_shape, generator=g, dtype=torch.float64)
    # values near loc's direction and far from it, with norms from 0.1 to ~10
    z = loc + torch.randn(shape, generator=g, dtype=torch.float64) * 0.5
    z = z * (0.1 + 3 * torch.rand(batch_shape + (1,), generator=g, dtype=torch.float64))
    return loc, scale, radial_scale, z


def _reference(kind, z, loc, scale, radial_scale, df):
    out = np.empty(z.shape[:-1])
    for idx in itertools.product(*(range(n) for n in z.shape[:-1])):
        zi, li, si = z[idx].numpy(), loc[idx].numpy(), scale[idx].numpy()
        ri = float(radial_scale[idx])
        if kind == "directional":
            out[idx] = directional_logpdf(zi, li, si, df)
        elif kind == "radial":
            out[idx] = radial_logpdf(zi, li, ri, df)
        else:
            out[idx] = polar_logpdf(zi, li, si, ri, df)
    return torch.from_numpy(out)


def _make(kind, df, loc, scale, radial_scale):
    if kind == "directional":
        return DirectionalStudentT(df, loc, scale)
    if kind == "radial":
        return RadialStudentT(df, loc, radial_scale)
    return PolarStudentT(df, loc, scale, radial_scale)


@pytest.mark.parametrize("kind", ["directional", "radial", "polar"])
@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("df", DFS)
def test_log_prob_matches_scipy(kind, dim, df):
    for batch_shape in BATCH_SHAPES:
        if dim == 512 and batch_shape == (3, 5):
            batch_shape = (2, 2)  # keep scipy's 512x512 factorizations few
        loc, scale, radial_scale, z = _params(batch_shape, dim, seed=dim)
        d = _make(kind, df, loc, scale, radial_scale)
        assert d.batch_shape == batch_shape and d.event_shape == (dim,)
        actual = d.log_prob(z)
        assert actual.shape == batch_shape and actual.dtype == torch.float64
        expected = _reference(kind, z, loc, scale, radial_scale, df)
        torch.testing.assert_close(actual, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("kind", ["directional", "radial", "polar"])
@pytest.mark.parametrize("df", [0.25, 3.0, math.inf])
def test_log_prob_broadcasts_like_torch(kind, df):
    """Parameters of different batch shapes and a value with sample dims broadcast together."""
    dim = 4
    g = torch.Generator().manual_seed(1)
    loc = torch.randn(3, 1, dim, generator=g, dtype=torch.float64)
    scale = 0.3 + torch.rand(5, dim, generator=g, dtype=torch.float64)
    df_t = torch.full((3, 5), df, dtype=torch.float64) if df != 3.0 else 3.0
    radial_scale = 0.5 + torch.rand(5, generator=g, dtype=torch.float64)
    d = _make(kind, df_t, loc, scale, radial_scale)
    assert d.batch_shape == (3, 5)
    z = torch.randn(2, 1, 1, dim, generator=g, dtype=torch.float64)  # sample shape (2,)
    actual = d.log_prob(z)
    assert actual.shape == (2, 3, 5)
    big = lambda t: t.expand(2, 3, 5, dim)  # noqa: E731
    expected = _reference(kind, big(z), big(loc), big(scale), radial_scale.expand(2, 3, 5), df)
    torch.testing.assert_close(actual, expected, rtol=1e-9, atol=1e-9)


def test_scalar_scale_broadcasts_over_features():
    loc = torch.randn(6, dtype=torch.float64)
    z = torch.randn(6, dtype=torch.float64)
    a = DirectionalStudentT(2.0, loc, 0.4).log_prob(z)
    b = DirectionalStudentT(2.0, loc, torch.full((6,), 0.4, dtype=torch.float64)).log_prob(z)
    torch.testing.assert_close(a, b)


def test_polar_is_product_of_its_factors():
    loc, scale, radial_scale, z = _params((4,), 8)
    d = PolarStudentT(1.5, loc, scale, radial_scale)
    log_dir, log_rad = d.log_prob_terms(z)
    torch.testing.assert_close(log_dir, d.directional.log_prob(z))
    torch.testing.assert_close(log_rad, d.radial.log_prob(z))
    torch.testing.assert_close(d.log_prob(z), log_dir + log_rad)


def test_direction_only_and_norm_only():
    """p_dir reads only z/||z||; p_rad reads only ||z||."""
    loc, scale, radial_scale, z = _params((5,), 6)
    d = PolarStudentT(3.0, loc, scale, radial_scale)
    torch.testing.assert_close(d.directional.log_prob(z), d.directional.log_prob(7.5 * z))
    q, _ = torch.linalg.qr(torch.randn(6, 6, dtype=torch.float64))
    torch.testing.assert_close(d.radial.log_prob(z), d.radial.log_prob(z @ q))


def test_directional_residual_is_eq22_and_broadcasts_like_log_prob():
    """PolarStudentT.directional_residual: sum_d ((z_hat - s_hat) / sigma)^2 in float64 numpy, over a
    batch of centres and a sample dimension, and it is what Eq. 23's kernel reads."""
    g = torch.Generator().manual_seed(0)
    loc = torch.randn(3, 5, generator=g, dtype=torch.float64)
    scale = 0.2 + torch.rand(3, 5, generator=g, dtype=torch.float64)
    value = torch.randn(4, 3, 5, generator=g, dtype=torch.float64)  # (sample, batch, D)
    dist = PolarStudentT(2.0, loc, scale)
    got = dist.directional_residual(value)
    assert got.shape == dist.log_prob(value).shape == (4, 3)
    v, m, s = value.numpy(), loc.numpy(), scale.numpy()
    vh = v / np.linalg.norm(v, axis=-1, keepdims=True)
    mh = m / np.linalg.norm(m, axis=-1, keepdims=True)
    np.testing.assert_allclose(got.numpy(), (((vh - mh) / s) ** 2).sum(-1), rtol=1e-12)
    # log p_dir = log C - sum log sigma - (df + D)/2 log(1 + Q/df): recover log C from it, input-free
    log_dir = dist.directional.log_prob(value).numpy()
    log_c = log_dir + np.log(s).sum(-1) + 0.5 * (2.0 + 5) * np.log1p(got.numpy() / 2.0)
    np.testing.assert_allclose(log_c, log_c.flat[0], rtol=0, atol=1e-10)
