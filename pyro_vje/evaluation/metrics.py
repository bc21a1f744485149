"""Detection metrics of anomaly / OOD scores (higher = more anomalous), model-agnostic.

:func:`auroc`, :func:`aupr` (AUPR-out / AUPR-in), :func:`fpr_at_tpr` (FPR at 95% TPR by
default) and :func:`ood_metrics` (all four), on any 1-D arrays or tensors of scores of
in-distribution inputs (inliers) and of outliers.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["aupr", "auroc", "fpr_at_tpr", "ood_metrics"]


def _as_scores(name: str, values) -> np.ndarray:
    array = np.asarray(
        values.detach().cpu() if isinstance(values, torch.Tensor) else values, dtype=np.float64
    )
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of scores, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or inf")
    return array


def _labelled(scores_in, scores_out) -> tuple[np.ndarray, np.ndarray]:
    s_in, s_out = _as_scores("scores_in", scores_in), _as_scores("scores_out", scores_out)
    labels = np.concatenate([np.zeros(len(s_in)), np.ones(len(s_out))])
    return labels, np.concatenate([s_in, s_out])


def auroc(scores_in, scores_out) -> float:
    """Area under the ROC curve for separating ``scores_out`` (anomalous, positive) from
    ``scores_in`` (higher = more anomalous): the probability that a random outlier scores
    above a random inlier, ties counting 1/2. 0.5 is chance."""
    from sklearn.metrics import roc_auc_score

    labels, scores = _labelled(scores_in, scores_out)
    return float(roc_auc_score(labels, scores))


def aupr(scores_in, scores_out, positive: str = "out") -> float:
    """Average precision with the outliers (``positive="out"``, AUPR-out) or the inliers
    (``"in"``, scored by ``-score``, AUPR-in) as the positive class."""
    from sklearn.metrics import average_precision_score

    labels, scores = _labelled(scores_in, scores_out)
    if positive == "out":
        return float(average_precision_score(labels, scores))
    if positive == "in":
        return float(average_precision_score(1 - labels, -scores))
    raise ValueError(f"positive must be 'out' or 'in', got {positive!r}")


def fpr_at_tpr(scores_in, scores_out, tpr: float = 0.95) -> float:
    """FPR at ``tpr`` TPR, the OOD literature's convention (Hendrycks & Gimpel; ODIN): accept
    as in-distribution everything scoring at most the threshold that keeps a fraction
    ``tpr`` of the in-distribution inputs; return the fraction of outliers also accepted."""
    if not 0 < tpr <= 1:
        raise ValueError(f"tpr must be in (0, 1], got {tpr}")
    s_in, s_out = _as_scores("scores_in", scores_in), _as_scores("scores_out", scores_out)
    threshold = np.sort(s_in)[max(0, math.ceil(tpr * len(s_in)) - 1)]
    return float((s_out <= threshold).mean())


def ood_metrics(scores_in, scores_out) -> dict[str, float]:
    """``auroc``, ``aupr_out``, ``aupr_in`` and ``fpr95`` (see the functions of the same names)."""
    return {
        "auroc": auroc(scores_in, scores_out),
        "aupr_out": aupr(scores_in, scores_out, "out"),
        "aupr_in": aupr(scores_in, scores_out, "in"),
        "fpr95": fpr_at_tpr(scores_in, scores_out, 0.95),
    }
