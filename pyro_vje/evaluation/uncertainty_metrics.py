r"""Does an uncertainty scalar rise where the embedding is less reliable? The metrics that say.

Each takes one scalar per input (higher = more uncertain):

* :func:`spearman` — Spearman's rank correlation (average ranks for ties), e.g. between the
  uncertainty and a corruption's severity;
* :func:`r_auroc` — the URL benchmark's main metric (Kirchhof et al., NeurIPS 2023 Datasets &
  Benchmarks): the AUROC of the uncertainty for predicting that the embedding's nearest
  neighbour has the wrong class (Recall@1 fails); 0.5 = uninformative;
* :func:`risk_coverage` / :func:`aurc` — selective classification (Geifman & El-Yaniv 2017):
  keep the ``k`` least uncertain inputs, the risk is their error rate; AURC is the mean risk
  over ``k = 1..N`` (lower is better; an oracle reaches :math:`\sum_{k>N-E} (k-N+E)/k / N`);
  ties in the uncertainty are averaged over their orders (the expected curve under random
  tie-breaking), so a constant scalar gets the flat curve at the overall error rate;
* :func:`fraction_higher` — how often one scalar exceeds another, input by input (ties count
  1/2): e.g. a random crop's uncertainty against its full image's.
"""

from __future__ import annotations

import numpy as np
import torch

from .metrics import auroc

__all__ = ["aurc", "fraction_higher", "r_auroc", "rank_average", "risk_coverage", "spearman"]


def _array(name: str, values, dtype=np.float64) -> np.ndarray:
    array = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values, dtype=dtype)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or inf")
    return array


def _same_length(**arrays: np.ndarray) -> None:
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"lengths differ: {lengths}")


def rank_average(values) -> np.ndarray:
    """Ranks 1..N of ``values``, tied values sharing the mean of their ranks."""
    x = _array("values", values)
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_x)) + 1]
    ends = np.r_[starts[1:], len(x)]
    ranks = np.empty(len(x))
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = (s + 1 + e) / 2  # mean of the ranks s+1..e
    return ranks


def spearman(x, y) -> float:
    """Spearman's rho: the Pearson correlation of the average ranks; NaN if either is constant."""
    rx, ry = rank_average(_array("x", x)), rank_average(_array("y", y))
    _same_length(x=rx, y=ry)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = np.sqrt((rx * rx).sum() * (ry * ry).sum())
    return float((rx * ry).sum() / denom) if denom > 0 else float("nan")


def r_auroc(uncertainty, wrong) -> float:
    """AUROC of ``uncertainty`` for ``wrong`` (bool: the nearest neighbour's class is wrong);
    NaN when every input is right or every input is wrong (nothing to separate)."""
    u = _array("uncertainty", uncertainty)
    w = _array("wrong", wrong, dtype=bool)
    _same_length(uncertainty=u, wrong=w)
    if w.all() or not w.any():
        return float("nan")
    return auroc(u[~w], u[w])


def risk_coverage(uncertainty, errors) -> tuple[np.ndarray, np.ndarray]:
    """``(coverage, risk)`` at ``k = 1..N`` inputs kept, least uncertain first: coverage ``k/N``,
    risk the error rate of the kept inputs, averaged over the orders of tied uncertainties."""
    u = _array("uncertainty", uncertainty)
    e = _array("errors", errors)
    _same_length(uncertainty=u, errors=e)
    order = np.argsort(u, kind="stable")
    u_sorted, e_sorted = u[order], e[order]
    starts = np.r_[0, np.flatnonzero(np.diff(u_sorted)) + 1]
    ends = np.r_[starts[1:], len(u)]
    expected = np.empty(len(u))  # the expected error of the input at each position
    for s, t in zip(starts, ends):
        expected[s:t] = e_sorted[s:t].mean()
    k = np.arange(1, len(u) + 1)
    return k / len(u), np.cumsum(expected) / k


def aurc(uncertainty, errors) -> float:
    """Area under the risk-coverage curve: the mean of :func:`risk_coverage`'s risk (lower = better)."""
    return float(risk_coverage(uncertainty, errors)[1].mean())


def fraction_higher(a, b) -> float:
    """The fraction of inputs where ``a > b`` (ties count 1/2)."""
    a, b = _array("a", a), _array("b", b)
    _same_length(a=a, b=b)
    return float(((a > b) + 0.5 * (a == b)).mean())
