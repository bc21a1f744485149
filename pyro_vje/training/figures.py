"""Matplotlib figures of a run's curves, written into ``<run>/figures/``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

_PANELS: list[tuple[str, list[tuple[str, str]]]] = [
    (
        "negative ELBO and its terms",
        [("loss", "loss"), ("dir", "directional"), ("rad", "radial"), ("kl", "KL")],
    ),
    ("kNN top-1 (k=30)", [("knn_z", "z"), ("knn_mu", "mu")]),
    ("posterior variance (Table 7)", [("var_mean", "Var mean"), ("var_cv", "Var CV")]),
    ("effective rank (RankMe)", [("z_rank", "z"), ("mu_rank", "mu")]),
    ("std of normalized embeddings", [("z_norm_std", "z"), ("mu_norm_std", "mu")]),
    ("learning rate", [("lr", "lr")]),
]


def _series(rows: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for row in rows:
        value = row.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            xs.append(row["epoch"])
            ys.append(float(value))
    return xs, ys


#: the kNN panel's horizontal lines: accuracies before training (:mod:`.baselines`)
_BASELINE_LINES = [("knn_raw_pixels", "raw pixels", ":"), ("knn_z_random_init", "random-init z", "--")]


def plot_training_curves(
    rows: list[dict[str, Any]], out_dir: str | os.PathLike, baselines: dict[str, float] | None = None
) -> Path | None:
    """One figure with a panel per family of curves; returns its path (None without rows).

    ``baselines`` (``knn_raw_pixels``, ``knn_z_random_init``) are drawn as horizontal
    lines on the kNN panel: the accuracies training has to beat.
    """
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(2, 3, figsize=(15, 8), constrained_layout=True)
    for ax, (title, curves) in zip(axes.flat, _PANELS):
        ax.set_title(title)
        drawn = False
        for key, label in curves:
            xs, ys = _series(rows, key)
            if xs:
                ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, ms=3, label=label)
                drawn = True
        if title.startswith("kNN"):
            for key, label, style in _BASELINE_LINES:
                value = (baselines or {}).get(key)
                if isinstance(value, (int, float)):
                    ax.axhline(float(value), color="gray", linestyle=style, label=label)
                    drawn = True
        ax.set_xlabel("epoch")
        if drawn:
            ax.legend(fontsize="small")
        else:
            ax.text(0.5, 0.5, "not logged yet", ha="center", va="center", transform=ax.transAxes)
    path = out / "training_curves.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
