"""Figures of ``pyro-vje uncertainty`` (:mod:`pyro_vje.protocols.uncertainty`), from its report dict.

- :func:`plot_severity_curves` -- each scalar's mean against the corruption severity, one panel
  per corruption, standardized by the scalar's clean mean and spread (so scalars share an axis).
- :func:`plot_risk_coverage` -- the kNN classifier's risk when the most uncertain are rejected.
- :func:`plot_per_dim_variance` -- log ratio of each dimension's mean sigma^2 at the highest
  severity to its clean value, dimensions ordered by clean sigma^2 (anisotropy).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .plots import pyplot, save_figure

__all__ = ["plot_per_dim_variance", "plot_risk_coverage", "plot_severity_curves"]


def plot_severity_curves(report: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    plt = pyplot()
    scalars = report["scalars"]
    corruptions = list(next(iter(scalars.values()))["severity_means"])
    levels = [0, *report["settings"]["severities"]]
    cols = min(3, len(corruptions))
    rows = math.ceil(len(corruptions) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, corruption in zip(axes.flat, corruptions):
        for name, m in scalars.items():
            means = np.asarray(m["severity_means"][corruption])
            spread = abs(means[0]) if means[0] != 0 else 1.0
            style = "-" if m["kind"] == "posterior" else "--"
            rho = m["spearman_per_corruption"][corruption]
            ax.plot(
                levels, (means - means[0]) / spread, style, marker="o", ms=3, label=f"{name} (rho {rho:.2f})"
            )
        ax.set_title(corruption)
        ax.set_xlabel("severity")
        ax.set_ylabel("relative change of the mean")
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(corruptions) :]:
        ax.axis("off")
    fig.suptitle(f"{report['method']} on {report['dataset']}: uncertainty against corruption severity")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_risk_coverage(report: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    plt = pyplot()
    curves = report["risk_coverage"]
    coverage = np.asarray(curves["coverage"])
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, risk in curves["risk"].items():
        m = report["scalars"][name]
        style = "-" if m["kind"] == "posterior" else "--"
        ax.plot(coverage, risk, style, label=f"{name} (AURC {m['aurc']:.4f})")
    ax.axhline(
        report["aurc_random"], color="gray", lw=0.8, label=f"no rejection ({report['aurc_random']:.3f})"
    )
    ax.set_xlabel("coverage (fraction kept, least uncertain first)")
    ax.set_ylabel("kNN error of the kept")
    ax.set_title(f"{report['method']} on {report['dataset']}: risk-coverage")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_per_dim_variance(report: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    plt = pyplot()
    per_dim = report["per_dim_variance"]
    clean = np.asarray(per_dim["clean"])
    order = np.argsort(clean)
    top = str(max(report["settings"]["severities"]))
    names = [c for c in per_dim if c != "clean"]
    ratios = np.stack([np.log(np.asarray(per_dim[c][top])[order] / clean[order]) for c in names])
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(names) + 1.8))
    bound = float(np.abs(ratios).max()) or 1.0
    image = ax.imshow(ratios, aspect="auto", cmap="coolwarm", vmin=-bound, vmax=bound)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("dimension (ordered by clean mean sigma^2)")
    ax.set_title(f"log(sigma^2 at severity {top} / clean), per dimension")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    return save_figure(fig, path)
