"""Mixed precision: what ``amp: auto`` means on each device, decided once and recorded.

* CUDA: ``auto`` is bf16 autocast (the paper's GPU setting).
* CPU: ``auto`` is float32. bf16 on a CPU is fast only with native bf16 instructions
  (AVX-512 BF16 or AMX): measured 2.3x faster per epoch than float32 on an Intel Xeon with
  them (issue 12), and 6-8x *slower* on an AMD EPYC with AVX2 only (docs/results.md,
  "bf16 on CPU"). Whether bf16 changes what is learned has not been measured on a CPU with
  native support yet, so ``auto`` does not pick it on any CPU; ``--amp bf16`` asks for it,
  and on a CPU without native support that request is warned about.

A new run records the resolved choice (``bf16`` or ``none``) in ``config.json``, so a resumed
run keeps it whatever machine it resumes on (:func:`~pyro_vje.runs.rundir.with_run_backend`).
"""

from __future__ import annotations

import logging
import warnings
from functools import cache
from pathlib import Path

import torch

__all__ = ["cpu_bf16_native", "resolve_amp"]

log = logging.getLogger("pyro_vje")

#: /proc/cpuinfo flags of native bf16 arithmetic (AVX-512 BF16; AMX's bf16 tiles).
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@cache
def cpu_bf16_native(cpuinfo: str | None = None) -> bool:
    """Whether this CPU computes bf16 natively: oneDNN supports bf16 here and the CPU has one of
    :data:`NATIVE_BF16_FLAGS` (read from ``/proc/cpuinfo``, or ``cpuinfo``'s text; False where
    neither can be read)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    flags = {flag for line in cpuinfo.splitlines() if line.startswith("flags") for flag in line.split()}
    try:
        onednn = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        onednn = False
    return onednn and bool(flags & NATIVE_BF16_FLAGS)


def resolve_amp(amp: str, device: torch.device) -> str:
    """``amp`` (``auto``, ``bf16``, ``none``) as it runs on ``device``: ``"bf16"`` or ``"none"``."""
    if amp == "none":
        return "none"
    if device.type == "cuda":
        return "bf16"
    if amp == "bf16":
        if device.type == "cpu" and not cpu_bf16_native():
            message = (
                "amp bf16 on a CPU without native bf16 (no AVX-512 BF16 or AMX): it is emulated and "
                "measured 6-8x slower than float32 on such a CPU (docs/results.md); use --amp none"
            )
            warnings.warn(message, stacklevel=2)
            log.warning(message)
        return "bf16"
    return "none"  # auto on a CPU: see the module docstring
