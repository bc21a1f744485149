import pytest
import torch
from torch import nn

from pyro_vje.networks import InferenceNetwork


def test_architecture_is_section_5_1():
    net = InferenceNetwork(32, hidden=8)
    linears = [m for m in net.trunk if isinstance(m, nn.Linear)]
    norms = [m for m in net.trunk if isinstance(m, nn.LayerNorm)]
    assert [(m.in_features, m.out_features) for m in linears] == [(32, 8), (8, 8), (8, 8)]
    assert len(norms) == 3
    assert (net.loc_head.in_features, net.loc_head.out_features) == (8, 32)
    assert (net.var_head.in_features, net.var_head.out_features) == (8, 32)


def test_outputs_are_mean_and_floored_standard_deviation():
    torch.manual_seed(0)
    net = InferenceNetwork(16, hidden=8)
    z = torch.randn(5, 16)
    loc, scale = net(z)
    assert loc.shape == scale.shape == (5, 16)
    h = net.trunk(z)
    expected_var = torch.nn.functional.softplus(net.var_head(h)) + 1e-6  # Appendix A
    torch.testing.assert_close(scale**2, expected_var)
    torch.testing.assert_close(loc, net.loc_head(h))
    with torch.no_grad():  # push the softplus to 0: the floor keeps sigma^2 >= 1e-6
        net.var_head.bias.fill_(-200.0)
    _, scale = net(z)
    assert scale.detach().min().item() ** 2 >= 1e-6 * (1 - 1e-5)


def test_bfloat16_autocast_gives_float32_posteriors():
    net = InferenceNetwork(16, hidden=8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loc, scale = net(torch.randn(4, 16))
    assert loc.dtype == scale.dtype == torch.float32
    assert (scale > 0).all()


def test_float64_stays_float64():
    net = InferenceNetwork(4, hidden=3).double()
    loc, scale = net(torch.randn(2, 4, dtype=torch.float64))
    assert loc.dtype == scale.dtype == torch.float64


def test_bad_arguments():
    with pytest.raises(ValueError, match="activation"):
        InferenceNetwork(4, activation="tanhh")
    with pytest.raises(ValueError, match="min_var"):
        InferenceNetwork(4, min_var=0.0)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        InferenceNetwork(4)(torch.randn(3, 5))
