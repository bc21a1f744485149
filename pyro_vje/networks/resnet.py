"""ResNet encoders f_theta (paper Section 5.1): torchvision's ResNets as ``PyroModule`` s.

The paper uses a ResNet-50 backbone on ImageNet-1K and a ResNet-18 on CIFAR-10/100
and STL-10; for 32x32 inputs the first convolution becomes a 3x3 stride-1 conv
and the initial max-pool is removed (Section 5.1). There is no projection head:
the embedding z is the globally average-pooled output of the last stage
(D = 512 for ResNet-18, 2048 for ResNet-50), so torchvision's ``fc`` is replaced
by ``nn.Identity``.

The modules are torchvision's own ``ResNet`` instances converted in place with
Pyro's ``to_pyro_module_``: parameter and buffer names (``state_dict`` keys) are
torchvision's, minus ``fc.weight`` / ``fc.bias``, so torchvision checkpoints load
into the backbone (docs/networks.md).
"""

from __future__ import annotations

from collections.abc import Callable

from pyro.nn import PyroModule
from pyro.nn.module import to_pyro_module_
from torch import nn
from torchvision import models
from torchvision.models import ResNet

__all__ = ["resnet18", "resnet50"]


def _stem_conv(in_channels: int, out_channels: int, cifar_stem: bool) -> nn.Conv2d:
    """The first convolution, initialized as torchvision initializes its convolutions."""
    if cifar_stem:  # Section 5.1: 3x3, stride 1, for 32x32 inputs
        conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=False)
    else:  # torchvision's ImageNet stem, with another number of input channels
        conv = nn.Conv2d(in_channels, out_channels, kernel_size=7, stride=2, padding=3, bias=False)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return conv


def _resnet(
    name: str,
    factory: Callable[..., ResNet],
    *,
    in_channels: int,
    cifar_stem: bool,
    zero_init_residual: bool,
) -> PyroModule:
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
        raise ValueError(f"{name}: in_channels must be a positive int, got {in_channels!r}")
    net = factory(weights=None, zero_init_residual=zero_init_residual)
    if cifar_stem or in_channels != 3:
        net.conv1 = _stem_conv(in_channels, net.bn1.num_features, cifar_stem)
    if cifar_stem:
        net.maxpool = nn.Identity()
    dim = net.fc.in_features
    net.fc = nn.Identity()  # no projection head: the pooled features are z
    to_pyro_module_(net)
    net.dim = dim
    return net


def resnet18(
    *, in_channels: int = 3, cifar_stem: bool = False, zero_init_residual: bool = False
) -> PyroModule:
    """ResNet-18 encoder, ``(N, C, H, W) -> (N, 512)``, as a ``PyroModule`` (paper Section 5.1).

    torchvision's ``resnet18(weights=None)`` with ``fc = nn.Identity()``, converted
    in place with ``pyro.nn.module.to_pyro_module_``; it is still an instance of
    ``torchvision.models.ResNet`` and every submodule is a ``PyroModule``.
    ``.dim`` is 512. The embedding is the average-pooled output of a ReLU, so it
    is non-negative.

    With ``cifar_stem=False`` and ``in_channels=3`` the module, its random
    initialization under a given seed and its ``state_dict`` (less ``fc``) are
    exactly torchvision's.

    :param in_channels: input channels (1 for grey-scale images); any value other
        than 3 replaces ``conv1`` by a freshly initialized convolution.
    :param cifar_stem: Section 5.1's stem for 32x32 inputs (CIFAR-10/100): ``conv1``
        becomes a 3x3 stride-1 convolution (padding 1, no bias) and the max-pool an
        ``nn.Identity``, so ``layer1`` sees the full 32x32 resolution.
    :param zero_init_residual: passed to torchvision: zero-initialize the last
        BatchNorm of each residual block, so each block starts as an identity.
    """
    return _resnet(
        "resnet18",
        models.resnet18,
        in_channels=in_channels,
        cifar_stem=cifar_stem,
        zero_init_residual=zero_init_residual,
    )


def resnet50(
    *, in_channels: int = 3, cifar_stem: bool = False, zero_init_residual: bool = False
) -> PyroModule:
    """ResNet-50 encoder, ``(N, C, H, W) -> (N, 2048)``, as a ``PyroModule`` (paper Section 5.1).

    The paper's ImageNet-1K backbone (Section 5.2). Same construction and options
    as :func:`resnet18`; ``.dim`` is 2048.
    """
    return _resnet(
        "resnet50",
        models.resnet50,
        in_channels=in_channels,
        cifar_stem=cifar_stem,
        zero_init_residual=zero_init_residual,
    )
