"""Evaluation of frozen features and diagnostics of embeddings (paper Section 5.2, Tables 2, 5-7).

* :mod:`~pyro_vje.evaluation.knn` — weighted kNN (k = 30, temperature 0.1, cosine):
  :func:`knn_predict`, :func:`knn_accuracy`, :func:`knn_evaluate` (top-1/top-5), and the
  kNN anomaly score :func:`knn_distance`.
* :mod:`~pyro_vje.evaluation.metrics` — detection metrics of anomaly/OOD scores:
  :func:`auroc`, :func:`aupr`, :func:`fpr_at_tpr`, :func:`ood_metrics`.
* :mod:`~pyro_vje.evaluation.linear` — linear probe on precomputed features:
  :class:`LinearProbeConfig`, :func:`linear_probe`.
* :mod:`~pyro_vje.evaluation.diagnostics` — Table 7's posterior-variance statistics and
  collapse diagnostics: :func:`posterior_variance_stats`, :func:`effective_rank`,
  :func:`normalized_std`, :func:`embedding_diagnostics`.
* :mod:`~pyro_vje.evaluation.features` — frozen features of a data set: :func:`extract_features`,
  :func:`flatten_pixels`, :func:`autocast`.
* :mod:`~pyro_vje.evaluation.batchnorm` — BatchNorm running statistics re-estimated on chosen
  images (a one-class protocol step): :func:`reestimate_batchnorm`.
* :mod:`~pyro_vje.evaluation.evaluate` — a trained method on frozen features:
  :func:`evaluate_method`, :func:`evaluate_features`.

The protocols and formulas are described in ``docs/evaluation.md``.
"""

from .batchnorm import batchnorm_layers, reestimate_batchnorm
from .diagnostics import effective_rank, embedding_diagnostics, normalized_std, posterior_variance_stats
from .evaluate import evaluate_features, evaluate_method
from .features import autocast, extract_features, flatten_pixels
from .knn import knn_accuracy, knn_distance, knn_evaluate, knn_predict
from .linear import LinearProbeConfig, linear_probe
from .metrics import aupr, auroc, fpr_at_tpr, ood_metrics

__all__ = [
    "batchnorm_layers",
    "reestimate_batchnorm",
    "aupr",
    "auroc",
    "autocast",
    "fpr_at_tpr",
    "knn_distance",
    "ood_metrics",
    "evaluate_features",
    "evaluate_method",
    "extract_features",
    "flatten_pixels",
    "LinearProbeConfig",
    "effective_rank",
    "embedding_diagnostics",
    "knn_accuracy",
    "knn_evaluate",
    "knn_predict",
    "linear_probe",
    "normalized_std",
    "posterior_variance_stats",
]
