"""The optimizer's parameter groups, built in one place."""

import pytest
import torch
from torch import nn

from pyro_vje.training.optim import build_optimizer, parameter_groups


class Net(nn.Module):
    def __init__(self, exclude: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)  # weight decayed, bias not (when excluding)
        self.bn = nn.BatchNorm2d(2)  # neither decayed (when excluding)
        self.head = nn.Linear(2, 3)
        self.ln = nn.LayerNorm(3)
        self.frozen = nn.Parameter(torch.ones(2, 2), requires_grad=False)
        if exclude:
            self.exclude_norms_and_biases_from_weight_decay = True


def test_one_group_decays_every_trainable_parameter_in_order():
    net = Net()
    (group,) = parameter_groups(net, 1e-4)
    expected = [p for p in net.parameters() if p.requires_grad]
    assert group["weight_decay"] == 1e-4 and [id(p) for p in group["params"]] == [id(p) for p in expected]


def test_norms_and_biases_can_be_excluded_from_weight_decay():
    net = Net()
    decayed, plain = parameter_groups(net, 1e-4, exclude_norms_and_biases=True)
    assert {id(p) for p in decayed["params"]} == {id(net.conv.weight), id(net.head.weight)}
    no_decay = (net.conv.bias, net.bn.weight, net.bn.bias, net.head.bias, net.ln.weight, net.ln.bias)
    assert {id(p) for p in plain["params"]} == {id(p) for p in no_decay}
    assert (decayed["weight_decay"], plain["weight_decay"]) == (1e-4, 0.0)


@pytest.mark.parametrize("exclude", [False, True])
def test_build_optimizer_follows_the_methods_declaration(exclude):
    opt = build_optimizer(Net(exclude), lr=0.1, momentum=0.9, weight_decay=1e-3)
    assert isinstance(opt, torch.optim.SGD) and len(opt.param_groups) == (2 if exclude else 1)
    assert opt.param_groups[0]["momentum"] == 0.9 and opt.param_groups[0]["weight_decay"] == 1e-3
