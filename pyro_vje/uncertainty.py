r"""Uncertainty scalars of any trained method, one number per input (higher = more uncertain).

VJE's claim (abstract, Section 5.3) is that the feature-wise posterior variance
:math:`\sigma^2(x)` of :math:`q(s \mid z) = N(\mu, \sigma^2)` captures how reliable an
embedding is. The question a user asks is whether it says more than what any encoder gives
for free, so every method gets the free proxies and the posterior methods their own scalars:

* ``entropy`` — :math:`\sum_d \log \sigma_d^2` (the posterior's Gaussian entropy up to
  constants) and ``mean_variance`` — :math:`\frac1D \sum_d \sigma_d^2`: VJE and VCL
  (features ``scale``);
* ``view_nll`` (VJE) — the model's own likelihood of a second view: the symmetric cross-view
  NLL :math:`\tfrac12[-\log p(z_v \mid \mu_x, \sigma_x) - \log p(z_x \mid \mu_v, \sigma_v)]`
  of Eq. 23/28 (the training objective's term, :func:`pyro_vje.score.score_embeddings`'s
  ``joint``) between the input and a random view of it;
* ``inverse_kappa`` (VSimSiam) — :math:`1/\kappa`, the power-spherical posterior's spread;
* free proxies, every method: ``inverse_norm`` :math:`1/\|z\|`; ``knn_distance``, the mean
  cosine distance to the ``k`` nearest bank embeddings; ``view_spread``, the mean squared
  distance of the unit-normalized embeddings of ``T`` random views from their mean
  (test-time-augmentation spread).

:func:`uncertainty_scalars` computes them from :func:`~pyro_vje.evaluation.extract_features`
dicts; :mod:`pyro_vje.protocols.uncertainty` (``pyro-vje uncertainty RUN``) measures them
against corruption severity, crops, the nearest neighbour's label and selective kNN
classification (:mod:`pyro_vje.evaluation.uncertainty_metrics`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .evaluation.knn import knn_distance

__all__ = ["FREE_PROXIES", "POSTERIOR_SCALARS", "uncertainty_scalars", "view_nll", "view_spread"]

#: the scalars of a posterior, by the feature that carries it
POSTERIOR_SCALARS = ("entropy", "mean_variance", "view_nll", "inverse_kappa")
#: what every encoder gives
FREE_PROXIES = ("inverse_norm", "knn_distance", "view_spread")


def view_spread(view_z: Sequence[torch.Tensor]) -> torch.Tensor:
    """Mean squared distance of the unit-normalized ``(N, D)`` embeddings of ``T >= 2`` views
    of the same inputs from their mean: 0 when every view embeds in the same direction."""
    if len(view_z) < 2:
        raise ValueError(f"view_spread needs at least 2 views, got {len(view_z)}")
    units = torch.stack([F.normalize(z.double(), dim=1) for z in view_z])  # (T, N, D)
    return (units - units.mean(0)).square().sum(-1).mean(0).float()


def view_nll(model, features: dict[str, torch.Tensor], view: dict[str, torch.Tensor]) -> torch.Tensor:
    """VJE's symmetric cross-view NLL between the inputs' features and one view's."""
    from .score import score_embeddings

    a = score_embeddings(model, view["z"], features["mu"], features["scale"], which=("joint",))["joint"]
    b = score_embeddings(model, features["z"], view["mu"], view["scale"], which=("joint",))["joint"]
    return (0.5 * (a + b)).float()


def uncertainty_scalars(
    features: dict[str, torch.Tensor],
    bank: dict[str, torch.Tensor],
    views: Sequence[dict[str, torch.Tensor]] = (),
    *,
    model=None,
    k: int = 5,
) -> dict[str, torch.Tensor]:
    """Every scalar ``features`` (and ``views``: features of random views of the same inputs)
    supports, ``{name: (N,) float32}``, posterior scalars first. ``bank`` (features of the
    training images) gives ``knn_distance``; ``model`` (a VJE) and one view give ``view_nll``."""
    from .model import VJE

    z = features["z"]
    out: dict[str, torch.Tensor] = {}
    if "scale" in features:
        log_var = 2 * features["scale"].double().clamp_min(1e-30).log()
        out["entropy"] = log_var.sum(-1).float()
        out["mean_variance"] = log_var.exp().mean(-1).float()
    if isinstance(model, VJE) and views and "mu" in views[0]:
        out["view_nll"] = view_nll(model, features, views[0])
    if "kappa" in features:
        out["inverse_kappa"] = (1.0 / features["kappa"].double().reshape(len(z), -1)[:, 0]).float()
    out["inverse_norm"] = (1.0 / z.double().norm(dim=1).clamp_min(1e-12)).float()
    out["knn_distance"] = knn_distance(bank["z"], z, k).float()
    if len(views) >= 2:
        out["view_spread"] = view_spread([v["z"] for v in views])
    return out
