import torch
from pyro.nn import PyroModule

from pyro_vje.networks import SmallCNN, small_cnn


def test_small_cnn_shapes_and_pyro_module():
    m = small_cnn(in_channels=3, channels=(8, 16, 32))
    assert isinstance(m, PyroModule) and isinstance(m, SmallCNN)
    assert m(torch.randn(5, 3, 32, 32)).shape == (5, 32)
    assert m(torch.randn(2, 3, 8, 8)).shape == (2, 32)


def test_final_relu_option():
    x = torch.randn(16, 1, 8, 8)
    assert (small_cnn(final_relu=True)(x) >= 0).all()
    assert (small_cnn(final_relu=False)(x) < 0).any()
