"""The resolved configuration of a training run, and config files (YAML or JSON).

A :class:`TrainConfig` has one field per setting shared by every method, each in
a section (``metadata["group"]``: model, data, optimization, evaluation and
logging, run), and ``options``: the chosen method's own settings, an instance
of the :class:`MethodOptions` dataclass that the method's entry of
:data:`~pyro_vje.methods.registry.METHODS` names (VJE's: :class:`VJEOptions`). The help text of
every setting lives once, in its field's ``metadata["help"]``; the command line
is generated from it.

Config files and ``config.json`` stay flat (``df: 3.0`` next to ``lr: 0.05``):
a flat key is a shared field or one of the method's options, and anything else
is an error that lists the known keys. ``TrainConfig(df=3.0, lr=0.05)`` and
``config.df`` read the same way, so the options of the running method look like
plain settings to callers.

The defaults are the README's main job (VJE with the small CNN on
scikit-learn's digits, about two minutes on a CPU); the files under ``configs/``
reproduce the paper's settings (Section 5). The command line overrides a file,
a file overrides the defaults, and the run directory keeps the result as
``config.json``.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .methods.options import (
    MethodOptions,
    VJEOptions,
    check_at_least_one,
    check_choice,
    check_finite_non_negative,
    check_positive_finite,
    setting,
)
from .methods.registry import METHODS

AMP_MODES = ("auto", "bf16", "none")
AUGMENT_BACKENDS = ("auto", "batched", "per_image")
#: values a run's ``config.json`` records beside its settings, computed from them (the peak
#: learning rate after the linear scaling rule): not settings, dropped when it is read back.
DERIVED_KEYS = frozenset({"peak_lr"})
GROUPS = ("model", "data", "optimization", "evaluation and logging", "run")


_EXPECTED = {bool: "true or false", int: "an integer", float: "a number (or 'inf')", str: "a string"}


def _type_problem(value: Any, hint: Any) -> str | None:
    """What is wrong with ``value`` for a field annotated ``hint`` (e.g. ``float | None``), or None."""
    kinds = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    optional = type(None) in typing.get_args(hint)
    if value is None:
        return None if optional else "null"
    for kind in kinds:
        if kind is bool and isinstance(value, bool):
            return None
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return None
        if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return "nan" if math.isnan(value) else None
        if kind is str and isinstance(value, (str, os.PathLike)):  # folders may come as paths
            return None
        if kind not in _EXPECTED:  # a type this check does not know: trust it
            return None
    return "wrong type"


def check_field_types(settings: Any) -> None:
    """Raise ``ValueError`` naming the first field of the dataclass ``settings`` whose value has the
    wrong type for its annotation: the key, the type expected and the value given.

    The one type check of every setting (config files, flags, ``TrainConfig(...)``): YAML's
    ``epochs: "ten"``, ``lr: "0.1"`` or ``epochs: true`` are refused here, before any comparison.
    """
    hints = typing.get_type_hints(type(settings))
    for f in fields(settings):
        if f.name == "options":
            continue
        value = getattr(settings, f.name)
        problem = _type_problem(value, hints[f.name])
        if problem is not None:
            kinds = [a for a in typing.get_args(hints[f.name]) if a is not type(None)] or [hints[f.name]]
            expected = " or ".join(_EXPECTED.get(k, getattr(k, "__name__", str(k))) for k in kinds)
            if type(None) in typing.get_args(hints[f.name]):
                expected += " or null"
            raise ValueError(f"{f.name} must be {expected}, got {value!r} ({type(value).__name__})")


def option_names(method: str) -> tuple[str, ...]:
    """The flat keys of ``method``'s options (empty for an unknown method)."""
    entry = METHODS.get(method)
    return tuple(f.name for f in fields(entry.options)) if entry else ()


# ------------------------------------------------------------------------ config
@dataclass(init=False)
class TrainConfig:
    """One training run. Paper defaults (Section 5.2) are noted where ours differ.

    Construct it flat: ``TrainConfig(epochs=3, df=math.inf)``; the method's keys go to
    :attr:`options`.
    """

    # model
    method: str = setting("vje", "self-supervised method", "model")
    arch: str = setting(
        "small_cnn", "encoder: small_cnn (CPU), resnet18 (CIFAR/STL-10), resnet50 (ImageNet)", "model"
    )
    cifar_stem: bool | None = setting(
        None, "ResNet stem 3x3/stride 1 without max-pool (default: on for inputs <= 64 px)", "model"
    )
    projector: bool = setting(
        False, "add the 2-layer 2048-d LayerNorm projection head (paper Section 5.2 variant)", "model"
    )
    projector_dim: int = setting(2048, "projection head width", "model")
    norm: str = setting("batch", "small_cnn normalization: batch, group or none", "model")
    final_relu: bool = setting(False, "small_cnn: ReLU after the last block (non-negative z)", "model")
    width: int = setting(32, "small_cnn: channels of the first block (blocks w, 2w, 4w: D = 4w)", "model")
    options: MethodOptions = field(
        default_factory=VJEOptions, metadata={"help": "the method's own settings", "group": "model"}
    )

    # data
    dataset: str = setting(
        "digits", "digits, cifar10, cifar100, fashion-mnist, mnist, stl10, imagenet or imagefolder", "data"
    )
    data_dir: str | None = setting(
        None, "data folder: an ImageFolder tree (<dir>/train/<class>/...) or torchvision's files", "data"
    )
    download: bool = setting(False, "let torchvision download the data set into --data-dir", "data")
    train_split: str = setting("train", "split to pretrain on (stl10: train+unlabeled)", "data")
    subset: int | None = setting(None, "train on a deterministic class-balanced subset of N images", "data")
    normal_class: int | None = setting(
        None, "one-class protocol: train on the images of this class index only", "data"
    )
    eval_subset: int | None = setting(None, "evaluate on a class-balanced subset of N test images", "data")
    validation: int | None = setting(
        None,
        "hold out N class-balanced training images (the same for every seed) and evaluate on them "
        "instead of the test split: for choosing settings; training and the kNN bank use the rest",
        "data",
    )
    image_size: int | None = setting(None, "input size (default: the data set's)", "data")
    cache: bool = setting(False, "decode an image folder once into memory", "data")
    skip_unreadable: bool = setting(
        False,
        "leave out image files PIL cannot read, logging how many (list them: pyro-vje check-data DIR)",
        "data",
    )
    augment: str = setting(
        "default",
        "default (MoCo v2; the 8x8 recipe for digits), crop (MoCo v2 without color jitter) or none",
        "data",
    )
    crop_min_scale: float | None = setting(
        None,
        "views: smallest crop area fraction of RandomResizedCrop (default: the data set's recipe)",
        "data",
    )
    color_jitter: float | None = setting(
        None,
        "views: brightness/contrast/saturation jitter strength, 0 for none (default: the data set's recipe)",
        "data",
    )
    blur: bool | None = setting(
        None, "views: Gaussian blur with p=0.5 (default: the data set's recipe)", "data"
    )
    augment_backend: str = setting(
        "auto",
        "where training views are made: batched (whole batches on the training device, from the "
        "images held in memory), per_image (torchvision on PIL images, in DataLoader workers), or "
        "auto: batched for CIFAR-10/100, STL-10 and --cache folders, per_image otherwise (digits too)",
        "data",
    )
    num_workers: int = setting(
        0, "data-loading processes (per_image views; kept alive across epochs)", "data"
    )

    # optimization (paper: SGD, momentum 0.9, lr 0.05 x batch/256, wd 5e-6, 10-epoch warm-up, cosine)
    epochs: int = setting(120, "training epochs", "optimization")  # digits: learns visibly (docs/results.md)
    batch_size: int = setting(
        128, "global batch of view pairs (split over torchrun processes)", "optimization"
    )
    lr: float = setting(  # paper: 0.05; 0.02 suits digits (issue 10 item 16 in docs/results.md)
        0.02, "learning rate for batch 256, scaled linearly with batch_size", "optimization"
    )
    momentum: float = setting(0.9, "SGD momentum", "optimization")
    weight_decay: float = setting(5e-6, "SGD weight decay", "optimization")
    warmup_epochs: int = setting(
        5, "linear warm-up epochs before the cosine decay", "optimization"
    )  # paper: 10
    amp: str = setting("auto", "auto (bf16 autocast on CUDA), bf16 or none", "optimization")
    channels_last: bool | None = setting(
        None, "channels-last memory format (default: on CUDA)", "optimization"
    )
    sync_bn: bool = setting(False, "SyncBatchNorm across torchrun processes (CUDA)", "optimization")
    threads: int | None = setting(
        None,
        "CPU threads of torch per process (default: OMP_NUM_THREADS, else one per core); idle threads "
        "sleep (OMP_WAIT_POLICY=PASSIVE unless set; docs/training.md, CPU threads)",
        "optimization",
    )
    grad_clip: float | None = setting(None, "clip the gradient norm to this value", "optimization")
    freeze_encoder: bool = setting(
        False,
        "keep the encoder (and projector) at its initialization; train the rest (BatchNorm "
        "running statistics still follow the batches; the one-class CIFAR-10 CPU preset)",
        "optimization",
    )

    # evaluation and logging
    eval_every: int = setting(10, "epochs between kNN evaluations", "evaluation and logging")
    knn_k: int = setting(30, "neighbours of the weighted kNN", "evaluation and logging")
    knn_temperature: float = setting(0.1, "temperature of the weighted kNN votes", "evaluation and logging")
    linear_probe: str = setting(
        "none", "linear probe after training: none, fast or full (100 epochs)", "evaluation and logging"
    )
    baselines: bool = setting(
        True,
        "measure kNN of raw pixels and of the random-init encoder before training",
        "evaluation and logging",
    )
    tensorboard: bool = setting(True, "write TensorBoard events under <run>/tb", "evaluation and logging")
    figures: bool = setting(True, "write matplotlib figures under <run>/figures", "evaluation and logging")
    progress: bool = setting(True, "progress bars", "evaluation and logging")

    # run
    seed: int = setting(0, "seed of data order, initialization, augmentation and posterior noise", "run")
    device: str = setting("auto", "auto, cpu, cuda or cuda:N", "run")
    out: str | None = setting(None, "run directory (default: runs/<dataset>-<method>-<arch>-<time>)", "run")
    max_steps_per_epoch: int | None = setting(None, "cap on steps per epoch (smoke tests)", "run")

    def __init__(self, options: MethodOptions | None = None, **values: Any) -> None:
        for f in shared_fields():
            if f.name in values:
                value = values.pop(f.name)
            elif f.default is not dataclasses.MISSING:
                value = f.default
            else:
                value = f.default_factory()
            object.__setattr__(self, f.name, value)
        entry = METHODS.get(self.method)
        cls = entry.options if entry else None
        if cls is None:  # validate() names the unknown method; keep what was given
            own = options if options is not None else VJEOptions()
        else:
            own = options if type(options) is cls else cls()
        mine = {k: values.pop(k) for k in list(values) if k in {f.name for f in fields(own)}}
        if values:
            raise TypeError(f"TrainConfig got unknown settings: {', '.join(sorted(values))}")
        object.__setattr__(self, "options", dataclasses.replace(own, **mine))

    def __getattr__(self, name: str) -> Any:  # the method's options read like settings
        options = self.__dict__.get("options")
        if options is not None and name in {f.name for f in fields(options)}:
            return getattr(options, name)
        raise AttributeError(f"{type(self).__name__} has no setting {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        options = self.__dict__.get("options")
        if options is not None and name in {f.name for f in fields(options)}:
            setattr(options, name, value)
        else:
            object.__setattr__(self, name, value)

    def validate(self) -> TrainConfig:
        """Raise ``ValueError`` naming the first bad field; return ``self``."""
        from .data import DATASET_INFO
        from .networks import ENCODERS

        check_field_types(self)
        check_field_types(self.options)
        check_choice("method", self.method, tuple(METHODS))
        clash = sorted(set(option_names(self.method)) & {f.name for f in shared_fields()})
        if clash:
            raise ValueError(
                f"method {self.method!r}: its options repeat shared settings: {', '.join(clash)}"
            )
        check_choice("arch", self.arch, ENCODERS)
        check_choice("dataset", self.dataset, tuple(DATASET_INFO))
        check_choice("amp", self.amp, AMP_MODES)
        check_choice("linear_probe", self.linear_probe, ("none", "fast", "full"))
        check_choice("norm", self.norm, ("batch", "group", "none"))
        check_choice("augment", self.augment, ("default", "crop", "none"))
        check_choice("augment_backend", self.augment_backend, AUGMENT_BACKENDS)
        if self.crop_min_scale is not None and not 0 < self.crop_min_scale <= 1:
            raise ValueError(f"crop_min_scale must be in (0, 1], got {self.crop_min_scale}")
        if self.color_jitter is not None and not 0 <= self.color_jitter < 1:
            raise ValueError(f"color_jitter must be in [0, 1), got {self.color_jitter}")
        if self.width != 32 and self.arch != "small_cnn":
            raise ValueError(f"width applies to small_cnn; {self.arch} has torchvision's widths")
        for name in ("epochs", "batch_size", "knn_k", "eval_every", "width"):
            check_at_least_one(name, getattr(self, name))
        self.options.validate()
        self.options.fill_defaults(self.arch)  # e.g. VJE's hidden: recorded in config.json as chosen
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2, got {self.batch_size}")
        for name in ("warmup_epochs", "num_workers"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("lr", "knn_temperature"):
            check_positive_finite(name, getattr(self, name))
        for name in ("weight_decay", "momentum"):
            check_finite_non_negative(name, getattr(self, name))
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0 or None, got {self.grad_clip}")
        if self.normal_class is not None and self.normal_class < 0:
            raise ValueError(f"normal_class must be a class index >= 0, got {self.normal_class}")
        for name in ("subset", "eval_subset", "validation", "image_size", "max_steps_per_epoch", "threads"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or None, got {value}")
        if self.validation is not None and self.train_split != "train":
            raise ValueError(
                f"validation holds out images of the train split; train_split is {self.train_split!r}"
            )
        info = DATASET_INFO[self.dataset]
        if info.reads_folder and not info.downloads and not self.data_dir:
            raise ValueError(f"dataset {self.dataset!r} reads a folder: give data_dir (--data-dir)")
        if not info.reads_folder and self.data_dir:
            folders = ", ".join(name for name, other in DATASET_INFO.items() if other.reads_folder)
            raise ValueError(
                f"data_dir (--data-dir) {self.data_dir!r} given, but the data set is {self.dataset} (built "
                f"into a package: it reads no folder); say which data set the folder holds with --dataset "
                f"({folders})"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        """The flat, JSON-safe layout of config files and ``config.json`` (options in place)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "options":
                out.update(dataclasses.asdict(self.options))
            else:
                out[f.name] = getattr(self, f.name)
        for name, value in out.items():
            if isinstance(value, float) and math.isinf(value):
                out[name] = "inf"  # JSON has no infinity
        return out


def shared_fields() -> tuple[dataclasses.Field, ...]:
    """The settings every method shares (all of :class:`TrainConfig`'s fields but ``options``)."""
    return tuple(f for f in fields(TrainConfig) if f.name != "options")


def known_keys(method: str) -> tuple[str, ...]:
    """The flat keys a config of ``method`` accepts."""
    return tuple(f.name for f in shared_fields()) + option_names(method)


def _field_default(name: str, method: str) -> Any:
    options = METHODS[method].options if method in METHODS else VJEOptions
    for f in shared_fields() + tuple(fields(options)):
        if f.name == name:
            return f.default
    return None


def _coerce(name: str, value: Any, method: str) -> Any:
    """Types from YAML/JSON: ``"inf"`` for floats (df), ints where floats are expected."""
    default = _field_default(name, method)
    if isinstance(default, float) and isinstance(value, str):
        if value.strip().lower() in ("inf", "infinity", ".inf"):
            return math.inf
        raise ValueError(f"{name} must be a number (or 'inf'), got {value!r} (str)")
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def config_from_dict(values: dict[str, Any], base: TrainConfig | None = None) -> TrainConfig:
    """``base`` (default: :class:`TrainConfig`'s defaults) with the flat ``values`` applied.

    Unknown keys are an error that lists them, so a typo never goes unnoticed; a key
    is known when it is a shared setting or an option of the config's method.
    """
    base = base or TrainConfig()
    method = values.get("method", base.method)
    known = known_keys(method)
    unknown = sorted(set(values) - set(known))
    if unknown:
        named = ", ".join(k + _did_you_mean(k, known) for k in unknown)
        raise ValueError(f"unknown config keys: {named}; known keys: {', '.join(sorted(known))}")
    flat = {**base.to_dict(), **values} if method == base.method else {**_shared(base), **values}
    return TrainConfig(**{k: _coerce(k, v, method) for k, v in flat.items()})


#: other frameworks' names of settings (``learning_rate`` for ``lr``), for :func:`_did_you_mean`.
KEY_ALIASES: dict[str, str] = {
    "learning_rate": "lr",
    "base_lr": "lr",
    "num_epochs": "epochs",
    "n_epochs": "epochs",
    "max_epochs": "epochs",
    "batch": "batch_size",
    "bs": "batch_size",
    "wd": "weight_decay",
    "warmup": "warmup_epochs",
    "nu": "df",
    "degrees_of_freedom": "df",
    "architecture": "arch",
    "backbone": "arch",
    "data_root": "data_dir",
    "root": "data_dir",
    "output_dir": "out",
    "out_dir": "out",
    "run_dir": "out",
    "workers": "num_workers",
}


def _did_you_mean(key: str, known: tuple[str, ...]) -> str:
    """`` (did you mean lr?)`` for a mistyped key (difflib, through :data:`KEY_ALIASES`), or ''."""
    aliases = {alias: target for alias, target in KEY_ALIASES.items() if target in known}
    candidates = {**{k: k for k in known}, **aliases}
    close = difflib.get_close_matches(key.lower(), list(candidates), n=1, cutoff=0.75)
    return f" (did you mean {candidates[close[0]]}?)" if close else ""


def _shared(config: TrainConfig) -> dict[str, Any]:
    return {f.name: getattr(config, f.name) for f in shared_fields()}


def load_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML (``.yaml``/``.yml``) or JSON (``.json``) file into a dict of overrides."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {str(path)!r} not found")
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:  # one line: the file, the line and what is wrong
            mark = getattr(err, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            raise ValueError(f"config file {str(path)!r} is not valid YAML{where}: {problem}") from None
    elif path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            where = f"line {err.lineno}, column {err.colno}"
            raise ValueError(f"config file {str(path)!r} is not valid JSON at {where}: {err.msg}") from None
    else:
        raise ValueError(f"config file {str(path)!r}: use a .yaml, .yml or .json file")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"config file {str(path)!r} must hold a mapping of keys to values")
    data.pop("_comment", None)
    if path.name == "config.json":  # a run's record: drop the values derived from its settings
        for key in DERIVED_KEYS:
            data.pop(key, None)
    return data


def load_config(path: str | os.PathLike, **overrides: Any) -> TrainConfig:
    """A config file with ``overrides`` applied on top, validated."""
    values = load_config_file(path)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return config_from_dict(values).validate()
