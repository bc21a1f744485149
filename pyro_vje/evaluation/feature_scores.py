r"""Anomaly / OOD scores any encoder's features give for free (no likelihood), higher = more anomalous.

The baselines a practitioner tries first on a deterministic self-supervised model, and the
ones the model's own likelihood (:mod:`pyro_vje.score`) has to beat on the same features:

* :func:`knn_distance` (re-exported from :mod:`~pyro_vje.evaluation.knn`): the mean cosine
  distance to the ``k`` nearest bank features (Sun et al. 2022, "Out-of-distribution detection
  with deep nearest neighbors", on normalized features);
* :func:`mahalanobis`: Lee et al. 2018 ("A simple unified framework for detecting
  out-of-distribution samples and adversarial attacks"): class means :math:`\mu_c` of the bank,
  one covariance :math:`\Sigma` tied over classes, and the score
  :math:`\min_c (f - \mu_c)^\top \Sigma^{-1} (f - \mu_c)`; with one class (the one-class
  protocol, or no labels) it is the squared Mahalanobis distance to a Gaussian fitted to the bank;
* :func:`inverse_norm`: :math:`1 / \|f\|`, the embedding-norm baseline (a smaller norm reads as
  less familiar; the same ranking as :math:`-\|f\|`).

:func:`feature_scores` computes all three for every feature of a bank/test pair it is given
(``z``; for VJE also ``mu``), named ``<score>_<feature>``: ``knn_z``, ``mahalanobis_z``,
``inverse_norm_z``, ``knn_mu``, ...
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .knn import knn_distance

__all__ = ["FEATURE_SCORES", "feature_scores", "inverse_norm", "knn_distance", "mahalanobis"]

#: the scores :func:`feature_scores` computes per feature, in its output order
FEATURE_SCORES = ("knn", "mahalanobis", "inverse_norm")

#: the ridge added to the tied covariance, relative to its mean eigenvalue (trace / D): keeps
#: the inverse finite when the bank's features span fewer than D dimensions (collapsed or
#: low-rank embeddings, or fewer bank rows than dimensions) without changing a full-rank fit
RIDGE = 1e-6


def _check(name: str, x: torch.Tensor) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[0] == 0:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a non-empty (N, D) tensor, got {shape}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf")
    return x.double()


def mahalanobis(
    bank: torch.Tensor,
    queries: torch.Tensor,
    bank_labels: torch.Tensor | None = None,
    *,
    ridge: float = RIDGE,
) -> torch.Tensor:
    """Squared Mahalanobis distance of each query to the nearest class mean of ``bank`` under the
    covariance tied over classes (Lee et al. 2018), in float64, returned as float32 ``(M,)``.

    ``bank_labels`` (``(N,)``, optional): one Gaussian per label; without them, one Gaussian for
    the whole bank. The covariance is the maximum-likelihood one of the class-centred bank
    (divided by N) plus ``ridge * trace / D`` on its diagonal."""
    bank, queries = _check("bank", bank), _check("queries", queries)
    if bank.shape[1] != queries.shape[1]:
        raise ValueError(
            f"mahalanobis: bank {tuple(bank.shape)} and queries {tuple(queries.shape)} differ in D"
        )
    if bank_labels is None:
        bank_labels = torch.zeros(len(bank), dtype=torch.long)
    bank_labels = torch.as_tensor(bank_labels).long().reshape(-1)
    if len(bank_labels) != len(bank):
        raise ValueError(f"mahalanobis: {len(bank_labels)} bank labels for {len(bank)} bank rows")
    classes = bank_labels.unique()
    means = torch.stack([bank[bank_labels == c].mean(0) for c in classes])  # (C, D)
    centred = bank - means[torch.searchsorted(classes, bank_labels)]
    cov = centred.T @ centred / len(bank)
    dim = cov.shape[0]
    cov = cov + torch.eye(dim, dtype=cov.dtype) * (ridge * max(float(cov.trace()) / dim, 1e-12))
    chol = torch.linalg.cholesky(cov)
    out = []
    for chunk in queries.split(1024):
        diff = chunk[:, None, :] - means[None]  # (m, C, D)
        white = torch.linalg.solve_triangular(chol, diff.reshape(-1, dim).T, upper=False)  # L^-1 (f - mu)
        dist = white.square().sum(0).reshape(len(chunk), len(classes))
        out.append(dist.min(1).values)
    return torch.cat(out).float()


def inverse_norm(queries: torch.Tensor) -> torch.Tensor:
    """``1 / ||f||`` of each row (float32 ``(M,)``): the embedding-norm baseline, higher = more anomalous."""
    queries = _check("queries", queries)
    return (1.0 / queries.norm(dim=1).clamp_min(1e-12)).float()


def feature_scores(
    bank: dict[str, torch.Tensor],
    test: dict[str, torch.Tensor],
    *,
    k: int = 5,
    features: Sequence[str] = ("z", "mu"),
    class_conditional: bool = True,
) -> dict[str, torch.Tensor]:
    """:data:`FEATURE_SCORES` of ``test`` against ``bank`` for each of ``features`` both hold
    (``extract_features`` dicts), as ``{"<score>_<feature>": (M,) tensor}``. The Mahalanobis
    Gaussians are per bank label when ``class_conditional`` and the bank carries ``"labels"``
    with more than one class (Lee et al.'s in-distribution classes), one Gaussian otherwise."""
    labels = bank.get("labels") if class_conditional else None
    if labels is not None and torch.as_tensor(labels).unique().numel() < 2:
        labels = None
    out: dict[str, torch.Tensor] = {}
    for name in features:
        if name not in bank or name not in test:
            continue
        out[f"knn_{name}"] = knn_distance(bank[name], test[name], k)
        out[f"mahalanobis_{name}"] = mahalanobis(bank[name], test[name], labels)
        out[f"inverse_norm_{name}"] = inverse_norm(test[name])
    if not out:
        raise ValueError(f"feature_scores: neither bank nor test holds any of the features {tuple(features)}")
    return out
