"""CPU threads: the policy every ``pyro_vje`` process applies before torch starts its thread pool.

torch's CPU kernels run on an OpenMP pool (GNU libgomp in the pip wheels). Between parallel
regions its idle threads *spin* for a while, by default, waiting for the next one. On a
machine where nothing else runs that saves a wake-up; with one other busy process on the
same cores (a second training run, a test suite, a browser) the spinning threads take the
cores the working ones need, and a job can run 2-6x slower (docs/results.md, "CPU threads").
``OMP_WAIT_POLICY=PASSIVE`` makes idle threads sleep instead: measured on 2 cores it keeps a
run within ~1.1-1.3x of its idle time beside a busy process, and costs nothing idle on the
digits job, ~5 % on a 2-thread CIFAR-subset epoch (inside the runs' spread).

:func:`apply_wait_policy` sets ``OMP_WAIT_POLICY=PASSIVE`` unless the user has set it. OpenMP
reads the variable once, when torch's library loads, so it must run before ``import torch``:
``import pyro_vje`` (and so ``pyro-vje`` and ``python -m pyro_vje``) calls it first thing.
A program that imports torch before pyro_vje keeps OpenMP's default: set the variable in the
shell (``export OMP_WAIT_POLICY=PASSIVE``) there. The number of threads is torch's own (one
per core) unless a run's ``threads`` setting, or ``OMP_NUM_THREADS``, says otherwise
(:func:`set_threads`).

This module imports nothing heavy: ``pyro_vje/__init__.py`` runs it before anything else.
"""

from __future__ import annotations

import os
import sys

__all__ = ["WAIT_POLICY", "apply_wait_policy", "set_threads", "wait_policy_state"]

#: the OpenMP wait policy the package applies when the user has set none.
WAIT_POLICY = "PASSIVE"


def apply_wait_policy(environ: dict[str, str] | None = None) -> str:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` in ``environ`` (default ``os.environ``) unless it is set.

    Returns what happened: ``"applied"``, ``"user"`` (the user's own value is kept) or
    ``"too late"`` (torch was already imported, so OpenMP has read its settings: nothing is
    changed, since a variable that no longer acts would only mislead).
    """
    env = os.environ if environ is None else environ
    if "OMP_WAIT_POLICY" in env:
        return "user"
    if "torch" in sys.modules:
        return "too late"
    env["OMP_WAIT_POLICY"] = WAIT_POLICY
    return "applied"


def wait_policy_state() -> str:
    """The wait policy in force, for logs: ``"PASSIVE"``, another value set by the user, or
    ``"OpenMP's default (active spinning)"``."""
    return os.environ.get("OMP_WAIT_POLICY", "OpenMP's default (active spinning)")


def set_threads(threads: int | None) -> int:
    """torch's intra-op threads: ``threads`` when given (>= 1), else left as torch chose them
    (``OMP_NUM_THREADS``, or one per core). Returns the number in force."""
    import torch

    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a positive int or None, got {threads!r}")
        torch.set_num_threads(threads)
    return torch.get_num_threads()
