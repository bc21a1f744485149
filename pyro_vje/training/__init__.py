"""Training: one loop for every method, with run directories, checkpoints, logs and DDP.

The names below are imported on first use (PEP 562): ``pyro_vje.config`` is
light (no torch), so the command line reads the settings without importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import TrainConfig, config_from_dict, load_config, load_config_file
    from ..evaluation import evaluate_features, evaluate_method, extract_features
    from .distributed import TrainStep, resolve_device
    from .schedule import lr_at, scaled_lr
    from .trainer import NonFiniteLossError, Trainer, TrainingInterrupted, train

_LAZY = {
    "evaluate_features": "..evaluation",
    "evaluate_method": "..evaluation",
    "extract_features": "..evaluation",
    "TrainConfig": "..config",
    "config_from_dict": "..config",
    "load_config": "..config",
    "load_config_file": "..config",
    "TrainStep": ".distributed",
    "resolve_device": ".distributed",
    "lr_at": ".schedule",
    "scaled_lr": ".schedule",
    "NonFiniteLossError": ".trainer",
    "Trainer": ".trainer",
    "TrainingInterrupted": ".trainer",
    "train": ".trainer",
}

__all__ = [
    "NonFiniteLossError",
    "TrainConfig",
    "TrainStep",
    "Trainer",
    "TrainingInterrupted",
    "config_from_dict",
    "evaluate_features",
    "evaluate_method",
    "extract_features",
    "load_config",
    "load_config_file",
    "lr_at",
    "resolve_device",
    "scaled_lr",
    "train",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
