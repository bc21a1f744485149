"""pyro_vje.VJELoss against the paper's pseudocode (pyro_vje.reference, Algorithm 4)."""

import math

import pyro
import pytest
import torch
from scipy import stats

from pyro_vje import VJELoss
from pyro_vje.reference import vje_loss

N, D = 8, 16


def _inputs(dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    z1, z2, loc1, loc2 = (torch.randn(N, D, generator=g, dtype=dtype) for _ in range(4))
    scale1, scale2 = ((0.2 + torch.rand(N, D, generator=g, dtype=dtype)) for _ in range(2))
    return z1, z2, loc1, scale1, loc2, scale2


def _guide_noise(seed, dtype):
    """The standard-normal draws the guide makes for s1 then s2 after ``pyro.set_rng_seed(seed)``
    (torch's Normal.rsample: ``loc + scale * empty(shape).normal_()``)."""
    torch.manual_seed(seed)
    return tuple(torch.empty(N, D, dtype=dtype).normal_() for _ in range(2))


def _constants(df):
    """-(log C_dir + log C_rad): the normalizing constants Algorithm 4 omits, by scipy (float64)."""
    if math.isinf(df):
        return -(stats.multivariate_normal(mean=[0.0] * D).logpdf([0.0] * D) + stats.norm.logpdf(0.0))
    c_dir = stats.multivariate_t(loc=[0.0] * D, shape=1.0, df=df).logpdf([0.0] * D)
    return -(c_dir + stats.t.logpdf(0.0, df))


@pytest.mark.parametrize("df", [0.5, 3.0, math.inf])
@pytest.mark.parametrize("beta", [0.0, 1.0, 2.0])
def test_loss_is_algorithm_4_plus_the_normalizing_constants(df, beta):
    args = _inputs()
    pyro.set_rng_seed(3)
    loss = VJELoss(df=df, beta=beta)(*args)
    z1, z2, loc1, scale1, loc2, scale2 = args
    noise = _guide_noise(3, torch.float64)
    ref = vje_loss(z1, z2, loc1, scale1**2, loc2, scale2**2, df=df, beta=beta, noise=noise)
    assert loss.shape == ()
    assert float(loss) == pytest.approx(float(ref) + _constants(df), rel=1e-10)


def test_gradients_match_algorithm_4():
    """Constants aside, d loss / d (loc, scale) is Algorithm 4's; nothing flows into z1, z2."""
    z1, z2, loc1, scale1, loc2, scale2 = _inputs()
    leaves = [z1, z2, loc1, scale1, loc2, scale2]
    for t in leaves:
        t.requires_grad_()
    pyro.set_rng_seed(5)
    loss = VJELoss(df=3.0, beta=1.5)(*leaves)
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    noise = _guide_noise(5, torch.float64)
    ref = vje_loss(z1, z2, loc1, scale1**2, loc2, scale2**2, df=3.0, beta=1.5, noise=noise)
    ref_grads = torch.autograd.grad(ref, leaves[2:])
    assert all(g is None or float(g.abs().max()) == 0.0 for g in grads[:2])
    for g, r in zip(grads[2:], ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-9, atol=1e-12)


def test_float32_and_beta_reassignment():
    args = _inputs(dtype=torch.float32)
    criterion = VJELoss(df=3.0, beta=1.0)
    criterion.beta = 0.5
    pyro.set_rng_seed(7)
    loss = criterion(*args)
    assert loss.dtype == torch.float32
    z1, z2, loc1, scale1, loc2, scale2 = (a.double() for a in args)
    noise = tuple(e.double() for e in _guide_noise(7, torch.float32))
    ref = vje_loss(z1, z2, loc1, scale1**2, loc2, scale2**2, df=3.0, beta=0.5, noise=noise)
    assert float(loss) == pytest.approx(float(ref) + _constants(3.0), rel=1e-5)


def test_bad_input_is_named():
    z1, z2, loc1, scale1, loc2, scale2 = _inputs()
    with pytest.raises(ValueError, match="scale2"):
        VJELoss()(z1, z2, loc1, scale1, loc2, scale2[:, :3])
    with pytest.raises(ValueError, match="df"):
        VJELoss(df=0.0)
