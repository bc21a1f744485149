"""Frozen features of a data set: what kNN, linear probes, ``embed`` and scoring read."""

from __future__ import annotations

import contextlib

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..progress import progress_bar


def autocast(device: torch.device, amp: str):
    """bf16 autocast for ``amp="bf16"`` (or ``"auto"`` on CUDA); a no-op context otherwise."""
    if amp == "bf16" or (amp == "auto" and device.type == "cuda"):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def extract_features(
    method: nn.Module,
    loader: DataLoader,
    device: torch.device,
    *,
    amp: str = "none",
    channels_last: bool = False,
    progress: bool = False,
    desc: str = "features",
    keep_pixels: bool = False,
) -> dict[str, torch.Tensor]:
    """``method.features`` of every batch in ``loader`` (in eval mode), concatenated on the
    CPU in float32, plus ``"labels"``, and with ``keep_pixels`` the (transformed) images
    flattened to ``(N, C*H*W)`` float32 as ``"pixels"`` (what :func:`flatten_pixels` returns,
    from the same pass)."""
    was_training = method.training
    method.eval()
    parts: dict[str, list[torch.Tensor]] = {}
    labels = []
    try:
        for x, y in progress_bar(loader, enabled=progress, desc=desc, leave=False, unit="batch"):
            if keep_pixels:
                parts.setdefault("pixels", []).append(x.flatten(1).float().cpu())
            x = x.to(device, non_blocking=True)
            if channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(device, amp):
                feats = method.features(x)
            for key, value in feats.items():
                parts.setdefault(key, []).append(value.float().cpu())
            labels.append(torch.as_tensor(y).cpu())
    finally:
        method.train(was_training)
    if not labels:
        raise ValueError(f"{desc}: the data loader yielded no batches")
    out = {key: torch.cat(values) for key, values in parts.items()}
    out["labels"] = torch.cat(labels).long()
    return out


def flatten_pixels(loader: DataLoader) -> tuple[torch.Tensor, torch.Tensor]:
    """The (transformed) images of ``loader`` flattened to ``(N, C*H*W)`` float32, and their labels:
    the raw-pixel features of the training-free baselines."""
    xs, ys = zip(*[(x.flatten(1), torch.as_tensor(y)) for x, y in loader])
    return torch.cat(xs).float(), torch.cat(ys).long()
