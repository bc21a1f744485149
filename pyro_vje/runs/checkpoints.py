"""Checkpoints: ``last.pt`` (to resume) and ``best.pt`` (the best kNN epoch), read and found.

``last.pt`` is a dict of tensors and plain Python values only (loadable with
``torch.load(weights_only=True)``): model and optimizer state, the epoch and step
counters, the best metric so far, the resolved config, and every random-number
generator's state (torch, CUDA, NumPy, Python: :func:`rng_state`), so that ``--resume``
continues a run exactly. ``best.pt`` (written only when the kNN accuracy of z improves)
holds the model, config and counters but no optimizer or RNG state: it is for
``--checkpoint best``, not for resuming.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "CHECKPOINT_FORMAT",
    "CorruptCheckpointError",
    "load_checkpoint",
    "resolve_checkpoint",
    "rng_state",
    "set_rng_state",
    "to_cpu",
]

CHECKPOINT_FORMAT = 1


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


def resolve_checkpoint(path: str | os.PathLike, which: str = "last") -> Path:
    """A checkpoint file from a run directory (``last.pt`` or ``best.pt``) or a file path.

    ``which="best"`` on a run without ``best.pt`` (it is written at the first kNN evaluation:
    a run stopped before one, or a one-class run, has none) is an error, not ``last.pt``.
    """
    path = Path(path)
    if path.is_dir():
        if which not in ("best", "last"):
            raise ValueError(f"checkpoint must be best or last, got {which!r}")
        if (path / f"{which}.pt").is_file():
            return path / f"{which}.pt"
        if which == "best" and (path / "last.pt").is_file():
            raise FileNotFoundError(
                f"--checkpoint best: {path} has no best.pt (written at the run's first kNN evaluation, "
                "which it did not reach); use --checkpoint last for its last.pt"
            )
        raise FileNotFoundError(f"{path} holds no {which}.pt or last.pt: not a finished pyro-vje run?")
    if not path.is_file():
        raise FileNotFoundError(f"run directory or checkpoint {str(path)!r} not found")
    return path
