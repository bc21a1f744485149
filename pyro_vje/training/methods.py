"""The interface between the trainer and a self-supervised method, and the VJE method.

A *method* is an ``nn.Module`` with

* ``encoder``: the backbone f (exported on its own by ``pyro-vje embed --backbone``);
* ``training_loss(x1, x2) -> (loss, terms)``: the scalar loss of a batch of view
  pairs and a dict of detached per-term scalars to log;
* ``features(x) -> dict``: frozen features of a batch, at least ``"z"``; VJE
  adds the posterior's ``"mu"`` and ``"scale"``.

The baselines of :mod:`pyro_vje.methods` (SimSiam, VICReg, VSimSiam, VCL, GJE)
join the trainer through :func:`build_baseline`, registered for each name of
:data:`pyro_vje.methods.BASELINES`; their options (``config.options``) are the
dataclasses they registered themselves (docs/methods.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

import pyro
import torch
from torch import nn

from ..data import dataset_info
from ..methods import BASELINES
from ..model import VJE, check_terms
from ..networks import InferenceNetwork, build_encoder
from .config import DEFAULT_HIDDEN, TrainConfig


def module_local_params() -> AbstractContextManager:
    """Pyro's ``module_local_params`` mode: PyroModules keep their parameters in the module.

    Every place that builds, trains or scores a method enters this one context (also
    usable as a decorator), so a method's parameters never go through the global
    param store and a run behaves the same whoever calls it.
    """
    return pyro.settings.context(module_local_params=True)


class Method(Protocol):
    encoder: nn.Module

    def training_loss(self, x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, dict]: ...

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]: ...


def build_backbone(config: TrainConfig, channels: int, image_size: int) -> nn.Module:
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


def build_vje(config: TrainConfig, channels: int, image_size: int) -> VJE:
    encoder = build_backbone(config, channels, image_size)
    hidden = config.hidden if config.hidden is not None else DEFAULT_HIDDEN[config.arch]  # unvalidated
    inference = InferenceNetwork(encoder.dim, hidden, depth=config.depth)
    return VJE(
        encoder,
        inference,
        df=config.df,
        beta=config.beta,
        radial_scale=config.radial_scale,
        elbo=config.elbo,
        num_particles=config.num_particles,
        terms=check_terms(config.terms),
    )


def build_baseline(config: TrainConfig, channels: int, image_size: int) -> nn.Module:
    """A method of :data:`pyro_vje.methods.BASELINES` on the run's encoder, with ``config.options``.

    The baselines bring their own heads (projector, expander, predictor): the encoder's
    ``projector`` option (VJE's Section 5.2 variant) is refused rather than stacked.
    """
    if config.projector:
        raise ValueError(
            f"projector applies to VJE (its Section 5.2 LayerNorm head); {config.method} builds its own "
            "heads (see its options, e.g. proj_dim / expander_dim)"
        )
    method_class, _ = BASELINES[config.method]
    return method_class(build_backbone(config, channels, image_size), config.options)


METHOD_BUILDERS: dict[str, Callable[[TrainConfig, int, int], nn.Module]] = {
    "vje": build_vje,
    **{name: build_baseline for name in BASELINES},
}


def build_method(config: TrainConfig, channels: int, image_size: int) -> nn.Module:
    if config.method not in METHOD_BUILDERS:
        raise ValueError(f"unknown method {config.method!r}; choose from {', '.join(METHOD_BUILDERS)}")
    method = METHOD_BUILDERS[config.method](config, channels, image_size)
    # what the method was built for: pyro_vje.score checks its inputs against it
    info = dataset_info(config.dataset, image_size=image_size, count_classes=False)
    method.data_info = dataclasses.replace(info, channels=channels)
    return method


class TrainStep(nn.Module):
    """``forward(x1, x2) = method.training_loss(x1, x2)``: what DistributedDataParallel wraps,
    since DDP synchronizes gradients for computations that run through ``forward``."""

    def __init__(self, method: nn.Module):
        super().__init__()
        self.method = method

    def forward(
        self, x1: torch.Tensor, x2: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict]:
        if labels is not None:  # a method with uses_labels (the supervised reference)
            return self.method.training_loss(x1, x2, labels)
        return self.method.training_loss(x1, x2)
