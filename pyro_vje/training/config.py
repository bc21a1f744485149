"""The resolved configuration of a training run, and config files (YAML or JSON).

Every knob of a run lives in one flat :class:`TrainConfig`. Its defaults are
the README's main job (VJE with the small CNN on scikit-learn's digits, about
a minute on a CPU); the files under ``configs/`` reproduce the paper's
settings (Section 5). The command line overrides a file, a file overrides the
defaults, and the run directory keeps the result as ``config.json``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

METHODS = ("vje",)
AMP_MODES = ("auto", "bf16", "none")


@dataclass
class TrainConfig:
    """One training run. Paper defaults (Section 5.2) are noted where ours differ."""

    # what to train
    method: str = "vje"
    arch: str = "small_cnn"  # small_cnn | resnet18 | resnet50
    cifar_stem: bool | None = None  # None: 3x3 stem without max-pool when a ResNet sees <= 64 px
    projector: bool = False  # Section 5.2 variant: 2-layer 2048 MLP with LayerNorm
    projector_dim: int = 2048
    norm: str = "batch"  # small_cnn only: batch | group | none
    final_relu: bool = False  # small_cnn only
    hidden: int = 64  # inference-network bottleneck (paper: 128 for ResNet-18, 512 for ResNet-50)
    depth: int = 3
    df: float = 3.0
    beta: float = 1.0
    radial_scale: float = 1.0
    elbo: str = "meanfield"  # meanfield (analytic KL, the paper) | trace
    num_particles: int = 1

    # data
    dataset: str = "digits"  # digits | cifar10 | cifar100 | stl10 | imagenet | imagefolder
    data_dir: str | None = None
    download: bool = False
    train_split: str = "train"  # stl10: "train+unlabeled" for pretraining
    subset: int | None = None  # class-balanced subset of the training split
    normal_class: int | None = None  # one-class protocol (Section 5.3): train on this class only
    eval_subset: int | None = None  # class-balanced subset of the test split (kNN / probes)
    image_size: int | None = None  # None: the data set's own
    cache: bool = False  # decode an image folder once into memory
    augment: str = "default"  # default (MoCo v2 / the digits recipe) | none (both views un-augmented)
    num_workers: int = 0

    # optimisation (paper: SGD, momentum 0.9, lr 0.05 x batch/256, wd 5e-6, 10-epoch warm-up, cosine)
    epochs: int = 60
    batch_size: int = 128  # global batch: split over processes under torchrun
    lr: float = 0.01  # for batch 256; scaled by batch_size / 256 (paper: 0.05; 0.01 suits digits)
    momentum: float = 0.9
    weight_decay: float = 5e-6
    warmup_epochs: int = 5  # paper: 10
    amp: str = "auto"  # auto: bf16 autocast on CUDA, none on CPU
    channels_last: bool | None = None  # None: on CUDA
    sync_bn: bool = False  # SyncBatchNorm under torchrun (CUDA)
    grad_clip: float | None = None

    # evaluation and logging
    eval_every: int = 10  # epochs between kNN evaluations (the last epoch is always evaluated)
    knn_k: int = 30
    knn_temperature: float = 0.1
    linear_probe: str = "none"  # none | fast | full (100 epochs, the paper)
    baselines: bool = True  # kNN of raw pixels and of the random-init encoder before training
    tensorboard: bool = True
    figures: bool = True
    progress: bool = True

    # run
    seed: int = 0
    device: str = "auto"
    out: str | None = None  # run directory; default runs/<dataset>-<method>-<arch>-<time>
    max_steps_per_epoch: int | None = None  # cap for smoke tests and benchmarks

    def validate(self) -> TrainConfig:
        """Raise ``ValueError`` naming the first bad field; return ``self``."""
        from ..data import DATASET_INFO
        from ..networks import ENCODERS

        def choice(name: str, allowed) -> None:
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"unknown {name} {value!r}; choose from {', '.join(map(str, allowed))}")

        choice("method", METHODS)
        choice("arch", ENCODERS)
        choice("dataset", tuple(DATASET_INFO))
        choice("amp", AMP_MODES)
        choice("elbo", ("meanfield", "trace"))
        choice("linear_probe", ("none", "fast", "full"))
        choice("norm", ("batch", "group", "none"))
        choice("augment", ("default", "none"))
        for name in ("epochs", "batch_size", "hidden", "depth", "knn_k", "eval_every", "num_particles"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2, got {self.batch_size}")
        for name in ("warmup_epochs", "num_workers"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("lr", "knn_temperature", "radial_scale"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a positive finite number, got {value}")
        if not self.df > 0:  # inf is the Gaussian limit
            raise ValueError(f"df must be > 0 (inf allowed), got {self.df}")
        for name in ("beta", "weight_decay", "momentum"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0 or None, got {self.grad_clip}")
        if self.normal_class is not None and self.normal_class < 0:
            raise ValueError(f"normal_class must be a class index >= 0, got {self.normal_class}")
        for name in ("subset", "eval_subset", "image_size", "max_steps_per_epoch"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or None, got {value}")
        if self.dataset in ("imagefolder", "imagenet") and not self.data_dir:
            raise ValueError(f"dataset {self.dataset!r} reads a folder: give data_dir (--data-dir)")
        return self

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if math.isinf(out["df"]):
            out["df"] = "inf"  # JSON has no infinity
        return out


_FIELDS = {f.name: f for f in fields(TrainConfig)}


def _coerce(name: str, value: Any) -> Any:
    """Types from YAML/JSON: ``"inf"`` for df, ints where floats are expected."""
    if name == "df" and isinstance(value, str):
        if value.strip().lower() in ("inf", "infinity", ".inf"):
            return math.inf
        raise ValueError(f"df must be a number or 'inf', got {value!r}")
    default = _FIELDS[name].default
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def config_from_dict(values: dict[str, Any], base: TrainConfig | None = None) -> TrainConfig:
    """``base`` (default: :class:`TrainConfig`'s defaults) with ``values`` applied.

    Unknown keys are an error that lists them, so a typo never goes unnoticed.
    """
    unknown = sorted(set(values) - set(_FIELDS))
    if unknown:
        raise ValueError(
            f"unknown config keys: {', '.join(unknown)}; known keys: {', '.join(sorted(_FIELDS))}"
        )
    coerced = {k: _coerce(k, v) for k, v in values.items()}
    return dataclasses.replace(base or TrainConfig(), **coerced)


def load_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML (``.yaml``/``.yml``) or JSON (``.json``) file into a dict of overrides."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {str(path)!r} not found")
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text)
    elif path.suffix == ".json":
        data = json.loads(text)
    else:
        raise ValueError(f"config file {str(path)!r}: use a .yaml, .yml or .json file")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"config file {str(path)!r} must hold a mapping of keys to values")
    data.pop("_comment", None)
    return data


def load_config(path: str | os.PathLike, **overrides: Any) -> TrainConfig:
    """A config file with ``overrides`` applied on top, validated."""
    values = load_config_file(path)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return config_from_dict(values).validate()
