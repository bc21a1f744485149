"""Training: one loop for every method, with run directories, checkpoints, logs and DDP."""

from ..evaluation import evaluate_features, evaluate_method, extract_features
from .config import TrainConfig, config_from_dict, load_config, load_config_file
from .distributed import resolve_device
from .export import embed_dataset, export_backbone, load_run, save_npz
from .methods import METHOD_BUILDERS, TrainStep, build_method
from .schedule import lr_at, scaled_lr
from .trainer import NonFiniteLossError, Trainer, TrainingInterrupted, train

__all__ = [
    "METHOD_BUILDERS",
    "NonFiniteLossError",
    "TrainConfig",
    "TrainStep",
    "Trainer",
    "TrainingInterrupted",
    "build_method",
    "config_from_dict",
    "embed_dataset",
    "evaluate_features",
    "evaluate_method",
    "export_backbone",
    "extract_features",
    "load_config",
    "load_config_file",
    "load_run",
    "lr_at",
    "resolve_device",
    "save_npz",
    "scaled_lr",
    "train",
]
