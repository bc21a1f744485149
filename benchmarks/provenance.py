"""Where a figure came from: commit, machine, date and versions (recorded with every benchmark)."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import date
from pathlib import Path

import torch

_ROOT = Path(__file__).resolve().parents[1]


def git_commit(root: str | os.PathLike = _ROOT) -> str:
    """Short hash of HEAD (with ``+dirty`` for uncommitted changes), or ``"unknown"``."""
    try:
        commit = subprocess.check_output(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, text=True, stderr=subprocess.DEVNULL
        ).strip()
        dirty = subprocess.run(
            ["git", "diff", "--quiet", "HEAD"], cwd=root, stderr=subprocess.DEVNULL
        ).returncode
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(device: torch.device | str | None = None) -> dict[str, str | int]:
    """``commit``, ``machine`` (CPU model and cores, GPU model when ``device`` is CUDA), ``date``,
    ``torch`` and ``pyro`` versions."""
    import pyro

    machine = f"{cpu_model()}, {os.cpu_count()} cores"
    device = torch.device(device) if device is not None else None
    if device is not None and device.type == "cuda":
        machine += f", {torch.cuda.get_device_name(device)}"
    return {
        "commit": git_commit(),
        "machine": machine,
        "date": date.today().isoformat(),
        "torch": torch.__version__,
        "pyro": pyro.__version__,
        "threads": torch.get_num_threads(),
    }
