"""VJE as a Pyro model/guide pair (paper Section 4.4, Eq. 32-38)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer import ELBO, Trace_ELBO, TraceMeanField_ELBO
from pyro.nn import PyroModule
from torch import nn
from torch.distributions import kl_divergence

from .distributions import PolarStudentT
from .networks import InferenceNetwork, ProjectedEncoder

__all__ = ["LOSS_TERMS", "VJE", "InferenceNetwork", "check_terms"]

#: The terms of Eq. 10 (Table 6): directional and radial likelihood factors, KL.
LOSS_TERMS: tuple[str, ...] = ("dir", "rad", "kl")

_ELBOS: dict[str, Callable[..., ELBO]] = {
    "meanfield": TraceMeanField_ELBO,  # analytic KL, as the paper (Eq. 34)
    "trace": Trace_ELBO,  # Monte-Carlo KL
}


def _as_float(value) -> float:
    return float(value.detach()) if isinstance(value, torch.Tensor) else float(value)


def _check_float(name: str, value, *, allow_zero: bool, allow_inf: bool = False) -> float | torch.Tensor:
    as_float = _as_float(value)
    if math.isnan(as_float) or as_float < 0 or (as_float == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"VJE: {name} must be {bound}, got {as_float}")
    if math.isinf(as_float) and not allow_inf:
        raise ValueError(f"VJE: {name} must be finite, got {as_float}")
    return value


class VJE(PyroModule):
    r"""Variational Joint Embedding: encoder, inference network and the ELBO.

    For two views ``x1, x2`` the encoder gives ``z_i = f(x_i)`` and the
    inference network the posterior :math:`q_i(s) = N(\mu_i, \mathrm{diag}(\sigma_i^2))`.
    :meth:`model` and :meth:`guide` (same signature) write Eq. 37 as a Pyro
    program with latent sites ``"s1"``, ``"s2"`` and observed sites ``"z2"``
    (explained by ``s1``) and ``"z1"`` (explained by ``s2``), all in a
    ``pyro.plate("batch", N)``:

    * model: :math:`s_i \sim N(0, I)` under ``poutine.scale(beta)``, then
      ``z_j.detach()`` observed under ``PolarStudentT(df, s_i, sigma_i, radial_scale)``;
    * guide: :math:`s_i \sim N(\mu_i, \sigma_i)` under the same ``poutine.scale(beta)``
      — the *same* ``sigma_i`` tensor as the likelihood's scale (Section 4.2).

    Everything runs under ``poutine.scale(1 / (2N))``, so the negative ELBO is
    the batch mean of Eq. 38 (half the sum over the two directions), plus the
    likelihood's normalizing constants, which Algorithm 4 omits. ``beta = 0``
    uses ``poutine.mask(False)`` on the latent sites instead (``poutine.scale``
    refuses 0): the posterior sample is still drawn and reparameterized, the
    KL term is exactly zero.

    Train with any torch optimizer on ``vje.parameters()``::

        vje = VJE(encoder, InferenceNetwork(512, 128), df=3.0, beta=1.0)
        opt = torch.optim.SGD(vje.parameters(), lr=0.05, momentum=0.9)
        loss = vje.loss(x1, x2)
        opt.zero_grad(); loss.backward(); opt.step()

    :param encoder: any ``nn.Module`` mapping a batch of inputs to ``(N, D)``.
    :param inference_net: any ``nn.Module`` mapping ``(N, D)`` to ``(loc, scale)``.
    :param df: Student-t degrees of freedom :math:`\nu` (``float('inf')`` allowed).
    :param beta: KL weight :math:`\beta \ge 0` (a float or a 0-d tensor).
    :param radial_scale: :math:`\sqrt{\lambda}` of the radial factor (paper: 1).
    :param elbo: ``"meanfield"`` (``TraceMeanField_ELBO``, analytic KL, the
        paper's choice), ``"trace"`` (``Trace_ELBO``, Monte-Carlo KL), or an
        ``ELBO`` instance.
    :param num_particles: posterior samples per view (the paper uses 1).
    :param terms: the loss terms kept, a subset of ``("dir", "rad", "kl")`` with at least one
        likelihood factor (the Table 6 ablation, Section 5.4). Without ``"dir"`` (``"rad"``)
        the observed site is the radial (directional) factor alone; without ``"kl"`` the
        latent sites are masked as for ``beta = 0``. :meth:`loss_terms` logs all three
        whatever is trained.
    """

    def __init__(
        self,
        encoder: nn.Module,
        inference_net: nn.Module,
        df: float = 3.0,
        beta: float | torch.Tensor = 1.0,
        radial_scale: float = 1.0,
        elbo: str | ELBO = "meanfield",
        num_particles: int = 1,
        terms: tuple[str, ...] = LOSS_TERMS,
    ):
        super().__init__()
        self.terms = check_terms(terms)
        self.encoder = encoder
        self.inference_net = inference_net
        self.df = float(_check_float("df", df, allow_zero=False, allow_inf=True))
        self.beta = _check_float("beta", beta, allow_zero=True)
        self.radial_scale = float(_check_float("radial_scale", radial_scale, allow_zero=False))
        if isinstance(elbo, ELBO):
            if num_particles != 1:
                raise ValueError(
                    "VJE: num_particles applies to a named elbo; set it on the ELBO instance instead"
                )
            self.elbo = elbo
        elif elbo in _ELBOS:
            self.elbo = _ELBOS[elbo](num_particles=num_particles)
        else:
            raise ValueError(f"VJE: unknown elbo {elbo!r}; choose from {sorted(_ELBOS)} or pass a pyro ELBO")

    # ----------------------------------------------------------------- Pyro
    def likelihood(self, s: torch.Tensor, scale: torch.Tensor) -> PolarStudentT:
        r"""The VJE likelihood :math:`p_\psi(z_j \mid s_i, \sigma_i^2)` (Eq. 31) of this model:
        ``PolarStudentT(df, s, scale, radial_scale)``, centred on the latent ``s`` with the
        posterior's standard deviation ``scale`` (Section 4.2). The model (ELBO), the logged
        terms (:meth:`loss_terms`) and :mod:`pyro_vje.score` all build it here."""
        return PolarStudentT(self.df, s, scale, self.radial_scale)

    def observation(self, s: torch.Tensor, scale: torch.Tensor):
        """The distribution the model observes ``z_j`` under: :meth:`likelihood`, or one of its
        two factors when :attr:`terms` drops the other (Table 6)."""
        likelihood = self.likelihood(s, scale)
        if "dir" not in self.terms:
            return likelihood.radial
        if "rad" not in self.terms:
            return likelihood.directional
        return likelihood

    def _beta(self):
        """``poutine.scale(beta)`` on the latent sites, ``poutine.mask(False)`` for beta = 0
        or when :attr:`terms` drops the KL term."""
        if _as_float(self.beta) == 0.0 or "kl" not in self.terms:
            return poutine.mask(mask=False)
        return poutine.scale(scale=self.beta)

    @staticmethod
    @contextlib.contextmanager
    def _batch(n: int):
        """The batch plate, scaled by 1/(2N): batch mean and half of Eq. 38's sum."""
        with pyro.plate("batch", n, dim=-1), poutine.scale(scale=0.5 / n):
            yield

    def model(
        self,
        z1: torch.Tensor,
        z2: torch.Tensor,
        loc1: torch.Tensor,
        scale1: torch.Tensor,
        loc2: torch.Tensor,
        scale2: torch.Tensor,
    ) -> None:
        """p(s_i) = N(0, I) (beta-scaled) and p(z_j | s_i, sigma_i) = PolarStudentT (Eq. 31)."""
        _check_inputs(z1, z2, loc1, scale1, loc2, scale2)
        zeros = loc1.new_zeros(()).expand(loc1.shape)
        ones = loc1.new_ones(()).expand(loc1.shape)
        with self._batch(z1.shape[0]):
            for i, z_obs, scale_i in (("1", z2, scale1), ("2", z1, scale2)):
                with self._beta():
                    s_i = pyro.sample(f"s{i}", dist.Normal(zeros, ones).to_event(1))
                j = "2" if i == "1" else "1"
                # the opposite embedding, detached: stop-gradient (Eq. 38)
                pyro.sample(f"z{j}", self.observation(s_i, scale_i), obs=z_obs.detach())

    def guide(
        self,
        z1: torch.Tensor,
        z2: torch.Tensor,
        loc1: torch.Tensor,
        scale1: torch.Tensor,
        loc2: torch.Tensor,
        scale2: torch.Tensor,
    ) -> None:
        """q_i(s) = N(mu_i, diag(sigma_i^2)) (Eq. 32), beta-scaled like the prior."""
        _check_inputs(z1, z2, loc1, scale1, loc2, scale2)  # the ELBO runs the guide first
        with self._batch(z1.shape[0]):
            for i, loc_i, scale_i in (("1", loc1, scale1), ("2", loc2, scale2)):
                with self._beta():
                    pyro.sample(f"s{i}", dist.Normal(loc_i, scale_i).to_event(1))

    # ---------------------------------------------------------------- torch
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(z, loc, scale)`` for a batch of inputs: the embedding and its posterior."""
        z = self.encoder(x)
        if not isinstance(z, torch.Tensor) or z.dim() != 2:
            shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"VJE: the encoder must return embeddings of shape (N, D), got {shape}")
        loc, scale = self.inference_net(z)
        return z, loc, scale

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.encode(x)

    def loss(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        """The negative ELBO for a batch of view pairs (the batch mean of Eq. 38 + constants).

        Runs the encoder once per view and the inference network once per
        embedding, then ``self.elbo.differentiable_loss(model, guide, ...)``.
        """
        return self.training_loss(x1, x2, with_terms=False)[0]

    def training_loss(
        self, x1: torch.Tensor, x2: torch.Tensor, with_terms: bool = True
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(loss, terms)``: the negative ELBO as :meth:`loss`, and (detached) the batch means
        of its three terms from :meth:`loss_terms` — the trainer's interface for a method."""
        if x1.shape != x2.shape:
            raise ValueError(
                f"VJE.loss: the two views must have the same shape, got {tuple(x1.shape)} "
                f"and {tuple(x2.shape)}"
            )
        z1, loc1, scale1 = self.encode(x1)
        z2, loc2, scale2 = self.encode(x2)
        loss = self.elbo.differentiable_loss(self.model, self.guide, z1, z2, loc1, scale1, loc2, scale2)
        terms = self.loss_terms(z1, z2, loc1, scale1, loc2, scale2) if with_terms else {}
        return loss, terms

    @torch.no_grad()
    def loss_terms(
        self,
        z1: torch.Tensor,
        z2: torch.Tensor,
        loc1: torch.Tensor,
        scale1: torch.Tensor,
        loc2: torch.Tensor,
        scale2: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """Batch means of Eq. 38's terms, each averaged over the two directions (Algorithm 4):

        ``dir`` = -log p_dir(z_j | s_i, sigma_i) and ``rad`` = -log p_rad(||z_j|| - ||s_i||)
        at a fresh posterior sample s_i (normalizing constants included, as in the
        ELBO), ``kl`` = KL(q_i || N(0, I)) in closed form, and ``var`` the mean
        posterior variance. ``dir + rad + beta * kl`` estimates the loss.
        """
        terms: dict[str, torch.Tensor] = {}
        for z_obs, loc, scale in ((z2, loc1, scale1), (z1, loc2, scale2)):
            loc, scale = loc.detach().float(), scale.detach().float()
            s = loc + scale * torch.randn_like(loc)
            log_dir, log_rad = self.likelihood(s, scale).log_prob_terms(z_obs.detach().float())
            kl = kl_divergence(dist.Normal(loc, scale), dist.Normal(0.0, 1.0)).sum(-1)  # Eq. 9, as the ELBO
            for key, value in (("dir", -log_dir), ("rad", -log_rad), ("kl", kl), ("var", scale.square())):
                terms[key] = terms.get(key, 0.0) + 0.5 * value.mean()
        return terms

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Frozen features of a batch: ``z`` (encoder output), ``mu`` and ``scale`` (the posterior's
        loc and standard deviation), and with a projection head (Section 5.2) also ``h``, the
        backbone's output before the head (what SimSiam's and VICReg's ``z`` is: their heads are
        not part of their encoder). Call in eval mode."""
        if isinstance(self.encoder, ProjectedEncoder):
            h = self.encoder.backbone(x)
            z = self.encoder.projector(h)
            loc, scale = self.inference_net(z)
            return {"z": z, "mu": loc, "scale": scale, "h": h}
        z, loc, scale = self.encode(x)
        return {"z": z, "mu": loc, "scale": scale}


def check_terms(terms) -> tuple[str, ...]:
    """``terms`` as a tuple in canonical order; ``ValueError`` for unknown names or no likelihood factor.

    Accepts a sequence of names or a comma-separated string (``"dir,kl"``, the config's form).
    """
    names = [t.strip() for t in terms.split(",")] if isinstance(terms, str) else list(terms)
    unknown = sorted(set(names) - set(LOSS_TERMS))
    if unknown:
        raise ValueError(f"VJE: unknown loss terms {unknown}; choose a subset of {LOSS_TERMS}")
    if not {"dir", "rad"} & set(names):
        raise ValueError(
            f"VJE: terms {tuple(names)} keep no likelihood factor: keep 'dir', 'rad' or both (Table 6)"
        )
    return tuple(t for t in LOSS_TERMS if t in names)


def _check_inputs(z1, z2, loc1, scale1, loc2, scale2) -> None:
    named = {"z1": z1, "z2": z2, "loc1": loc1, "scale1": scale1, "loc2": loc2, "scale2": scale2}
    for name, t in named.items():
        if not isinstance(t, torch.Tensor) or t.dim() != 2:
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"VJE: {name} must be a tensor of shape (N, D), got {shape}")
    shape = z1.shape
    for name, t in named.items():
        if t.shape != shape:
            raise ValueError(f"VJE: {name} has shape {tuple(t.shape)}, expected {tuple(shape)} like z1")
    if shape[0] == 0:
        raise ValueError("VJE: empty batch (N = 0)")
