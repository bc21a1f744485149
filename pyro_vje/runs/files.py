"""Writing a run's files: atomically, as valid JSON, into a folder that can hold them.

Every file of a run directory (and of a protocol's output folder) is written through
:func:`atomic_write`: to a temporary file in the same folder, fsynced, then renamed over
the target, so a crash at any moment leaves either the old file or the new one, never a
truncated mixture; its mode follows the umask like any other file's (0644 under the usual
022). :func:`json_safe` makes results (nan, inf, paths) valid JSON.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

__all__ = [
    "atomic_save",
    "atomic_write",
    "atomic_write_json",
    "atomic_write_text",
    "check_out_path",
    "json_safe",
    "json_scalar",
]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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


def json_scalar(value: Any) -> Any:
    """A nan or inf float as a string (JSON has neither); any other value unchanged."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no nan/inf
    return value


def json_safe(obj: Any) -> Any:
    """``obj`` with nan/inf floats as strings (valid JSON), paths and other objects as ``str``."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, float):
        return json_scalar(obj)
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    return str(obj)


def check_out_path(path: str | os.PathLike) -> Path:
    """``path`` as a folder to write in: an error naming it if it or a parent is a file."""
    path = Path(path)
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                raise FileExistsError(f"--out {path}: {p} is a file, not a directory; choose another --out")
            break
    return path
