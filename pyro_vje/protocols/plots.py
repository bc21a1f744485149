"""Figures for anomaly / out-of-distribution scoring results.

Every score follows the convention "higher = more anomalous": the
out-of-distribution (or outlier) samples are the positive class.  Each function
draws with matplotlib's non-interactive ``Agg`` backend, writes a PNG at
100 dpi (creating parent directories), closes its figure and returns the
:class:`~pathlib.Path` it wrote.

- :func:`plot_roc_curves` -- ROC curves with AUROC in the legend.
- :func:`plot_score_histograms` -- in vs out score densities, one panel per score.
- :func:`plot_variance_histograms` -- log-x histograms of posterior sigma^2.
- :func:`plot_sweep_heatmap` -- the beta x nu AUROC sweep (paper Figure 4).
- :func:`plot_per_class_auroc` -- grouped bars of per-class AUROC per score.
- :func:`plot_correlation` -- scatter with Pearson r in the title.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "pyplot",
    "save_figure",
    "plot_correlation",
    "plot_per_class_auroc",
    "plot_roc_curves",
    "plot_score_histograms",
    "plot_sweep_heatmap",
    "plot_variance_histograms",
]

_DPI = 100


def pyplot() -> Any:
    """Return :mod:`matplotlib.pyplot` with the non-interactive Agg backend selected."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | os.PathLike[str]) -> Path:
    """Save ``fig`` as a PNG at 100 dpi (creating parent dirs), close it and return the path."""
    plt = pyplot()
    out = Path(path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=_DPI, format="png")
    finally:
        plt.close(fig)
    return out


def _as_scores(values: Any, what: str) -> np.ndarray:
    """Flatten ``values`` to a non-empty finite 1-D float array, or raise ``ValueError``."""
    arr = np.asarray(values, dtype=float).ravel()
    if arr.size == 0:
        raise ValueError(f"{what} is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} contains NaN or infinite values")
    return arr


def _check_mapping(mapping: Any, what: str) -> None:
    if not isinstance(mapping, Mapping):
        raise ValueError(f"{what} must be a dict, got {type(mapping).__name__}")
    if len(mapping) == 0:
        raise ValueError(f"{what} is empty")


def _pair(value: Any, label: str, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate one ``(scores_in, scores_out)`` entry of a dict."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{what}[{label!r}] must be a (scores_in, scores_out) pair")
    s_in = _as_scores(value[0], f"{what}[{label!r}] scores_in")
    s_out = _as_scores(value[1], f"{what}[{label!r}] scores_out")
    return s_in, s_out


def _auroc(scores_in: Any, scores_out: Any) -> float:
    """AUROC with the out-of-distribution scores as the positive class
    (:func:`pyro_vje.evaluation.metrics.auroc`, after this module's own input checks)."""
    from ..evaluation.metrics import auroc

    return auroc(_as_scores(scores_in, "scores_in"), _as_scores(scores_out, "scores_out"))


def plot_roc_curves(
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    path: str | os.PathLike[str],
    title: str = "",
) -> Path:
    """Draw one ROC curve per entry of ``curves`` (out-of-distribution = positive class).

    Args:
        curves: label -> ``(scores_in, scores_out)``; the legend shows
            ``"<label> (AUROC x.xxx)"``.
        path: PNG file to write.
        title: optional axes title.

    Returns:
        The path written.
    """
    _check_mapping(curves, "curves")
    pairs = {label: _pair(value, label, "curves") for label, value in curves.items()}
    from sklearn.metrics import roc_curve

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for label, (s_in, s_out) in pairs.items():
        y = np.concatenate([np.zeros(s_in.size), np.ones(s_out.size)])
        fpr, tpr, _ = roc_curve(y, np.concatenate([s_in, s_out]))
        ax.plot(fpr, tpr, lw=1.6, label=f"{label} (AUROC {_auroc(s_in, s_out):.3f})")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="chance")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false positive rate (FPR)")
    ax.set_ylabel("true positive rate (TPR)")
    if title:
        ax.set_title(title)
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    return save_figure(fig, path)


def _shared_bins(pooled: np.ndarray, n_bins: int = 50) -> np.ndarray:
    """Bin edges over the 0.5-99.5 percentile range of ``pooled``, widened if degenerate."""
    lo, hi = np.percentile(pooled, [0.5, 99.5])
    if not hi > lo:
        lo, hi = float(pooled.min()), float(pooled.max())
    if not hi > lo:  # constant scores
        pad = 0.5 * max(abs(lo), 1.0)
        lo, hi = lo - pad, hi + pad
    return np.linspace(lo, hi, n_bins + 1)


def plot_score_histograms(
    scores: dict[str, tuple[np.ndarray, np.ndarray]],
    path: str | os.PathLike[str],
    in_label: str = "in-distribution",
    out_label: str = "out-of-distribution",
) -> Path:
    """Overlay density histograms of in vs out scores, one panel per score name.

    Panels form a grid of at most three columns.  Within a panel both series share
    bins spanning the 0.5-99.5 percentiles of the pooled scores (values outside are
    clipped into the edge bins), so a single outlier cannot squash the plot;
    constant scores get a small padded range.  Each panel title carries the AUROC.

    Args:
        scores: score name -> ``(scores_in, scores_out)``.
        path: PNG file to write.
        in_label: legend label of the in-distribution series.
        out_label: legend label of the out-of-distribution series.

    Returns:
        The path written.
    """
    _check_mapping(scores, "scores")
    pairs = {name: _pair(value, name, "scores") for name, value in scores.items()}
    n = len(pairs)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    plt = pyplot()
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.3 * nrows), squeeze=False)
    flat = axes.ravel()
    for ax, (name, (s_in, s_out)) in zip(flat, pairs.items()):
        bins = _shared_bins(np.concatenate([s_in, s_out]))
        lo, hi = bins[0], bins[-1]
        for values, label, color in ((s_in, in_label, "C0"), (s_out, out_label, "C1")):
            ax.hist(np.clip(values, lo, hi), bins=bins, density=True, alpha=0.5, color=color, label=label)
        ax.set_title(f"{name} (AUROC {_auroc(s_in, s_out):.3f})", fontsize="medium")
        ax.set_xlabel("score (higher = more anomalous)")
        ax.set_ylabel("density")
        ax.legend(fontsize="small")
    for ax in flat[n:]:
        ax.set_visible(False)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_variance_histograms(variances: dict[str, np.ndarray], path: str | os.PathLike[str]) -> Path:
    """Histogram per-input posterior variances sigma^2 on a log-x axis, one series per label.

    Args:
        variances: label (e.g. ``"inlier"``, ``"outlier"``) -> variances, shape
            ``(N, D)`` or flat; all values must be finite and strictly positive.
        path: PNG file to write.

    Returns:
        The path written.
    """
    _check_mapping(variances, "variances")
    series: dict[str, np.ndarray] = {}
    for label, value in variances.items():
        arr = _as_scores(value, f"variances[{label!r}]")
        if np.any(arr <= 0):
            raise ValueError(f"variances[{label!r}] must be strictly positive for a log axis")
        series[label] = arr
    pooled = np.log10(np.concatenate(list(series.values())))
    lo, hi = float(pooled.min()), float(pooled.max())
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    bins = np.logspace(lo, hi, 51)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, arr in series.items():
        ax.hist(
            arr, bins=bins, density=True, alpha=0.5, histtype="stepfilled", label=f"{label} (n={arr.size})"
        )
    ax.set_xscale("log")
    ax.set_xlabel(r"posterior variance $\sigma^2$")
    ax.set_ylabel("density")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_sweep_heatmap(
    values: np.ndarray,
    betas: Sequence[float],
    dfs: Sequence[float],
    path: str | os.PathLike[str],
    title: str = "class-averaged AUROC (joint)",
    fmt: str = "{:.3f}",
) -> Path:
    """Heatmap of a beta x nu sweep (paper Figure 4): rows = beta, columns = df (nu).

    Cells are annotated with ``fmt``; colours use ``viridis`` (lighter = higher) with a
    colorbar.  NaN cells (missing runs) are drawn grey with the text ``"–"``.

    Args:
        values: array of shape ``(len(betas), len(dfs))``.
        betas: row labels.
        dfs: column labels (Student-t degrees of freedom nu).
        path: PNG file to write.
        title: axes title.
        fmt: format string for the cell text.

    Returns:
        The path written.
    """
    arr = np.asarray(values, dtype=float)
    betas = list(betas)
    dfs = list(dfs)
    if not betas or not dfs:
        raise ValueError("betas and dfs must be non-empty")
    if arr.shape != (len(betas), len(dfs)):
        raise ValueError(
            f"values has shape {arr.shape}, expected (len(betas), len(dfs)) = {(len(betas), len(dfs))}"
        )
    finite = arr[np.isfinite(arr)]
    plt = pyplot()
    cmap = plt.get_cmap("viridis").with_extremes(bad="lightgrey")
    masked = np.ma.masked_invalid(arr)
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if not vmax > vmin:
        vmin, vmax = vmin - 0.5e-3, vmax + 0.5e-3
    fig, ax = plt.subplots(figsize=(1.0 * len(dfs) + 2.5, 0.6 * len(betas) + 1.8))
    im = ax.imshow(masked, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", origin="upper")
    norm = im.norm
    for i in range(arr.shape[0]):
        for j in range(arr.shape[1]):
            v = arr[i, j]
            if np.isfinite(v):
                text = fmt.format(v)
                color = "black" if norm(v) > 0.6 else "white"
            else:
                text, color = "–", "black"
            ax.text(j, i, text, ha="center", va="center", color=color, fontsize="small")
    ax.set_xticks(range(len(dfs)), [f"{d:g}" for d in dfs])
    ax.set_yticks(range(len(betas)), [f"{b:g}" for b in betas])
    ax.set_xlabel(r"degrees of freedom $\nu$")
    ax.set_ylabel(r"$\beta$")
    if title:
        ax.set_title(title)
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_per_class_auroc(results: dict[str, dict[str, float]], path: str | os.PathLike[str]) -> Path:
    """Grouped bar chart of per-class AUROC, one bar colour per score name.

    Args:
        results: score name -> (class name -> AUROC).  Classes are the union over
            scores in first-seen order; a class missing for a score leaves a gap.
        path: PNG file to write.

    Returns:
        The path written.
    """
    _check_mapping(results, "results")
    classes: list[str] = []
    for name, per_class in results.items():
        _check_mapping(per_class, f"results[{name!r}]")
        for cls, value in per_class.items():
            if not np.isfinite(float(value)):
                raise ValueError(f"results[{name!r}][{cls!r}] is not finite")
            if cls not in classes:
                classes.append(cls)
    n_scores = len(results)
    width = 0.8 / n_scores
    x = np.arange(len(classes))
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(min(30.0, max(6.0, 2.0 + len(classes) * (0.4 + 0.25 * n_scores))), 4))
    for k, (name, per_class) in enumerate(results.items()):
        heights = [float(per_class.get(c, np.nan)) for c in classes]
        ax.bar(x - 0.4 + width * (k + 0.5), heights, width=width, label=name)
    ax.axhline(0.5, ls="--", color="grey", lw=1, label="chance")
    rotate = len(classes) > 6
    ax.set_xticks(
        x, [str(c) for c in classes], rotation=45 if rotate else 0, ha="right" if rotate else "center"
    )
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("AUROC")
    ax.set_xlabel("class")
    ax.legend(fontsize="small", ncols=min(4, n_scores + 1))
    fig.tight_layout()
    return save_figure(fig, path)


def plot_correlation(
    x: np.ndarray,
    y: np.ndarray,
    path: str | os.PathLike[str],
    xlabel: str,
    ylabel: str,
) -> Path:
    """Scatter ``y`` against ``x`` with the Pearson correlation r in the title.

    Used e.g. for per-cell AUROC against posterior entropy or variance.  r is
    :func:`numpy.corrcoef`; it is reported as ``nan`` when either series is constant.

    Args:
        x, y: 1-D (or flattenable) arrays of equal size, at least two points.
        path: PNG file to write.
        xlabel, ylabel: axis labels.

    Returns:
        The path written.
    """
    xa = _as_scores(x, "x")
    ya = _as_scores(y, "y")
    if xa.shape != ya.shape:
        raise ValueError(f"x and y must have the same number of points, got {xa.size} and {ya.size}")
    if xa.size < 2:
        raise ValueError("need at least two points for a correlation")
    if np.ptp(xa) == 0 or np.ptp(ya) == 0:
        r = float("nan")
    else:
        r = float(np.corrcoef(xa, ya)[0, 1])
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(xa, ya, s=18, alpha=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"Pearson r = {r:.3f} (n={xa.size})")
    fig.tight_layout()
    return save_figure(fig, path)
