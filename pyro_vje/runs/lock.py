"""The run directory's lock: ``.lock`` holds the pid and host of the process training in it."""

from __future__ import annotations

import json
import logging
import os
import socket
from pathlib import Path

__all__ = ["LOCK_NAME", "RunDirLock", "RunDirLockedError", "lock_run_dir"]

log = logging.getLogger("pyro_vje")

LOCK_NAME = ".lock"


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
