"""What every two-view method shares: the encoder check, the view check, option validation."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
from torch import nn

__all__ = ["MethodOptions", "TwoViewMethod"]


@dataclasses.dataclass
class MethodOptions:
    """Base of the per-method option dataclasses (each method owns its options).

    Subclasses list their fields and call the checks below from :meth:`validate`.
    """

    def validate(self):
        """Raise ``ValueError`` naming the first bad field; return ``self``."""
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def _positive_int(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{type(self).__name__}.{name} must be a positive int, got {value!r}")

    def _positive(self, *names: str, allow_zero: bool = False) -> None:
        for name in names:
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            ok = ok and (value >= 0 if allow_zero else value > 0)
            if not ok:
                bound = ">= 0" if allow_zero else "> 0"
                raise ValueError(
                    f"{type(self).__name__}.{name} must be a finite number {bound}, got {value!r}"
                )


class TwoViewMethod(nn.Module):
    """An encoder f with ``.dim`` and the trainer's interface (``training_loss``, ``features``).

    Subclasses implement ``training_loss(x1, x2) -> (loss, terms)`` and may extend
    :meth:`features`; :meth:`encode` and :meth:`check_views` give every method the
    same error messages.
    """

    def __init__(self, encoder: nn.Module):
        super().__init__()
        dim = getattr(encoder, "dim", None)
        if not isinstance(dim, int) or dim < 1:
            raise ValueError(
                f"{type(self).__name__}: the encoder must expose its embedding dimension as .dim "
                f"(every encoder of pyro_vje.networks.build_encoder does), got {dim!r}"
            )
        self.encoder = encoder
        self.dim = dim

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``z = f(x)``, checked to be ``(N, D)``."""
        z = self.encoder(x)
        if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[1] != self.dim:
            shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(
                f"{type(self).__name__}: the encoder must return embeddings of shape "
                f"(N, {self.dim}), got {shape}"
            )
        return z

    def check_views(self, x1: torch.Tensor, x2: torch.Tensor) -> None:
        if x1.shape != x2.shape:
            raise ValueError(
                f"{type(self).__name__}: the two views must have the same shape, got "
                f"{tuple(x1.shape)} and {tuple(x2.shape)}"
            )
        if x1.shape[0] < 2:
            raise ValueError(f"{type(self).__name__}: a batch needs at least 2 samples, got {x1.shape[0]}")

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Frozen features: ``z``, the encoder output (call in eval mode)."""
        return {"z": self.encode(x)}
