"""SimSiam's loss against a float64 numpy re-derivation, its collapse value, and the method's wiring."""

import numpy as np
import pytest
import torch
from torch import nn

from pyro_vje.methods import SimSiam, SimSiamOptions, negative_cosine, simsiam_loss


def _reference(p1, p2, z1, z2) -> float:
    def d(p, z):
        cos = (p * z).sum(1) / (np.linalg.norm(p, axis=1) * np.linalg.norm(z, axis=1))
        return -cos.mean()

    return 0.5 * d(p1, z2) + 0.5 * d(p2, z1)


def test_loss_matches_float64_reference():
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((9, 17)) for _ in range(4)]
    got = simsiam_loss(*(torch.from_numpy(a) for a in arrays))
    assert float(got) == pytest.approx(_reference(*arrays), rel=1e-12)


def test_collapse_identical_constant_outputs_give_minus_one():
    c = torch.randn(1, 32).expand(8, 32)
    assert float(simsiam_loss(c, c, c, c)) == pytest.approx(-1.0, abs=1e-6)
    assert float(simsiam_loss(c, c, -c, -c)) == pytest.approx(1.0, abs=1e-6)


def test_stop_gradient_on_the_target():
    p = torch.randn(5, 8, requires_grad=True)
    z = torch.randn(5, 8, requires_grad=True)
    negative_cosine(p, z).backward()
    assert z.grad is None and p.grad.abs().sum() > 0


def test_method_architecture_follows_the_cifar_recipe(encoder):
    m = SimSiam(encoder)
    linears = [mod for mod in m.projector if isinstance(mod, nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [(128, 2048), (2048, 2048)]
    assert isinstance(m.projector[-1], nn.BatchNorm1d) and not m.projector[-1].affine
    pred = [mod for mod in m.predictor if isinstance(mod, nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in pred] == [(2048, 512), (512, 2048)]


def test_training_loss_and_features(encoder, views):
    m = SimSiam(encoder, SimSiamOptions(proj_dim=64, pred_hidden=16))
    loss, terms = m.training_loss(*views)
    assert -1.0 <= float(loss.detach()) <= 1.0 and set(terms) == {"neg_cos", "z_std"}
    loss.backward()
    assert all(p.grad is not None for p in m.encoder.parameters())
    m.eval()
    assert m.features(views[0])["z"].shape == (12, 128)


def test_bad_input(encoder, views):
    with pytest.raises(ValueError, match="proj_dim"):
        SimSiam(encoder, SimSiamOptions(proj_dim=0))
    m = SimSiam(encoder, SimSiamOptions(proj_dim=32, pred_hidden=8))
    with pytest.raises(ValueError, match="same shape"):
        m.training_loss(views[0], views[1][:5])
    with pytest.raises(ValueError, match=r"\.dim"):
        SimSiam(nn.Linear(3, 3))
