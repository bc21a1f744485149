"""Encoders f_theta (paper Section 3): images to embeddings z in R^D."""

from __future__ import annotations

import torch
from pyro.nn import PyroModule
from pyro.nn.module import to_pyro_module_
from torch import nn


class SmallCNN(nn.Module):
    """A small CNN for CPU work and the embedded digits default.

    ``len(channels)`` blocks of ``3x3 conv -> BatchNorm -> ReLU``; a 2x2
    max-pool after every block but the first and the last, then global
    average pooling. No projection head: the output is the embedding z, of
    dimension ``channels[-1]`` (paper Section 3). By default the last block
    has no ReLU, so embeddings are signed rather than confined to the positive
    orthant; on digits this kept the posterior means from collapsing to one
    direction (docs/results.md).
    """

    def __init__(
        self, in_channels: int = 1, channels: tuple[int, ...] = (32, 64, 128), final_relu: bool = False
    ):
        super().__init__()
        if not channels:
            raise ValueError("SmallCNN needs at least one block")
        layers: list[nn.Module] = []
        width = in_channels
        for i, c in enumerate(channels):
            layers += [nn.Conv2d(width, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)]
            if i < len(channels) - 1 or final_relu:
                layers.append(nn.ReLU(inplace=True))
            if 0 < i < len(channels) - 1:
                layers.append(nn.MaxPool2d(2))
            width = c
        self.features = nn.Sequential(*layers)
        self.dim = channels[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(-2, -1))


def small_cnn(
    in_channels: int = 1, channels: tuple[int, ...] = (32, 64, 128), final_relu: bool = False
) -> PyroModule:
    """:class:`SmallCNN` converted in place to a ``PyroModule`` with Pyro's ``to_pyro_module_``."""
    module = SmallCNN(in_channels, channels, final_relu)
    to_pyro_module_(module)
    return module
