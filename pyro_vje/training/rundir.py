"""The run directory: its name, ``config.json``, ``train.log``, checkpoints and atomic writes.

A run directory (``config.out``, default ``runs/<dataset>-<method>-<arch>-<time>``)
holds ``config.json`` (the resolved, flat config, plus the derived values of
:data:`~.config.DERIVED_KEYS`), ``train.log``, ``metrics.jsonl``/``metrics.csv``
(:mod:`.logger`), ``last.pt``/``best.pt`` (checkpoints, below), ``backbone.pt``,
``results.json`` and, while a process trains in it, ``.lock``
(:func:`lock_run_dir`: the pid and host of that process).

Every file is written through :func:`atomic_write`: to a temporary file in the
same folder, fsynced, then renamed over the target, so a crash at any moment
leaves either the old file or the new one, never a truncated mixture; its mode
follows the umask like any other file's (0644 under the usual 022).

``last.pt`` is a dict of tensors and plain Python values only (loadable with
``torch.load(weights_only=True)``): model and optimizer state, the epoch and step
counters, the best metric so far, the resolved config, and every random-number
generator's state (torch, CUDA, NumPy, Python), so that ``--resume`` continues
a run exactly. ``best.pt`` (written only when the kNN accuracy of z improves)
holds the model, config and counters but no optimizer or RNG state: it is
for ``--checkpoint best``, not for resuming.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from .config import DERIVED_KEYS, TrainConfig, config_from_dict

log = logging.getLogger("pyro_vje")

CHECKPOINT_FORMAT = 1
# Settings that may differ on --resume without changing the trajectory.
RESUMABLE_OVERRIDES = frozenset(
    {"progress", "num_workers", "tensorboard", "figures", "out", "device", "cache", "threads"}
)
#: the files a training attempt writes before its first checkpoint (see :func:`check_run_dir`).
ATTEMPT_FILES = ("config.json", "train.log", "metrics.jsonl", "metrics.csv", "tb", "figures")
LOCK_NAME = ".lock"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ----------------------------------------------------------------- atomic writes
def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(file)`` on a temporary file next to ``path``, fsync, rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 -> what open() would give
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
class CorruptCheckpointError(ValueError):
    """A checkpoint file that ``torch.load(weights_only=True)`` cannot read."""


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; clear errors for missing or broken files.

    A file that does not load is reported as corrupt (torch's own message, which
    suggests the unsafe ``weights_only=False``, is not passed on), pointing to
    ``best.pt`` when the same folder has one.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        what = f"checkpoint {str(path)!r} is corrupt or not a pyro-vje checkpoint ({type(err).__name__})"
        best = path.parent / "best.pt"
        if path.name != "best.pt" and best.is_file():
            what += f"; {best} holds the best epoch's weights: use --checkpoint best (evaluate, embed, score)"
        raise CorruptCheckpointError(what) from None


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


def check_out_path(path: str | os.PathLike) -> Path:
    """``path`` as a folder to write in: an error naming it if it or a parent is a file."""
    path = Path(path)
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                raise FileExistsError(f"--out {path}: {p} is a file, not a directory; choose another --out")
            break
    return path


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


# ----------------------------------------------------------------------- the lock
class RunDirLockedError(FileExistsError):
    """Another live process trains in the run directory (its lock file exists)."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunDirLock:
    """A held ``<run_dir>/.lock``; :meth:`release` removes it (only if it is still ours)."""

    def __init__(self, path: Path):
        self.path = path

    def release(self) -> None:
        try:
            if json.loads(self.path.read_text()).get("pid") == os.getpid():
                self.path.unlink()
        except (OSError, ValueError):
            pass


def lock_run_dir(run_dir: str | os.PathLike) -> RunDirLock:
    """Create ``<run_dir>/.lock`` with this process's pid and host, atomically (``O_EXCL``).

    A lock held by a live process is refused with :class:`RunDirLockedError`
    naming it; a stale one (its pid dead on this host, or this very process:
    a trainer that was never closed) is taken over; one from another host
    cannot be checked and is refused, saying how to remove it.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_NAME
    host = socket.gethostname()
    record = json.dumps({"pid": os.getpid(), "host": host}) + "\n"
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            try:
                held = json.loads(path.read_text())
                pid, held_host = int(held["pid"]), str(held["host"])
            except (OSError, ValueError, KeyError, TypeError):
                pid, held_host = -1, host  # unreadable (a crash mid-write): stale
            if held_host != host:
                raise RunDirLockedError(
                    f"run directory {run_dir} is in use by process {pid} on {held_host} (lock file {path}); "
                    "if that process is gone, remove the lock file"
                ) from None
            if pid > 0 and pid != os.getpid() and _pid_alive(pid):
                raise RunDirLockedError(
                    f"run directory {run_dir} is in use by process {pid} on {host} (lock file {path}); "
                    "wait for it to finish or stop it"
                ) from None
            log.warning("taking over the stale lock %s (process %d is gone)", path, pid)
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(record)
        return RunDirLock(path)
    raise RunDirLockedError(f"could not take the lock {path}: another process keeps taking it")


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
