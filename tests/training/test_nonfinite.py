"""Where a NaN or inf first appears in a training step (tensor checks, not error text)."""

import torch
from torch import nn

from pyro_vje.training.nonfinite import first_non_finite, is_finite


class Two(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = nn.Linear(2, 2)
        self.second = nn.Linear(2, 1)

    def forward(self, x):
        h = self.first(x)
        if not torch.isfinite(h).all():
            raise ValueError("rejected")  # as Pyro's validation does
        return self.second(h)


def test_is_finite_walks_nests_and_ignores_integers():
    assert is_finite({"a": torch.ones(2), "b": [torch.zeros(1), torch.arange(3)]})
    assert not is_finite((torch.ones(1), {"c": torch.tensor([float("inf")])}))


def test_finds_a_parameter_an_input_or_the_first_bad_output():
    net, x = Two(), torch.ones(3, 2)
    assert first_non_finite(net, {"x": x}, lambda: net(x)) is None
    big = torch.full((3, 2), 3e38)
    with torch.no_grad():
        net.first.weight.fill_(10.0)  # 2 * 10 * 3e38 overflows float32 in the first layer
    assert first_non_finite(net, {"x": big}, lambda: net(big)) == "output of first"
    nan_x = torch.tensor([[float("nan"), 0.0]])
    assert first_non_finite(net, {"x": nan_x}, lambda: net(nan_x)) == "input x"
    with torch.no_grad():
        net.first.weight.fill_(0.5)
        net.second.bias.fill_(float("nan"))
    assert first_non_finite(net, {"x": x}, lambda: net(x)) == "parameter second.bias"
