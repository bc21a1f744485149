"""Posterior-variance statistics (paper Table 7) and collapse diagnostics of embeddings.

Every function takes a batch of per-input rows ``(N, D)`` and returns plain
floats, so the results can go straight into CSV/JSON logs. Standard deviations
are *sample* standard deviations (``ddof = 1``, torch's default) throughout; see
``docs/evaluation.md``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .knn import _check_features

__all__ = [
    "DIAGNOSTIC_MEANINGS",
    "effective_rank",
    "embedding_diagnostics",
    "normalized_std",
    "posterior_variance_stats",
]

#: Below this Var mean, Var CV is reported as NaN (Table 7 omits it). The inference
#: network's variance floor is 1e-6 (``InferenceNetwork(min_var=1e-6)``), the prior
#: variance is 1, and the smallest Var mean the paper reports a CV for is 0.07.
VAR_MEAN_ZERO = 1e-4


def posterior_variance_stats(variances: torch.Tensor, zero_tol: float = VAR_MEAN_ZERO) -> tuple[float, float]:
    """Table 7's "Var mean" and "Var CV" of posterior variances ``sigma^2``.

    With ``sigma_d^2 = mean_n variances[n, d]`` (the per-dimension average over the
    ``N`` inputs), Var mean ``= Mean_d(sigma_d^2)`` and Var CV
    ``= Std_d(sigma_d^2) / Mean_d(sigma_d^2)``; ``Std`` is the sample standard deviation
    across the ``D`` dimensions (``ddof = 1``, as ``torch.std``; the population value is
    smaller by ``sqrt((D - 1) / D)``). CV near 0 means an isotropic posterior, larger
    values anisotropy.

    :param variances: ``(N, D)`` non-negative posterior variances (not standard deviations).
    :param zero_tol: when Var mean ``<= zero_tol`` the posterior has collapsed and CV is
        ``float("nan")`` (the paper omits it). Also NaN when ``D == 1``.
    :returns: ``(var_mean, var_cv)`` as Python floats, computed in float64.
    """
    variances = _check_features(variances, "variances")
    if variances.numel() == 0:
        raise ValueError(f"variances is empty: shape {tuple(variances.shape)}")
    if bool((variances < 0).any()):
        raise ValueError("variances must be non-negative (pass sigma^2, not log-variances)")
    per_dim = variances.double().mean(0)
    mean = float(per_dim.mean())
    if mean <= zero_tol or len(per_dim) < 2:
        return mean, float("nan")
    return mean, float(per_dim.std() / mean)


def effective_rank(features: torch.Tensor, eps: float = 1e-7) -> float:
    """RankMe effective rank (Garrido et al., 2023) of ``features`` ``(N, D)``.

    ``exp(-sum_k p_k log p_k)`` with ``p_k = sigma_k / ||sigma||_1 + eps`` and ``sigma_k``
    the singular values of the (uncentred) feature matrix, in float64. It lies between
    about 1 (all rows on one line) and ``min(N, D)`` (equal singular values). An all-zero
    matrix has rank 0.
    """
    features = _check_features(features, "features")
    if features.numel() == 0:
        raise ValueError(f"features is empty: shape {tuple(features.shape)}")
    singular = torch.linalg.svdvals(features.double())
    total = singular.sum()
    if float(total) == 0.0:
        return 0.0
    p = singular / total + eps
    return float(torch.exp(-(p * p.log()).sum()))


def normalized_std(features: torch.Tensor, relative: bool = False) -> float:
    """SimSiam's collapse indicator: mean over dimensions of the std of L2-normalized rows.

    Rows are scaled to unit norm, then the sample standard deviation (``ddof = 1``) across
    the ``N`` inputs is taken per dimension and averaged over the ``D`` dimensions. It is
    0 when every input maps to the same direction (collapse) and ``1 / sqrt(D)`` for
    isotropic, zero-mean Gaussian embeddings (each coordinate of a uniform unit vector has
    variance ``1 / D``). Embeddings that are not centred (e.g. after a ReLU) sit below
    ``1 / sqrt(D)`` even when healthy.

    :param relative: return the value times ``sqrt(D)`` instead (1 for isotropic, 0 for
        collapsed), to compare with ``1 / sqrt(D)`` directly.
    """
    features = _check_features(features, "features")
    if len(features) < 2:
        raise ValueError(f"normalized_std needs at least 2 rows, got {len(features)}")
    value = float(F.normalize(features.double(), dim=1).std(0).mean())
    return value * math.sqrt(features.shape[1]) if relative else value


def embedding_diagnostics(
    z: torch.Tensor, mu: torch.Tensor | None = None, variances: torch.Tensor | None = None
) -> dict[str, float]:
    """Collapse diagnostics of a batch of embeddings, as a flat ``dict`` for logs.

    Keys (each a float):

    * ``z_rank`` — :func:`effective_rank` of ``z``;
    * ``z_norm_std`` — :func:`normalized_std` of ``z``; ``z_norm_std_rel`` the same times
      ``sqrt(D)`` (about 1 healthy, 0 collapsed);
    * ``z_norm_mean`` — mean L2 norm of the rows of ``z``;
    * with ``mu``: ``mu_rank``, ``mu_norm_std``, ``mu_norm_std_rel`` likewise;
    * with ``variances`` (``sigma^2``): ``var_mean``, ``var_cv`` from
      :func:`posterior_variance_stats` (``var_cv`` NaN when collapsed).

    :param z: ``(N, D)`` encoder embeddings.
    :param mu: ``(N, D')`` posterior means, same ``N``.
    :param variances: ``(N, D')`` posterior variances, same ``N``.
    """
    z = _check_features(z, "z")
    z_norm_std = normalized_std(z)
    results = {
        "z_rank": effective_rank(z),
        "z_norm_std": z_norm_std,
        "z_norm_std_rel": z_norm_std * math.sqrt(z.shape[1]),
        "z_norm_mean": float(z.double().norm(dim=1).mean()),
    }
    for name, value in (("mu", mu), ("variances", variances)):
        if value is not None and len(value) != len(z):
            raise ValueError(f"{name} has {len(value)} rows but z has {len(z)}")
    if mu is not None:
        mu = _check_features(mu, "mu")
        mu_norm_std = normalized_std(mu)
        results["mu_rank"] = effective_rank(mu)
        results["mu_norm_std"] = mu_norm_std
        results["mu_norm_std_rel"] = mu_norm_std * math.sqrt(mu.shape[1])
    if variances is not None:
        results["var_mean"], results["var_cv"] = posterior_variance_stats(variances)
    return results


def _meanings() -> dict[str, str]:
    out = {
        "var_mean": "mean posterior variance sigma^2 over dimensions and inputs",
        "var_cv": "std / mean of sigma^2 across dimensions: 0 = equally certain in every direction",
    }
    names = {"z": "z", "mu": "the posterior mean mu", "h": "h (the backbone under the projector)"}
    for key, name in names.items():
        out[f"knn_{key}"] = f"weighted kNN top-1 accuracy of {name}"
        out[f"knn_{key}_top5"] = f"weighted kNN top-5 accuracy of {name}"
        out[f"linear_{key}"] = f"linear-probe top-1 accuracy of {name}"
        out[f"linear_{key}_top5"] = f"linear-probe top-5 accuracy of {name}"
        out[f"{key}_rank"] = f"effective rank of {name}: dimensions in use (near 1: collapse)"
        out[f"{key}_norm_std"] = (
            f"std across inputs of L2-normalized {name}, mean over dimensions: 1/sqrt(D) isotropic, "
            "0 collapsed"
        )
        out[f"{key}_norm_std_rel"] = f"{key}_norm_std x sqrt(D): about 1 healthy, 0 collapsed"
        out[f"{key}_norm_mean"] = f"mean L2 norm of {name}"
    return out


#: one line on what each key of :func:`embedding_diagnostics` and of the evaluation's accuracies
#: means (``pyro-vje evaluate`` prints it beside the value).
DIAGNOSTIC_MEANINGS: dict[str, str] = _meanings()
