"""The run directory: its name, ``config.json``, ``train.log``, checkpoints and atomic writes.

A run directory (``config.out``, default ``runs/<dataset>-<method>-<arch>-<time>``)
holds ``config.json`` (the resolved, flat config, plus the derived values of
:data:`~.config.DERIVED_KEYS`), ``train.log``, ``metrics.jsonl``/``metrics.csv``
(:mod:`.metrics`), ``last.pt``/``best.pt`` (checkpoints, below), ``backbone.pt``,
``results.json`` and, while a process trains in it, ``.lock``
(:func:`~.lock.lock_run_dir`: the pid and host of that process).

This module checks, creates and restarts the directory and reads its ``config.json``;
:mod:`.files` writes every file atomically and :mod:`.checkpoints` describes ``last.pt``.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from ..config import DERIVED_KEYS, TrainConfig, config_from_dict
from .files import atomic_write_json, check_out_path
from .lock import LOCK_NAME

__all__ = [
    "ATTEMPT_FILES",
    "RESUMABLE_OVERRIDES",
    "add_file_log",
    "check_run_dir",
    "clear_failed_attempt",
    "config_differences",
    "create_run_dir",
    "default_run_dir",
    "is_restartable",
    "read_run_config",
    "remove_file_log",
    "with_run_backend",
]

log = logging.getLogger("pyro_vje")

# Settings that may differ on --resume without changing the trajectory.
RESUMABLE_OVERRIDES = frozenset(
    {"progress", "num_workers", "tensorboard", "figures", "out", "device", "cache", "threads"}
)
#: the files a training attempt writes before its first checkpoint (see :func:`check_run_dir`).
ATTEMPT_FILES = ("config.json", "train.log", "metrics.jsonl", "metrics.csv", "tb", "figures")


def default_run_dir(config: TrainConfig) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{config.dataset}-{config.method}-{config.arch}-{stamp}"


def read_run_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The flat dict of a run's ``config.json`` (its settings; :data:`DERIVED_KEYS` dropped)."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: not a pyro-vje run directory")
    return {k: v for k, v in json.loads(path.read_text()).items() if k not in DERIVED_KEYS}


def with_run_backend(run_dir: str | os.PathLike, config: TrainConfig) -> TrainConfig:
    """``config`` with ``augment_backend="auto"`` replaced by the backend ``run_dir`` used
    (``per_image`` for runs from before the option), and ``amp="auto"`` by the precision it
    recorded (``auto`` for runs from before the record, which resolves as it did then), so a
    resumed run makes its views and computes as before."""
    recorded = read_run_config(run_dir)
    changes = {}
    if config.augment_backend == "auto":
        changes["augment_backend"] = recorded.get("augment_backend", "per_image")
    if config.amp == "auto":
        changes["amp"] = recorded.get("amp", "auto")
    return config_from_dict(changes, base=config) if changes else config


def config_differences(run_dir: str | os.PathLike, config: TrainConfig) -> str:
    """The settings in which ``config`` differs from ``run_dir``'s ``config.json``, as
    ``"key: run A vs now B, ..."`` ('' when none but :data:`RESUMABLE_OVERRIDES`)."""
    raw = read_run_config(run_dir)
    # the views are made as the run made them: runs from before augment_backend, per image
    raw.setdefault("augment_backend", "per_image")
    saved = config_from_dict(raw).to_dict()
    now = with_run_backend(run_dir, config).to_dict()
    differing = [k for k in {**saved, **now} if k not in RESUMABLE_OVERRIDES and saved.get(k) != now.get(k)]
    return ", ".join(f"{k}: run {saved.get(k)!r} vs now {now.get(k)!r}" for k in differing)


def is_restartable(run_dir: Path) -> bool:
    """A run that wrote ``config.json`` but failed before its first checkpoint (no ``last.pt``,
    ``best.pt`` or ``results.json``) and holds only :data:`ATTEMPT_FILES`: nothing to lose."""
    if not (run_dir / "config.json").is_file():
        return False
    return all(p.name in ATTEMPT_FILES or p.name == LOCK_NAME for p in run_dir.iterdir())


def check_run_dir(config: TrainConfig, resume: bool) -> tuple[Path, TrainConfig]:
    """Check (do not create yet) the run directory; return it and the config to use.

    A new run needs an empty or missing directory, or one of a run that failed
    before its first checkpoint (:func:`is_restartable`: it is restarted in place);
    a resumed one needs ``last.pt`` and the same config as ``config.json`` but for
    :data:`RESUMABLE_OVERRIDES`.
    """
    run_dir = check_out_path(config.out if config.out else default_run_dir(config))
    if resume:
        if not (run_dir / "last.pt").is_file():
            if run_dir.is_dir() and is_restartable(run_dir):
                raise FileNotFoundError(
                    f"cannot resume {run_dir}: it failed before its first checkpoint (no checkpoint "
                    "was written); run the same command without --resume to restart it in place"
                )
            raise FileNotFoundError(f"cannot resume: {run_dir / 'last.pt'} not found (give the run's --out)")
        config = with_run_backend(run_dir, config)
        detail = config_differences(run_dir, config)
        if detail:
            raise ValueError(f"cannot resume {run_dir} with a different config ({detail})")
        return run_dir, config
    if run_dir.exists() and any(run_dir.iterdir()) and not is_restartable(run_dir):
        if (run_dir / "last.pt").is_file():
            hint = f"continue it with pyro-vje train --resume --out {run_dir}, or choose another --out"
        else:
            hint = "choose another --out"
        raise FileExistsError(f"run directory {run_dir} already exists and is not empty: {hint}")
    return run_dir, config_from_dict({"out": str(run_dir)}, base=config)


def clear_failed_attempt(run_dir: Path) -> None:
    """Remove what a run that failed before its first checkpoint wrote (:func:`is_restartable`)."""
    import shutil

    if not (run_dir.is_dir() and is_restartable(run_dir)):
        return
    log.info("restarting %s: its previous attempt failed before the first checkpoint", run_dir)
    for name in ATTEMPT_FILES:
        p = run_dir / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def create_run_dir(run_dir: Path, config: TrainConfig, derived: dict[str, Any] | None = None) -> None:
    """Make ``run_dir`` and write ``config.json`` (the settings, then ``derived`` values)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json({**config.to_dict(), **(derived or {})}, run_dir / "config.json")


def add_file_log(run_dir: Path) -> logging.Handler:
    """Send the ``pyro_vje`` log to ``<run_dir>/train.log``; the caller removes the handler."""
    handler = logging.FileHandler(run_dir / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


def remove_file_log(handler: logging.Handler) -> None:
    log.removeHandler(handler)
    handler.close()
