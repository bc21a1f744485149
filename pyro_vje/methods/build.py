"""A run's method, built from its config: the encoder f, then the registered method on it.

Training, ``load_run`` (every command that reads a run) and the benchmarks build a method
here, through :data:`~pyro_vje.methods.registry.METHODS`, inside the one Pyro mode every
method runs in (:func:`module_local_params`).
"""

from __future__ import annotations

import dataclasses
from contextlib import AbstractContextManager
from typing import Protocol

import pyro
from torch import nn

from ..data import dataset_info
from ..networks import build_encoder
from .options import MethodOptions
from .registry import method_entry

__all__ = ["MethodSettings", "build_backbone", "build_method", "module_local_params"]


class MethodSettings(Protocol):
    """What building a method reads of a run's settings: a :class:`~pyro_vje.config.TrainConfig`
    (the config sits above the methods, which it names; this is its face seen from here)."""

    method: str
    options: MethodOptions
    dataset: str
    arch: str
    cifar_stem: bool | None
    projector: bool
    projector_dim: int
    norm: str
    final_relu: bool
    width: int


def module_local_params() -> AbstractContextManager:
    """Pyro's ``module_local_params`` mode: PyroModules keep their parameters in the module.

    Every place that builds, trains or scores a method enters this one context (also
    usable as a decorator), so a method's parameters never go through the global
    param store and a run behaves the same whoever calls it.
    """
    return pyro.settings.context(module_local_params=True)


def build_backbone(config: MethodSettings, channels: int, image_size: int) -> nn.Module:
    """The encoder f of Section 5.1 for this config and input size."""
    is_resnet = config.arch.startswith("resnet")
    cifar_stem = config.cifar_stem if config.cifar_stem is not None else (is_resnet and image_size <= 64)
    kwargs: dict = {"in_channels": channels, "projector": config.projector}
    if config.projector:
        kwargs["projector_dim"] = config.projector_dim
    if is_resnet:
        kwargs["cifar_stem"] = cifar_stem
    else:
        kwargs.update(norm=config.norm, final_relu=config.final_relu, width=config.width)
    return build_encoder(config.arch, **kwargs)


def build_method(config: MethodSettings, channels: int, image_size: int) -> nn.Module:
    """``config.method`` on the run's encoder, with ``config.options``; it remembers the data it
    was built for (``method.data_info``: :mod:`pyro_vje.score` checks its inputs against it).

    The encoder's ``projector`` option (VJE's Section 5.2 LayerNorm head) is refused for a
    method that brings its own heads (projector, expander, predictor) rather than stacked.
    """
    entry = method_entry(config.method)
    if config.projector and not entry.projector:
        raise ValueError(
            f"projector applies to VJE (its Section 5.2 LayerNorm head); {config.method} builds its own "
            "heads (see its options, e.g. proj_dim / expander_dim)"
        )
    method = entry.build(build_backbone(config, channels, image_size), config.options)
    info = dataset_info(config.dataset, image_size=image_size, count_classes=False)
    method.data_info = dataclasses.replace(info, channels=channels)
    return method
