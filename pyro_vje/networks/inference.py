"""The amortized inference network g_phi (paper Sections 3 and 5.1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pyro.nn import PyroModule
from torch import nn

#: Appendix A ("Stability"): the floor added to the softplus variance,
#: ``sigma^2 = softplus(h) + MIN_VAR`` — "a small constant (e.g. 1e-6)". It keeps the
#: posterior (and the likelihood's per-feature scale, which is the same sigma) away from
#: zero. The same value as, but independent of, the norm floor in ``distributions.normalize``.
MIN_VAR = 1e-6

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}


def _at_least_float32(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.promote_types(x.dtype, torch.float32))


class InferenceNetwork(PyroModule):
    r"""Maps an embedding ``z`` (``(N, D)``) to the posterior ``(loc, scale)`` of q(s | z).

    Section 5.1: a bottleneck MLP of ``depth`` (default three) layers, each
    ``Linear -> LayerNorm -> activation`` (``D -> hidden -> hidden -> hidden``),
    followed by two linear heads ``hidden -> D``: one for the posterior mean
    :math:`\mu`, one for the variance,
    :math:`\sigma^2 = \mathrm{softplus}(h) + \text{min\_var}` (Appendix A:
    softplus and a floor of 1e-6). Returns ``(mu, sigma)`` — the standard
    deviation, Pyro's convention — computed in float32 or wider even under
    bfloat16 autocast, so the floor is not rounded away.

    The paper uses ``hidden = 128`` for ResNet-18 (D = 512) and 512 for
    ResNet-50 (D = 2048).

    :param dim: embedding dimension D.
    :param hidden: bottleneck width.
    :param depth: number of hidden layers (>= 1).
    :param activation: ``"relu"``, ``"gelu"`` or ``"silu"``.
    :param min_var: floor added to the softplus variance (default :data:`MIN_VAR`).
    """

    def __init__(
        self,
        dim: int,
        hidden: int = 128,
        depth: int = 3,
        activation: str = "relu",
        min_var: float = MIN_VAR,
    ):
        super().__init__()
        if dim < 1 or hidden < 1 or depth < 1:
            raise ValueError(
                f"InferenceNetwork needs dim, hidden and depth >= 1, got {dim}, {hidden}, {depth}"
            )
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"InferenceNetwork: unknown activation {activation!r}; choose from {sorted(_ACTIVATIONS)}"
            )
        if not min_var > 0:
            raise ValueError(f"InferenceNetwork: min_var must be > 0, got {min_var}")
        self.dim = dim
        self.min_var = float(min_var)
        layers: list[nn.Module] = []
        width = dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.LayerNorm(hidden), _ACTIVATIONS[activation]()]
            width = hidden
        self.trunk = nn.Sequential(*layers)
        self.loc_head = nn.Linear(hidden, dim)
        self.var_head = nn.Linear(hidden, dim)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if z.dim() != 2 or z.shape[-1] != self.dim:
            raise ValueError(
                f"InferenceNetwork expects embeddings of shape (N, {self.dim}), got {tuple(z.shape)}"
            )
        h = self.trunk(z)
        loc = _at_least_float32(self.loc_head(h))
        var = F.softplus(_at_least_float32(self.var_head(h))) + self.min_var  # Appendix A
        return loc, var.sqrt()
