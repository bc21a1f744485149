"""Unreadable image files: a clear error naming the file, a scan of a tree, and skipping them.

An ImageFolder tree may hold a zero-byte or corrupt file. Reading it through
:func:`load_image` raises :class:`UnreadableImageError` (a ``ValueError``) that names the
file, instead of PIL's ``UnidentifiedImageError`` traceback. :func:`scan_images` checks a
tree before a long run (``pyro-vje check-data DIR``): each file is opened and
``verify()``-ed by PIL, which reads the header and the compressed data without decoding
pixels. :func:`readable_samples` drops the unreadable files of a sample list (the
``skip_unreadable`` setting), returning how many it dropped.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from PIL import Image
from torchvision.datasets.folder import IMG_EXTENSIONS

__all__ = [
    "UnreadableImageError",
    "image_problem",
    "image_paths",
    "load_image",
    "readable_samples",
    "scan_images",
    "take_skip_messages",
    "warn_skipped",
]

_WARNED: set[str] = set()
_PENDING: list[str] = []

HINT = "run 'pyro-vje check-data DIR' to list every unreadable file, or --skip-unreadable to leave them out"


class UnreadableImageError(ValueError):
    """An image file that PIL cannot read; the message names it and the way out."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"unreadable image {self.path}: {reason}; {HINT}")


def _reason(err: Exception) -> str:
    text = str(err).split("\n", 1)[0]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def load_image(path: str | os.PathLike) -> Image.Image:
    """The RGB image at ``path`` (torchvision's ``default_loader`` with PIL), or
    :class:`UnreadableImageError` naming the file."""
    try:
        if os.path.getsize(path) == 0:
            raise UnreadableImageError(path, "empty file (0 bytes)")
        with open(path, "rb") as f:
            image = Image.open(f)
            return image.convert("RGB")
    except UnreadableImageError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise UnreadableImageError(path, _reason(err)) from None


def image_problem(path: str | os.PathLike) -> str | None:
    """Why PIL cannot read ``path`` (open + ``verify()``, no pixel decoding), or None if it can."""
    try:
        if os.path.getsize(path) == 0:
            return "empty file (0 bytes)"
        with Image.open(path) as image:
            image.verify()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        return _reason(err)
    return None


def image_paths(root: str | os.PathLike) -> list[str]:
    """Every file under ``root`` with an image extension ImageFolder reads, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a directory")
    return sorted(
        os.path.join(folder, name)
        for folder, _, names in os.walk(root)
        for name in names
        if name.lower().endswith(IMG_EXTENSIONS)
    )


def scan_images(paths: Iterable[str | os.PathLike]) -> tuple[int, list[tuple[str, str]]]:
    """How many of ``paths`` were checked, and ``(path, reason)`` for each unreadable one."""
    checked, bad = 0, []
    for path in paths:
        checked += 1
        problem = image_problem(path)
        if problem is not None:
            bad.append((str(path), problem))
    return checked, bad


def readable_samples(samples: Sequence[tuple[str, int]]) -> tuple[list[tuple[str, int]], list[str]]:
    """``samples`` (ImageFolder's ``(path, label)`` list) without the unreadable files, and those files."""
    kept: list[tuple[str, int]] = []
    dropped: list[str] = []
    for path, label in samples:
        if image_problem(path) is None:
            kept.append((path, label))
        else:
            dropped.append(path)
    return kept, dropped


def warn_skipped(what: str, folder: str | os.PathLike, dropped: Sequence[str]) -> None:
    """Say that ``dropped`` unreadable files of ``folder`` were left out: on stderr once per
    process (a run opens its training folder for the training set and again for the kNN bank),
    and keep the message for :func:`take_skip_messages` (the trainer writes it to train.log,
    whose folder does not exist yet while the data are built)."""
    if not dropped:
        return
    message = f"{what}: skipped {len(dropped)} unreadable image(s) of {folder} (first: {dropped[0]})"
    if message not in _PENDING:
        _PENDING.append(message)
    if message not in _WARNED:
        _WARNED.add(message)
        print(f"warning: {message}", file=sys.stderr)


def take_skip_messages() -> list[str]:
    """The messages of :func:`warn_skipped` since the last call, in order (and forget them)."""
    messages = list(_PENDING)
    _PENDING.clear()
    return messages
