"""Progress bars: every bar of the package comes from :func:`progress_bar`.

On a terminal a bar redraws in place as usual. Off a terminal (a log file, a pipe, a
batch job) each redraw is a new line, so the bars there are throttled to one update
every :data:`OFF_TTY_INTERVAL_S` seconds: a long job still shows progress in its log,
and the default digits run writes a handful of lines instead of one per step.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import IO, Any

from tqdm.auto import tqdm

OFF_TTY_INTERVAL_S = 30.0
"""Seconds between two updates of a bar that writes to a file or pipe."""


def _is_terminal(stream: IO[str] | None) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (ValueError, OSError):  # a closed stream
        return False


def progress_bar(iterable: Iterable[Any] | None = None, *, enabled: bool = True, **kwargs: Any) -> tqdm:
    """A ``tqdm`` bar over ``iterable``; none at all when ``enabled`` is false, throttled off a TTY.

    ``kwargs`` go to ``tqdm`` (``desc``, ``total``, ``unit``, ``leave``, ``file``...).
    """
    if not enabled:
        kwargs["disable"] = True
    elif not _is_terminal(kwargs.get("file", sys.stderr)):
        kwargs.setdefault("mininterval", OFF_TTY_INTERVAL_S)
        kwargs.setdefault("maxinterval", max(OFF_TTY_INTERVAL_S, kwargs["mininterval"]))
    return tqdm(iterable, **kwargs)
