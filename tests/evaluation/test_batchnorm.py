"""reestimate_batchnorm against BatchNorm statistics recomputed by hand in float64."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from pyro_vje.evaluation.batchnorm import batchnorm_layers, reestimate_batchnorm


def make_net():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 3, 3, bias=False), nn.BatchNorm2d(3), nn.ReLU(), nn.Conv2d(3, 2, 3), nn.BatchNorm2d(2)
    ).double()
    with torch.no_grad():  # non-trivial affine parameters and stale running statistics
        for m in batchnorm_layers(net):
            m.weight.uniform_(0.5, 2.0)
            m.bias.uniform_(-1.0, 1.0)
            m.running_mean.fill_(5.0)
            m.running_var.fill_(9.0)
    return net


def reference_stats(net, x):
    """Per-channel mean and unbiased variance of each BatchNorm input, the layers before it in
    training mode (batch statistics, biased variance, eps), written out with numpy."""
    conv1, bn1, _, conv2, _ = net
    w1, g1, b1 = (t.detach() for t in (conv1.weight, bn1.weight, bn1.bias))
    w2, c2 = conv2.weight.detach(), conv2.bias.detach()
    h1 = F.conv2d(x, w1).numpy()
    m1, v1 = h1.mean(axis=(0, 2, 3)), h1.var(axis=(0, 2, 3), ddof=1)
    n1 = (h1 - m1[None, :, None, None]) / np.sqrt(h1.var(axis=(0, 2, 3))[None, :, None, None] + bn1.eps)
    a1 = np.maximum(n1 * g1.numpy()[None, :, None, None] + b1.numpy()[None, :, None, None], 0)
    h2 = F.conv2d(torch.from_numpy(a1), w2, c2).numpy()
    return (m1, v1), (h2.mean(axis=(0, 2, 3)), h2.var(axis=(0, 2, 3), ddof=1))


def test_one_batch_gives_the_exact_statistics_of_every_layer():
    net = make_net()
    x = torch.randn(7, 1, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2 + 1
    weights = [p.clone() for p in net.parameters()]
    out = reestimate_batchnorm(net, x, batch_size=64)
    assert out is net and not net.training
    for bn, (mean, var) in zip(batchnorm_layers(net), reference_stats(net, x)):
        np.testing.assert_allclose(bn.running_mean.numpy(), mean, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(bn.running_var.numpy(), var, rtol=1e-10)
        assert bn.momentum == 0.1  # restored
    for before, after in zip(weights, net.parameters()):
        assert torch.equal(before, after)


def test_several_batches_average_the_batch_statistics():
    net = make_net()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(12, 1, 8, 8, generator=g, dtype=torch.float64)
    loader = DataLoader(TensorDataset(x, torch.zeros(12)), batch_size=4)
    reestimate_batchnorm(net, loader)
    parts = [reference_stats(make_net(), chunk) for chunk in x.split(4)]
    for i, bn in enumerate(batchnorm_layers(net)):
        np.testing.assert_allclose(bn.running_mean.numpy(), np.mean([p[i][0] for p in parts], 0), rtol=1e-10)
        np.testing.assert_allclose(bn.running_var.numpy(), np.mean([p[i][1] for p in parts], 0), rtol=1e-10)


def test_a_trailing_single_image_batch_is_skipped():
    net = make_net()
    x = torch.randn(5, 1, 8, 8, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    reestimate_batchnorm(net, x, batch_size=4)  # batches of 4 and 1: the single image is skipped
    for bn, (mean, _) in zip(batchnorm_layers(net), reference_stats(make_net(), x[:4])):
        np.testing.assert_allclose(bn.running_mean.numpy(), mean, rtol=1e-10)


def test_bad_inputs_raise():
    net = make_net()
    with pytest.raises(ValueError, match="batch_size"):
        reestimate_batchnorm(net, torch.zeros(4, 1, 8, 8, dtype=torch.float64), batch_size=1)
    with pytest.raises(ValueError, match="at least two"):
        reestimate_batchnorm(net, torch.zeros(1, 1, 8, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match="non-empty"):
        reestimate_batchnorm(net, torch.zeros(0, 1, 8, 8, dtype=torch.float64))
    with pytest.raises(TypeError, match="DataLoader"):
        reestimate_batchnorm(net, [torch.zeros(2, 1, 8, 8)])


def test_a_model_without_batchnorm_is_returned_in_eval_mode():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()).train()
    assert reestimate_batchnorm(net, torch.zeros(3, 1, 8, 8)) is net and not net.training
