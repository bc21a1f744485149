"""Learning-rate schedule (paper Section 5.2): linear warm-up, then cosine decay to 0."""

from __future__ import annotations

import math


def scaled_lr(base_lr: float, batch_size: int) -> float:
    """The linear scaling rule: ``base_lr`` is the rate for a batch of 256 (Goyal et al., 2017)."""
    return base_lr * batch_size / 256


def lr_at(step: int, total: int, warmup: int, base: float) -> float:
    """Rate at optimizer ``step`` (0-based) of ``total``: ``warmup`` linear steps, then cosine to 0."""
    if total < 1:
        raise ValueError(f"total steps must be >= 1, got {total}")
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * 0.5 * (1.0 + math.cos(math.pi * progress))
