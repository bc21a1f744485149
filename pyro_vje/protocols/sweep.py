"""The beta x nu sweep of the one-class protocol (paper Section 5.3, Figure 4).

Every cell (beta, nu) runs :func:`~pyro_vje.protocols.one_class.run_one_class` in
``<out>/beta<b>_df<nu>/`` (so an interrupted sweep resumes cell by cell, class by
class); the sweep then writes ``sweep.json`` and ``sweep.md`` (class-averaged AUROC
per score and cell, the cells' mean posterior entropy and variance sum, and the
Pearson correlation of AUROC with them across cells, as the paper reports r = 0.896
and 0.817) and heatmaps in ``figures/``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..config import TrainConfig
from ..runs import atomic_write_json, check_out_path, json_safe
from .one_class import checked_classes, mean_posterior_stats, run_one_class
from .presets import PAPER_BETAS, PAPER_DFS

log = logging.getLogger("pyro_vje")


def cell_name(beta: float, df: float) -> str:
    return f"beta{beta:g}_df{df:g}"


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation over the finite pairs (NaN with fewer than 3 or a constant series)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 3 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def run_sweep(
    config: TrainConfig,
    out: str | os.PathLike,
    betas: Sequence[float] = PAPER_BETAS,
    dfs: Sequence[float] = PAPER_DFS,
    classes: Sequence[int] | None = None,
    *,
    figures: bool = True,
    **one_class_kwargs: Any,
) -> dict[str, Any]:
    """Run every cell and summarize; see the module docstring."""
    if not betas or not dfs:
        raise ValueError("the sweep needs at least one beta and one df")
    classes, _ = checked_classes(config, classes)  # before any folder is made
    out_dir = check_out_path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    grids: dict[str, np.ndarray] = {}
    entropy = np.full((len(betas), len(dfs)), np.nan)
    variance = np.full_like(entropy, np.nan)
    cells = []
    for i, beta in enumerate(betas):
        for j, df in enumerate(dfs):
            cell_dir = out_dir / cell_name(beta, df)
            cfg = dataclasses.replace(config, beta=float(beta), df=float(df))
            results = run_one_class(cfg, cell_dir, classes, figures=False, **one_class_kwargs)
            done = [
                int(p.name.split("-", 1)[1]) for p in cell_dir.glob("class-*") if (p / "scores.npz").is_file()
            ]
            stats = mean_posterior_stats(cell_dir, sorted(done))
            entropy[i, j], variance[i, j] = stats["entropy"], stats["variance"]
            for name, r in results.items():
                grids.setdefault(name, np.full_like(entropy, np.nan))[i, j] = r["mean"]
            cells.append({"beta": beta, "df": df, **{n: r["mean"] for n, r in results.items()}, **stats})
    summary = {
        "betas": list(betas),
        "dfs": list(dfs),
        "mean_auroc": {name: grid.tolist() for name, grid in grids.items()},
        "mean_entropy": entropy.tolist(),
        "mean_variance_sum": variance.tolist(),
        "correlation_with_entropy": {n: pearson(g.ravel(), entropy.ravel()) for n, g in grids.items()},
        "correlation_with_variance": {n: pearson(g.ravel(), variance.ravel()) for n, g in grids.items()},
        "best": _best(grids, betas, dfs),
        "cells": cells,
    }
    atomic_write_json(json_safe(summary), out_dir / "sweep.json")
    (out_dir / "sweep.md").write_text(_markdown(summary))
    if figures:
        from .plots import plot_correlation, plot_sweep_heatmap

        shown = "all" if classes is None else ", ".join(str(c) for c in classes)
        covered = f"classes {shown}, {config.epochs} epoch{'s' if config.epochs != 1 else ''}"

        for name, grid in grids.items():
            plot_sweep_heatmap(
                grid,
                betas,
                dfs,
                out_dir / "figures" / f"heatmap_{name}.png",
                title=f"class-averaged AUROC ({name}); {covered}",
            )
        if "joint" in grids and len(cells) < 2:
            log.info("one sweep cell: no AUROC-against-entropy/variance figures (need two cells)")
        elif "joint" in grids:
            for stat, file, label in (
                (entropy, "auroc_vs_entropy.png", "mean posterior entropy"),
                (variance, "auroc_vs_variance.png", "mean posterior variance sum"),
            ):
                plot_correlation(
                    stat.ravel(), grids["joint"].ravel(), out_dir / "figures" / file, label, "AUROC (joint)"
                )
    return summary


def _best(grids: dict[str, np.ndarray], betas, dfs) -> dict[str, dict[str, float]]:
    best = {}
    for name, grid in grids.items():
        if np.isfinite(grid).any():
            i, j = np.unravel_index(np.nanargmax(grid), grid.shape)
            best[name] = {"beta": betas[i], "df": dfs[j], "auroc": float(grid[i, j])}
    return best


def _markdown(summary: dict[str, Any]) -> str:
    lines = []
    for name, grid in summary["mean_auroc"].items():
        lines += [f"### class-averaged AUROC, score `{name}` (rows: beta, columns: df)", ""]
        lines.append("| beta \\ df | " + " | ".join(f"{d:g}" for d in summary["dfs"]) + " |")
        lines.append("|---" * (len(summary["dfs"]) + 1) + "|")
        for beta, row in zip(summary["betas"], grid):
            lines.append(f"| {beta:g} | " + " | ".join("–" if v != v else f"{v:.3f}" for v in row) + " |")
        r_e = summary["correlation_with_entropy"][name]
        r_v = summary["correlation_with_variance"][name]
        lines += [
            "",
            f"Correlation across cells with posterior entropy r = {r_e:.3f}, "
            f"with variance sum r = {r_v:.3f}.",
            "",
        ]
    return "\n".join(lines)
