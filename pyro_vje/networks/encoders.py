"""Encoders f_theta (paper Section 3): images to embeddings z in R^D.

:class:`SmallCNN` is the CPU / digits encoder; :func:`~pyro_vje.networks.resnet18`
and :func:`~pyro_vje.networks.resnet50` are the paper's backbones (Section 5.1);
:func:`build_encoder` builds any of them by name, optionally with the Section
5.2 projection head.
"""

from __future__ import annotations

import math

import torch
from pyro.nn import PyroModule
from pyro.nn.module import to_pyro_module_
from torch import nn

from .projection_head import with_projector
from .resnet import resnet18, resnet50

__all__ = ["ENCODERS", "NORMS", "SmallCNN", "build_encoder", "small_cnn"]

ENCODERS: tuple[str, ...] = ("small_cnn", "resnet18", "resnet50")
"""Architecture names accepted by :func:`build_encoder`."""

NORMS: tuple[str, ...] = ("batch", "group", "none")
"""Normalizations accepted by :class:`SmallCNN` (``"batch"`` is the default)."""

_DEFAULT_PROJECTOR_DIM = 2048


def _group_count(channels: int) -> int:
    """GroupNorm groups for ``channels``: 8 when 8 divides it (all default widths), else gcd(channels, 8)."""
    return math.gcd(channels, 8)


def _norm_layer(norm: str, channels: int) -> list[nn.Module]:
    if norm == "batch":
        return [nn.BatchNorm2d(channels)]
    if norm == "group":
        return [nn.GroupNorm(_group_count(channels), channels)]
    return []


class SmallCNN(nn.Module):
    """A small CNN for CPU work and the embedded digits default.

    ``len(channels)`` blocks of ``3x3 conv -> norm -> ReLU``; a 2x2
    max-pool after every block but the first and the last, then global
    average pooling. No projection head: the output is the embedding z, of
    dimension ``channels[-1]`` (paper Section 3). By default the last block
    has no ReLU, so embeddings are signed rather than confined to the positive
    orthant; on digits this kept the posterior means from collapsing to one
    direction (docs/results.md).

    ``norm`` picks the normalization after each convolution:

    * ``"batch"`` (default): ``BatchNorm2d``, convolution without bias. Its
      training-mode output for one sample depends on the rest of the batch.
    * ``"group"``: ``GroupNorm`` with ``gcd(c, 8)`` groups for ``c`` channels,
      i.e. 8 groups for the default widths (4, 8 and 16 channels per group),
      convolution without bias (GroupNorm has an affine bias).
    * ``"none"``: no normalization; the convolution has a bias.

    ``"group"`` and ``"none"`` make every layer per-sample independent, in
    training mode too: a sample's embedding does not depend on which other
    samples share its batch, so e.g. a batch split across processes gives the
    same embeddings as the whole batch on one.

    :param in_channels: input channels.
    :param channels: output channels of each block; ``channels[-1]`` is D.
    :param final_relu: apply the ReLU after the last block too.
    :param norm: ``"batch"``, ``"group"`` or ``"none"``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        channels: tuple[int, ...] = (32, 64, 128),
        final_relu: bool = False,
        norm: str = "batch",
    ):
        super().__init__()
        if not channels:
            raise ValueError("SmallCNN needs at least one block")
        if norm not in NORMS:
            raise ValueError(f"SmallCNN: unknown norm {norm!r}; choose from {NORMS}")
        layers: list[nn.Module] = []
        width = in_channels
        for i, c in enumerate(channels):
            layers.append(nn.Conv2d(width, c, 3, padding=1, bias=norm == "none"))
            layers += _norm_layer(norm, c)
            if i < len(channels) - 1 or final_relu:
                layers.append(nn.ReLU(inplace=True))
            if 0 < i < len(channels) - 1:
                layers.append(nn.MaxPool2d(2))
            width = c
        self.features = nn.Sequential(*layers)
        self.dim = channels[-1]
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(-2, -1))


def small_cnn(
    in_channels: int = 1,
    channels: tuple[int, ...] = (32, 64, 128),
    final_relu: bool = False,
    norm: str = "batch",
) -> PyroModule:
    """:class:`SmallCNN` converted in place to a ``PyroModule`` with Pyro's ``to_pyro_module_``."""
    module = SmallCNN(in_channels, channels, final_relu, norm)
    to_pyro_module_(module)
    return module


def build_encoder(
    arch: str,
    *,
    in_channels: int = 3,
    cifar_stem: bool = False,
    projector: bool = False,
    projector_dim: int = 2048,
    norm: str = "batch",
    final_relu: bool = False,
    width: int = 32,
) -> PyroModule:
    """Build the encoder ``arch`` (one of :data:`ENCODERS`) as a ``PyroModule`` with ``.dim``.

    * ``"small_cnn"``: :func:`small_cnn` with its default widths (D = 128);
      takes ``norm`` and ``final_relu``.
    * ``"resnet18"`` (D = 512; CIFAR-10/100, STL-10) and ``"resnet50"``
      (D = 2048; ImageNet-1K), paper Section 5.1: take ``cifar_stem``
      (3x3 stride-1 ``conv1``, no max-pool, for 32x32 inputs). Their embeddings
      are the pooled output of torchvision's last ReLU, so they are non-negative.

    ``projector=True`` appends the Section 5.2 :class:`~pyro_vje.networks.ProjectionHead`
    with hidden and output width ``projector_dim``; ``.dim`` is then ``projector_dim``.

    An option that does not apply raises ``ValueError`` rather than being ignored:
    ``cifar_stem`` for ``small_cnn``, ``norm != "batch"`` or ``final_relu`` for a
    ResNet, ``projector_dim`` without ``projector``.

    :param arch: ``"small_cnn"``, ``"resnet18"`` or ``"resnet50"``.
    :param in_channels: input channels (3 for RGB, 1 for grey-scale).
    :param cifar_stem: ResNets only: the 32x32 stem of Section 5.1.
    :param projector: append the Section 5.2 projection head.
    :param projector_dim: hidden and output width of the projection head.
    :param norm: ``small_cnn`` only: ``"batch"``, ``"group"`` or ``"none"`` (see :class:`SmallCNN`).
    :param final_relu: ``small_cnn`` only: ReLU after the last block.
    :param width: ``small_cnn`` only: channels of the first block; the blocks have ``width``,
        ``2 width`` and ``4 width`` channels, so D = 4 ``width`` (default 32: D = 128).
    """
    if arch not in ENCODERS:
        raise ValueError(f"build_encoder: unknown arch {arch!r}; choose from {ENCODERS}")
    if norm not in NORMS:
        raise ValueError(f"build_encoder: unknown norm {norm!r}; choose from {NORMS}")
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
        raise ValueError(f"build_encoder: in_channels must be a positive int, got {in_channels!r}")
    if isinstance(projector_dim, bool) or not isinstance(projector_dim, int) or projector_dim < 1:
        raise ValueError(f"build_encoder: projector_dim must be a positive int, got {projector_dim!r}")
    if not projector and projector_dim != _DEFAULT_PROJECTOR_DIM:
        raise ValueError("build_encoder: projector_dim applies only with projector=True")
    if arch == "small_cnn":
        if cifar_stem:
            raise ValueError("build_encoder: cifar_stem applies only to the ResNets, not to small_cnn")
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"build_encoder: width must be a positive int, got {width!r}")
        encoder = small_cnn(in_channels, (width, 2 * width, 4 * width), final_relu=final_relu, norm=norm)
    else:
        if norm != "batch":
            raise ValueError(
                f"build_encoder: {arch} supports only norm='batch' (torchvision's BatchNorm); "
                f"norm={norm!r} applies to small_cnn"
            )
        if width != 32:
            raise ValueError(
                f"build_encoder: width applies only to small_cnn; {arch} has torchvision's widths"
            )
        if final_relu:
            raise ValueError(
                f"build_encoder: final_relu applies only to small_cnn; {arch}'s embeddings are "
                "always the pooled output of its last ReLU"
            )
        factory = resnet18 if arch == "resnet18" else resnet50
        encoder = factory(in_channels=in_channels, cifar_stem=cifar_stem)
    if projector:
        return with_projector(encoder, projector_dim, projector_dim)
    return encoder
