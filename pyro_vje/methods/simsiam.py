r"""SimSiam (Chen & He, 2021): a predictor, a stop-gradient and the negative cosine.

Loss (their Eq. 1-2; docs/methods.md)::

    D(p, z) = - <p / ||p||, sg(z) / ||sg(z)||>
    L = D(p1, z2) / 2 + D(p2, z1) / 2,      z_i = g(f(x_i)),  p_i = h(z_i)

with f the encoder, g the projector (CIFAR recipe: two 2048-wide linear layers,
BatchNorm after each, no ReLU at the output) and h the predictor (2048 -> 512 -> 2048,
BatchNorm and ReLU on the bottleneck).

Example::

    >>> p1, p2, z1, z2 = (torch.randn(8, 16) for _ in range(4))
    >>> loss = simsiam_loss(p1, p2, z1, z2)   # in [-1, 1]; -1 when p_i is parallel to z_j
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import TwoViewMethod
from .mlp_heads import mlp, simsiam_projector
from .options import SimSiamOptions

__all__ = ["SimSiam", "SimSiamOptions", "negative_cosine", "simsiam_loss"]


def negative_cosine(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    r"""SimSiam Eq. 1: :math:`D(p, z) = -\frac1N\sum_n \frac{p_n^\top \mathrm{sg}(z_n)}{\|p_n\| \|z_n\|}`."""
    return -F.cosine_similarity(p, z.detach(), dim=-1).mean()


def simsiam_loss(p1: torch.Tensor, p2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    r"""The symmetric SimSiam loss :math:`\tfrac12 D(p_1, z_2) + \tfrac12 D(p_2, z_1)` (Eq. 2)."""
    return 0.5 * negative_cosine(p1, z2) + 0.5 * negative_cosine(p2, z1)


class SimSiam(TwoViewMethod):
    """SimSiam on an encoder: ``training_loss`` is :func:`simsiam_loss`; features ``z`` = f(x).

    :param encoder: the backbone f, with ``.dim`` (e.g. ``build_encoder("resnet18", cifar_stem=True)``).
    :param options: :class:`SimSiamOptions`.
    """

    def __init__(self, encoder: nn.Module, options: SimSiamOptions | None = None):
        super().__init__(encoder)
        self.options = options if options is not None else SimSiamOptions()
        self.options.validate()
        o = self.options
        self.projector = simsiam_projector(self.dim, o.proj_dim, o.proj_layers)
        self.predictor = mlp(o.proj_dim, o.pred_hidden, o.proj_dim, 2, bias=False)

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z, p)``: the projection g(f(x)) and the prediction h(g(f(x)))."""
        z = self.projector(self.encode(x))
        return z, self.predictor(z)

    def training_loss(
        self, x1: torch.Tensor, x2: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        self.check_views(x1, x2)
        z1, p1 = self.project(x1)
        z2, p2 = self.project(x2)
        loss = simsiam_loss(p1, p2, z1, z2)
        with torch.no_grad():
            # SimSiam's collapse monitor: std of the l2-normalized projection, ~1/sqrt(d) when healthy
            z_std = F.normalize(z1.float(), dim=-1).std(0).mean()
        return loss, {"neg_cos": loss.detach(), "z_std": z_std}
