import pyro
import pytest
import torch
from pyro.nn import PyroModule
from torch import nn

from pyro_vje.networks import SmallCNN, build_encoder, small_cnn


def test_small_cnn_shapes_and_pyro_module():
    m = small_cnn(in_channels=3, channels=(8, 16, 32))
    assert isinstance(m, PyroModule) and isinstance(m, SmallCNN)
    assert m(torch.randn(5, 3, 32, 32)).shape == (5, 32)
    assert m(torch.randn(2, 3, 8, 8)).shape == (2, 32)


def test_final_relu_option():
    x = torch.randn(16, 1, 8, 8)
    assert (small_cnn(final_relu=True)(x) >= 0).all()
    assert (small_cnn(final_relu=False)(x) < 0).any()


def _pre_norm_small_cnn(in_channels, channels, final_relu):
    """SmallCNN's layers as they were before the ``norm`` option, for the bit-identity check."""
    layers = []
    width = in_channels
    for i, c in enumerate(channels):
        layers += [nn.Conv2d(width, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)]
        if i < len(channels) - 1 or final_relu:
            layers.append(nn.ReLU(inplace=True))
        if 0 < i < len(channels) - 1:
            layers.append(nn.MaxPool2d(2))
        width = c
    return nn.Sequential(*layers)


@pytest.mark.parametrize("final_relu", [False, True])
def test_default_norm_is_bit_identical(final_relu):
    pyro.set_rng_seed(3)
    ref = _pre_norm_small_cnn(3, (32, 64, 128), final_relu)
    pyro.set_rng_seed(3)
    m = small_cnn(in_channels=3, final_relu=final_relu)
    assert m.norm == "batch"
    ours, theirs = m.state_dict(), ref.state_dict()
    assert list(ours) == ["features." + k for k in theirs]
    assert all(torch.equal(ours["features." + k], v) for k, v in theirs.items())
    x = torch.randn(4, 3, 16, 16)
    assert torch.equal(m(x), ref(x).mean(dim=(-2, -1)))
    assert torch.equal(m.eval()(x), ref.eval()(x).mean(dim=(-2, -1)))


def test_norm_layers():
    group = SmallCNN(channels=(32, 64, 12), norm="group")
    norms = [layer for layer in group.features if isinstance(layer, nn.GroupNorm)]
    assert [(n.num_groups, n.num_channels) for n in norms] == [(8, 32), (8, 64), (4, 12)]
    assert all(c.bias is None for c in group.features if isinstance(c, nn.Conv2d))
    plain = SmallCNN(norm="none")
    assert not any(isinstance(layer, (nn.BatchNorm2d, nn.GroupNorm)) for layer in plain.features)
    assert all(c.bias is not None for c in plain.features if isinstance(c, nn.Conv2d))
    with pytest.raises(ValueError, match="unknown norm 'layer'; choose from"):
        small_cnn(norm="layer")


@pytest.mark.parametrize("norm", ["group", "none", "batch"])
def test_per_sample_independence_in_train_mode(norm):
    m = small_cnn(in_channels=1, channels=(8, 16, 32), norm=norm).train()
    x = torch.randn(6, 1, 8, 8)
    other = x.clone()
    other[1:] = torch.randn(5, 1, 8, 8)  # same first sample, different batch-mates
    first, first_elsewhere = m(x)[0], m(other)[0]
    independent = torch.allclose(first, first_elsewhere, atol=1e-6) and torch.allclose(
        m(x[:2]), m(x)[:2], atol=1e-6
    )
    assert independent == (norm != "batch")


def test_group_norm_with_projector_is_per_sample():
    """Section 5.2's reason for LayerNorm in the projector: no batch dependence anywhere."""
    m = build_encoder("small_cnn", in_channels=1, norm="group", projector=True, projector_dim=16).train()
    assert isinstance(m, PyroModule) and all(isinstance(sub, PyroModule) for sub in m.modules())
    x = torch.randn(4, 1, 8, 8)
    assert torch.allclose(m(x)[:1], m(x[:1]), atol=1e-6)
