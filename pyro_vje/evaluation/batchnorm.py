"""BatchNorm running statistics re-estimated on chosen images (a step of the one-class protocol).

A model trained with BatchNorm normalizes, in eval mode, with running statistics gathered
during training: in self-supervised training those are statistics of *augmented views*, not
of the clean images a score is computed on. :func:`reestimate_batchnorm` replaces them by
the statistics of given clean images (for the one-class protocol: the normal class's
training images), leaving every weight as trained. ``docs/scoring.md`` shows what this
does to the one-class scores.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn
from torch.utils.data import DataLoader

__all__ = ["batchnorm_layers", "reestimate_batchnorm"]


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every BatchNorm layer of ``model`` that keeps running statistics."""
    return [
        m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]


def _images(inputs, batch_size: int) -> Iterator[torch.Tensor]:
    if isinstance(inputs, torch.Tensor):
        if inputs.dim() < 2 or inputs.shape[0] == 0:
            raise ValueError(f"inputs must be a non-empty batch (N, ...), got shape {tuple(inputs.shape)}")
        yield from inputs.split(batch_size)
        return
    if isinstance(inputs, DataLoader):
        for batch in inputs:
            yield batch[0] if isinstance(batch, (list, tuple)) else batch
        return
    raise TypeError(f"inputs must be a tensor (N, ...) or a DataLoader, got {type(inputs).__name__}")


@torch.no_grad()
def reestimate_batchnorm(
    model: nn.Module,
    inputs: torch.Tensor | DataLoader,
    *,
    batch_size: int = 256,
    device: torch.device | str | None = None,
    forward=None,
) -> nn.Module:
    """Reset the running mean and variance of every BatchNorm layer of ``model`` and recompute
    them from ``inputs``; return ``model`` (changed in place) in eval mode.

    Each layer's new statistics are the average, over the batches of ``inputs``, of the
    batch's mean and unbiased variance of the layer's input (PyTorch's cumulative average,
    ``momentum=None``), computed in training mode so that each layer sees the input the
    layers before it produce with batch statistics, as in training. With all inputs in one
    batch they are the exact per-channel mean and unbiased variance. Weights, affine
    parameters and the layers' ``momentum`` are unchanged; batches of one image are skipped
    (a batch variance needs two). ``forward`` (default: ``model``) is the callable run on
    each batch, e.g. ``vje.encoder``.

    ``inputs`` is a tensor ``(N, ...)`` (split into ``batch_size`` batches) or a DataLoader
    yielding images or ``(images, labels)``; batches run on ``device`` (default: the device
    of the model's first parameter, else the CPU).
    """
    if batch_size < 2:
        raise ValueError(f"batch_size must be >= 2 (a batch variance needs two images), got {batch_size}")
    layers = batchnorm_layers(model)
    if device is None:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    forward = model if forward is None else forward
    if not layers:
        return model.eval()
    momenta = [m.momentum for m in layers]
    seen = 0
    try:
        for m in layers:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches
        model.train()
        for x in _images(inputs, batch_size):
            if len(x) < 2:
                continue
            forward(x.to(device))
            seen += len(x)
    finally:
        for m, momentum in zip(layers, momenta):
            m.momentum = momentum
        model.eval()
    if seen == 0:
        raise ValueError("reestimate_batchnorm needs a batch of at least two images; got none")
    return model
