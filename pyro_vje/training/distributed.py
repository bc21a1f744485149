"""Multi-GPU / multi-node training through ``torchrun`` and ``DistributedDataParallel``.

Launch with ``torchrun --nproc_per_node=N -m pyro_vje train ...``; torchrun's
environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``...)
is read here. The backend is NCCL on CUDA and gloo on CPU. Rank 0 logs and
writes checkpoints; the global batch is split evenly over the processes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

T = TypeVar("T")


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group torchrun set up (no-op for a single process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        if device_type == "cuda":
            torch.cuda.set_device(local_rank)
        # rank 0 evaluates while the others wait: allow long evaluations (ImageNet kNN)
        timeout = timedelta(minutes=int(os.environ.get("PYRO_VJE_DIST_TIMEOUT_MIN", "120")))
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo", timeout=timeout)
    return DistInfo(rank=rank, local_rank=local_rank, world_size=world)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def all_reduce_mean(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """The mean of ``tensor`` over processes (the tensor itself for one process)."""
    if not info.enabled:
        return tensor
    out = tensor.clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / info.world_size


def any_true(flag: bool, device: torch.device, info: DistInfo) -> bool:
    """Whether ``flag`` holds on any process (so all stop together)."""
    if not info.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def broadcast_object(obj, info: DistInfo):
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def on_main(fn: Callable[[], T], info: DistInfo) -> T:
    """Run ``fn`` on rank 0 and hand its result, or its error, to every rank (so none hangs)."""
    result: Any = None
    error: BaseException | None = None
    if info.is_main:
        try:
            result = fn()
        except Exception as err:  # re-raised on every rank below
            error = err
    if info.enabled:
        result, error = broadcast_object((result, error), info)
    if error is not None:
        raise error
    return result


def resolve_device(name: str, dist: DistInfo | None = None) -> torch.device:
    """``auto`` (CUDA when visible), ``cpu``, ``cuda`` or ``cuda:N``; under torchrun, the local GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"unknown device {name!r} (use auto, cpu, cuda or cuda:N)") from err
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} requested but CUDA is not available")
        if dist is not None and dist.enabled:
            device = torch.device("cuda", dist.local_rank)
    elif device.type != "cpu":
        raise ValueError(f"unsupported device {name!r} (use auto, cpu, cuda or cuda:N)")
    return device


class TrainStep(nn.Module):
    """``forward(x1, x2) = method.training_loss(x1, x2)``: what DistributedDataParallel wraps,
    since DDP synchronizes gradients for computations that run through ``forward``."""

    def __init__(self, method: nn.Module):
        super().__init__()
        self.method = method

    def forward(
        self, x1: torch.Tensor, x2: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict]:
        if labels is not None:  # a method with uses_labels (the supervised reference)
            return self.method.training_loss(x1, x2, labels)
        return self.method.training_loss(x1, x2)
