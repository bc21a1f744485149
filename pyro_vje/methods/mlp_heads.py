"""The MLP heads of the baselines: projectors, expanders and predictors (BatchNorm, as their papers).

Each builder returns a plain ``nn.Sequential`` mapping ``(N, in_dim)`` to ``(N, out_dim)``.
BatchNorm makes a sample's output depend on its batch in training mode, as in
SimSiam, VICReg and SimCLR; VJE's own heads use LayerNorm instead
(:mod:`pyro_vje.networks.projection_head`).
"""

from __future__ import annotations

from torch import nn

__all__ = ["check_positive_int", "mlp"]


def check_positive_int(owner: str, name: str, value) -> None:
    """``ValueError`` naming ``owner.name`` unless ``value`` is an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive int, got {value!r}")


def mlp(
    in_dim: int,
    hidden_dim: int,
    out_dim: int,
    layers: int,
    *,
    bias: bool = True,
    last_bn: bool = False,
    last_bn_affine: bool = True,
    last_bias: bool = True,
) -> nn.Sequential:
    """``layers`` linear layers; every one but the last is followed by ``BatchNorm1d -> ReLU``.

    * SimSiam projector (CIFAR): ``mlp(D, 2048, 2048, 2, bias=False, last_bn=True,
      last_bn_affine=False, last_bias=False)``;
    * SimSiam predictor: ``mlp(2048, 512, 2048, 2, bias=False)``;
    * VICReg expander: ``mlp(D, 2048, 2048, 3, last_bias=False)``.

    :param bias: bias in the hidden linear layers (redundant before a BatchNorm).
    :param last_bn: a ``BatchNorm1d`` after the last linear layer (no ReLU).
    :param last_bn_affine: whether that last BatchNorm has a learnable scale and shift.
    :param last_bias: bias in the last linear layer.
    """
    for name, value in (("in_dim", in_dim), ("hidden_dim", hidden_dim), ("out_dim", out_dim)):
        check_positive_int("mlp", name, value)
    check_positive_int("mlp", "layers", layers)
    modules: list[nn.Module] = []
    width = in_dim
    for _ in range(layers - 1):
        modules += [
            nn.Linear(width, hidden_dim, bias=bias),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
        ]
        width = hidden_dim
    modules.append(nn.Linear(width, out_dim, bias=last_bias))
    if last_bn:
        modules.append(nn.BatchNorm1d(out_dim, affine=last_bn_affine))
    return nn.Sequential(*modules)


def simsiam_projector(dim: int, width: int, layers: int) -> nn.Sequential:
    """SimSiam's projector (Chen & He 2021), shared by SimSiam and VSimSiam: ``layers`` linear
    layers of ``width`` without biases, BatchNorm after each, ReLU between, and a last
    BatchNorm without affine parameters."""
    return mlp(dim, width, width, layers, bias=False, last_bn=True, last_bn_affine=False, last_bias=False)
