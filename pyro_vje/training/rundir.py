"""The run directory: its name, ``config.json``, ``train.log``, checkpoints and atomic writes.

A run directory (``config.out``, default ``runs/<dataset>-<method>-<arch>-<time>``)
holds ``config.json`` (the resolved, flat config), ``train.log``,
``metrics.jsonl``/``metrics.csv`` (:mod:`.logger`), ``last.pt``/``best.pt``
(checkpoints, below), ``backbone.pt`` and ``results.json``.

Every file is written through :func:`atomic_write`: to a temporary file in the
same folder, fsynced, then renamed over the target, so a crash at any moment
leaves either the old file or the new one, never a truncated mixture.

A checkpoint is a dict of tensors and plain Python values only (loadable with
``torch.load(weights_only=True)``): model and optimizer state, the epoch and step
counters, the best metric so far, the resolved config, and every random-number
generator's state (torch, CUDA, NumPy, Python), so that ``--resume`` continues
a run exactly.
"""

from __future__ import annotations

import json
import logging
import os
import random
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from .config import TrainConfig, config_from_dict

log = logging.getLogger("pyro_vje")

CHECKPOINT_FORMAT = 1
# Settings that may differ on --resume without changing the trajectory.
RESUMABLE_OVERRIDES = frozenset(
    {"progress", "num_workers", "tensorboard", "figures", "out", "device", "cache"}
)


# ----------------------------------------------------------------- atomic writes
def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(file)`` on a temporary file next to ``path``, fsync, rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return path


def atomic_write_text(text: str, path: str | os.PathLike) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def atomic_write_json(obj: Any, path: str | os.PathLike) -> Path:
    """``obj`` as indented JSON (with a final newline) at ``path``, atomically."""
    return atomic_write_text(json.dumps(obj, indent=2) + "\n", path)


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to ``path`` atomically."""
    atomic_write(path, lambda f: torch.save(obj, f))


# ------------------------------------------------------------------- checkpoints
def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; clear errors for missing or broken files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise ValueError(f"checkpoint {str(path)!r} could not be read ({err})") from err


def to_cpu(obj: Any) -> Any:
    """Tensors moved to the CPU, so that checkpoints load on machines without a GPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


def rng_state() -> dict[str, Any]:
    """All generator states, as tensors and plain values (``weights_only``-safe)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, py_state, gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": {"version": version, "state": list(py_state), "gauss": gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"].cpu())
    npst = state["numpy"]
    np.random.set_state(
        (npst["kind"], npst["keys"].numpy().astype(np.uint32), npst["pos"], npst["has_gauss"], npst["cached"])
    )
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda_states])


# ----------------------------------------------------------------- the directory
def default_run_dir(config: TrainConfig) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{config.dataset}-{config.method}-{config.arch}-{stamp}"


def read_run_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The flat dict of a run's ``config.json``."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: not a pyro-vje run directory")
    return json.loads(path.read_text())


def check_run_dir(config: TrainConfig, resume: bool) -> tuple[Path, TrainConfig]:
    """Check (do not create yet) the run directory; return it and the config to use.

    A new run needs an empty or missing directory; a resumed one needs ``last.pt``
    and the same config as ``config.json`` but for :data:`RESUMABLE_OVERRIDES`.
    """
    run_dir = Path(config.out) if config.out else default_run_dir(config)
    if resume:
        if not (run_dir / "last.pt").is_file():
            raise FileNotFoundError(f"cannot resume: {run_dir / 'last.pt'} not found (give the run's --out)")
        raw = read_run_config(run_dir)
        # the views are made as the run made them: runs from before augment_backend, per image
        raw.setdefault("augment_backend", "per_image")
        if config.augment_backend == "auto":
            config = config_from_dict({"augment_backend": raw["augment_backend"]}, base=config)
        saved = config_from_dict(raw).to_dict()
        now = config.to_dict()
        differing = [
            k for k in {**saved, **now} if k not in RESUMABLE_OVERRIDES and saved.get(k) != now.get(k)
        ]
        if differing:
            detail = ", ".join(f"{k}: run {saved.get(k)!r} vs now {now.get(k)!r}" for k in differing)
            raise ValueError(f"cannot resume {run_dir} with a different config ({detail})")
        return run_dir, config
    if run_dir.exists() and any(run_dir.iterdir()):
        raise FileExistsError(
            f"run directory {run_dir} already exists and is not empty: pass --resume to continue it "
            "or choose another --out"
        )
    return run_dir, config_from_dict({"out": str(run_dir)}, base=config)


def create_run_dir(run_dir: Path, config: TrainConfig) -> None:
    """Make ``run_dir`` and write ``config.json``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(config.to_dict(), run_dir / "config.json")


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
