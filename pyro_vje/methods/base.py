"""What every two-view method shares: the encoder check and the view check."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["TwoViewMethod"]


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
