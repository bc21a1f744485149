"""A trained run, read back: its config and its method, ready to evaluate, embed or score."""

from __future__ import annotations

import os

import torch
from torch import nn

from ..config import TrainConfig, config_from_dict
from ..data import DATASET_INFO
from ..methods.build import build_method
from .checkpoints import load_checkpoint, resolve_checkpoint

__all__ = ["load_run"]


def load_run(
    path: str | os.PathLike, which: str = "last", device: str | torch.device = "cpu"
) -> tuple[TrainConfig, nn.Module]:
    """The config and the trained method (in eval mode) of a run directory or checkpoint file."""
    ckpt = resolve_checkpoint(path, which)
    state = load_checkpoint(ckpt)
    if "model" not in state or "config" not in state:
        raise ValueError(f"{ckpt} is not a pyro-vje training checkpoint (no model/config entries)")
    config = config_from_dict(state["config"])
    info = DATASET_INFO[config.dataset]
    method = build_method(config, info.channels, config.image_size or info.image_size)
    method.load_state_dict(state["model"])
    return config, method.to(device).eval()
