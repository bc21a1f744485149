"""VJE's objective as a loss module on embeddings, for use in any training loop (lightly-style).

:class:`VJELoss` takes what a joint-embedding framework already has — the embeddings of two
views and the posterior of each — and returns the negative ELBO of Eq. 38, computed with the
Pyro model/guide of :class:`pyro_vje.model.VJE` (so it is exactly the loss ``pyro-vje train``
optimizes). Nothing else of pyro_vje is needed: bring your own encoder and inference head.
"""

from __future__ import annotations

import torch
from pyro.infer import ELBO
from torch import nn

from .distributions import PolarStudentT
from .model import VJE

__all__ = ["VJELoss"]


class VJELoss(nn.Module):
    r"""The negative ELBO of VJE (paper Eq. 38) on a batch of view pairs.

    For embeddings ``z1, z2`` of shape ``(N, D)`` (the two views' encoder outputs) and
    posteriors :math:`q_i(s) = N(\mathrm{loc}_i, \mathrm{diag}(\mathrm{scale}_i^2))`:

    .. math::

        \mathcal{L} = \frac{1}{2N}\sum_n \Big[\textstyle\sum_{(i, j)}
            -\log p_\psi(\mathrm{sg}(z_j) \mid s_i, \sigma_i^2)
            + \beta\, \mathrm{KL}(q_i \,\|\, N(0, I))\Big],
        \qquad s_i \sim q_i,

    over the two directions :math:`(i, j) \in \{(1, 2), (2, 1)\}`, with the likelihood
    :class:`~pyro_vje.distributions.PolarStudentT` (Eq. 31) including its normalizing
    constants (which Algorithm 4 omits; they do not depend on any input), the targets
    detached (stop-gradient), one reparameterized sample per posterior and the KL in closed
    form (``TraceMeanField_ELBO``, Eq. 34). Gradients reach ``loc`` and ``scale`` (through
    the sample, the KL and the likelihood's whitening) but not ``z1``/``z2`` directly: the
    encoder learns through the inference network that maps ``z`` to ``(loc, scale)``.

    Example, in a plain torch loop::

        criterion = VJELoss(df=3.0, beta=1.0)
        z1, z2 = backbone(x1), backbone(x2)          # (N, D) each
        (loc1, scale1), (loc2, scale2) = head(z1), head(z2)  # scale > 0
        loss = criterion(z1, z2, loc1, scale1, loc2, scale2)
        loss.backward()

    :param df: Student-t degrees of freedom :math:`\nu > 0` (``float('inf')`` allowed).
    :param beta: KL weight :math:`\beta \ge 0`; may be reassigned between steps (schedules).
    :param radial_scale: :math:`\sqrt{\lambda}` of the radial factor (paper: 1).
    :param elbo: ``"meanfield"`` (analytic KL, the paper's), ``"trace"`` or a Pyro ``ELBO``.
    :param num_particles: posterior samples per view.
    """

    def __init__(
        self,
        df: float = 3.0,
        beta: float | torch.Tensor = 1.0,
        radial_scale: float = 1.0,
        elbo: str | ELBO = "meanfield",
        num_particles: int = 1,
    ):
        super().__init__()
        # VJE's model/guide read only the embeddings and posteriors: identity networks
        self.vje = VJE(nn.Identity(), nn.Identity(), df, beta, radial_scale, elbo, num_particles)

    @property
    def df(self) -> float:
        return self.vje.df

    @property
    def radial_scale(self) -> float:
        return self.vje.radial_scale

    @property
    def beta(self) -> float | torch.Tensor:
        return self.vje.beta

    @beta.setter
    def beta(self, value: float | torch.Tensor) -> None:
        self.vje.beta = value

    def likelihood(self, s: torch.Tensor, scale: torch.Tensor) -> PolarStudentT:
        """The likelihood of Eq. 31 centred on ``s`` (see :meth:`pyro_vje.model.VJE.likelihood`)."""
        return self.vje.likelihood(s, scale)

    def forward(
        self,
        z1: torch.Tensor,
        z2: torch.Tensor,
        loc1: torch.Tensor,
        scale1: torch.Tensor,
        loc2: torch.Tensor,
        scale2: torch.Tensor,
    ) -> torch.Tensor:
        """The negative ELBO (a 0-d tensor); every argument has shape ``(N, D)``."""
        vje = self.vje
        return vje.elbo.differentiable_loss(vje.model, vje.guide, z1, z2, loc1, scale1, loc2, scale2)

    def extra_repr(self) -> str:
        return f"df={self.df}, beta={self.beta}, radial_scale={self.radial_scale}"
