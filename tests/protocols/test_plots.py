"""Tests for :mod:`pyro_vje.protocols.plots` (small arrays, Agg backend, < a few seconds)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score

from pyro_vje.protocols import plots as sp


def _check_png(path: Path, returned: Path) -> tuple[int, int]:
    assert returned == path
    assert path.is_file() and path.stat().st_size > 0
    with Image.open(path) as img:
        assert img.format == "PNG"
        w, h = img.size
    assert 200 <= w <= 4000 and 150 <= h <= 4000
    return w, h


def _pairs(rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {
        "joint": (rng.normal(0, 1, 200), rng.normal(1.5, 1, 150)),
        "radial": (rng.normal(0, 1, 100), rng.normal(0.3, 1, 80)),
    }


def _hand_auroc(scores_in: np.ndarray, scores_out: np.ndarray) -> float:
    total = 0.0
    for a in scores_in:
        for b in scores_out:
            if b > a:
                total += 1.0
            elif b == a:
                total += 0.5
    return total / (len(scores_in) * len(scores_out))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


# ---------------------------------------------------------------- _auroc


def test_auroc_matches_hand_count_with_ties() -> None:
    s_in = np.array([0.1, 0.4, 0.4, 0.9, 2.0, 0.0])
    s_out = np.array([0.4, 1.0, 0.9, 3.0, 0.0])
    expected = _hand_auroc(s_in, s_out)
    assert sp._auroc(s_in, s_out) == pytest.approx(expected, abs=1e-12)


def test_auroc_matches_hand_count_random(rng: np.random.Generator) -> None:
    s_in = rng.integers(0, 6, 40).astype(float)  # many ties
    s_out = rng.integers(2, 8, 30).astype(float)
    assert sp._auroc(s_in, s_out) == pytest.approx(_hand_auroc(s_in, s_out), abs=1e-12)
    assert sp._auroc(s_in, s_out) == pytest.approx(1.0 - sp._auroc(s_out, s_in), abs=1e-12)


def test_auroc_extremes() -> None:
    assert sp._auroc([0, 1, 2], [3, 4]) == 1.0
    assert sp._auroc([3, 4], [0, 1, 2]) == 0.0
    assert sp._auroc([1, 1], [1, 1, 1]) == 0.5


def test_auroc_rejects_empty_and_nan() -> None:
    with pytest.raises(ValueError, match="empty"):
        sp._auroc([], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        sp._auroc([np.nan, 1.0], [1.0])


# ---------------------------------------------------------------- ROC


def test_plot_roc_curves_writes_png(tmp_path: Path, rng: np.random.Generator) -> None:
    path = tmp_path / "nested" / "dir" / "roc.png"
    out = sp.plot_roc_curves(_pairs(rng), path, title="ROC")
    _check_png(path, out)


def test_plot_roc_curves_legend_auroc_matches_sklearn(
    tmp_path: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    curves = _pairs(rng)
    captured: list[str] = []
    real_save = sp.save_figure

    def spy(fig: Any, path: Path) -> Path:
        legend = fig.axes[0].get_legend()
        captured.extend(t.get_text() for t in legend.get_texts())
        return real_save(fig, path)

    monkeypatch.setattr(sp, "save_figure", spy)
    sp.plot_roc_curves(curves, tmp_path / "roc.png")
    assert len(captured) == len(curves) + 1  # + chance line
    for label, (s_in, s_out) in curves.items():
        y = np.r_[np.zeros(s_in.size), np.ones(s_out.size)]
        ref = roc_auc_score(y, np.r_[s_in, s_out])
        text = next(t for t in captured if t.startswith(label + " "))
        m = re.search(r"AUROC (\d\.\d{3})", text)
        assert m is not None, text
        assert m.group(1) == f"{ref:.3f}"


def test_plot_roc_curves_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="empty"):
        sp.plot_roc_curves({}, tmp_path / "a.png")
    with pytest.raises(ValueError, match="pair"):
        sp.plot_roc_curves({"x": (np.ones(3),)}, tmp_path / "a.png")  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="empty"):
        sp.plot_roc_curves({"x": (np.ones(3), np.array([]))}, tmp_path / "a.png")
    assert not (tmp_path / "a.png").exists()


# ---------------------------------------------------------------- histograms


def test_plot_score_histograms_grid_and_robustness(tmp_path: Path, rng: np.random.Generator) -> None:
    scores = _pairs(rng)
    scores["const"] = (np.full(10, 2.0), np.full(12, 2.0))  # constant arrays
    scores["outlier"] = (np.r_[rng.normal(size=100), 1e9], rng.normal(1, 1, 100))
    out = sp.plot_score_histograms(scores, tmp_path / "h.png", in_label="CIFAR-10", out_label="SVHN")
    w, h = _check_png(tmp_path / "h.png", out)
    assert w > h  # 3 columns x 2 rows


def test_shared_bins_clip_outliers_and_constant() -> None:
    pooled = np.r_[np.linspace(0, 1, 1000), 1e9]
    bins = sp._shared_bins(pooled)
    assert bins[-1] < 10
    const = sp._shared_bins(np.zeros(5))
    assert const[-1] > const[0] and np.all(np.isfinite(const))


def test_plot_score_histograms_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="empty"):
        sp.plot_score_histograms({}, tmp_path / "h.png")
    with pytest.raises(ValueError):
        sp.plot_score_histograms({"s": np.ones(4)}, tmp_path / "h.png")  # type: ignore[dict-item]


# ---------------------------------------------------------------- variances


def test_plot_variance_histograms(tmp_path: Path, rng: np.random.Generator) -> None:
    variances = {
        "inlier": np.exp(rng.normal(-2, 0.5, (50, 8))),
        "outlier": np.exp(rng.normal(0, 0.5, 120)),
    }
    out = sp.plot_variance_histograms(variances, tmp_path / "v.png")
    _check_png(tmp_path / "v.png", out)
    out = sp.plot_variance_histograms({"c": np.full((4, 3), 0.1)}, tmp_path / "c.png")
    _check_png(tmp_path / "c.png", out)


def test_plot_variance_histograms_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="empty"):
        sp.plot_variance_histograms({}, tmp_path / "v.png")
    with pytest.raises(ValueError, match="positive"):
        sp.plot_variance_histograms({"a": np.array([0.1, 0.0])}, tmp_path / "v.png")
    with pytest.raises(ValueError, match="empty"):
        sp.plot_variance_histograms({"a": np.zeros((0, 4))}, tmp_path / "v.png")


# ---------------------------------------------------------------- heatmap


def test_plot_sweep_heatmap_with_nan(tmp_path: Path, rng: np.random.Generator) -> None:
    betas, dfs = [0.1, 1.0, 10.0], [1, 2, 5, 30]
    values = rng.uniform(0.5, 1.0, (3, 4))
    values[1, 2] = np.nan
    out = sp.plot_sweep_heatmap(values, betas, dfs, tmp_path / "sweep.png")
    _check_png(tmp_path / "sweep.png", out)


def test_plot_sweep_heatmap_nan_cell_text(
    tmp_path: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = np.array([[0.6, np.nan], [0.7, 0.8]])
    texts: list[str] = []
    real_save = sp.save_figure

    def spy(fig: Any, path: Path) -> Path:
        texts.extend(t.get_text() for t in fig.axes[0].texts)
        return real_save(fig, path)

    monkeypatch.setattr(sp, "save_figure", spy)
    sp.plot_sweep_heatmap(values, [0.5, 1.0], [3, 10], tmp_path / "s.png", fmt="{:.2f}")
    assert texts == ["0.60", "–", "0.70", "0.80"]


def test_plot_sweep_heatmap_all_nan_and_constant(tmp_path: Path) -> None:
    _check_png(
        tmp_path / "a.png", sp.plot_sweep_heatmap(np.full((2, 2), np.nan), [1, 2], [3, 4], tmp_path / "a.png")
    )
    _check_png(
        tmp_path / "b.png", sp.plot_sweep_heatmap(np.full((1, 3), 0.7), [1], [3, 4, 5], tmp_path / "b.png")
    )


def test_plot_sweep_heatmap_shape_mismatch(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="shape"):
        sp.plot_sweep_heatmap(np.zeros((3, 4)), [1, 2, 3], [1, 2, 3], tmp_path / "s.png")
    with pytest.raises(ValueError, match="shape"):
        sp.plot_sweep_heatmap(np.zeros((4, 3)), [1, 2, 3], [1, 2, 3, 4], tmp_path / "s.png")
    with pytest.raises(ValueError, match="non-empty"):
        sp.plot_sweep_heatmap(np.zeros((0, 0)), [], [], tmp_path / "s.png")


# ---------------------------------------------------------------- per-class bars


def test_plot_per_class_auroc(tmp_path: Path) -> None:
    classes = [f"class{i}" for i in range(10)]
    results = {
        "joint": {c: 0.5 + 0.04 * i for i, c in enumerate(classes)},
        "radial": {c: 0.9 - 0.03 * i for i, c in enumerate(classes)},
        "directional": {c: 0.7 for c in classes[:7]},  # missing classes leave gaps
    }
    out = sp.plot_per_class_auroc(results, tmp_path / "bars.png")
    _check_png(tmp_path / "bars.png", out)


def test_plot_per_class_auroc_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="empty"):
        sp.plot_per_class_auroc({}, tmp_path / "b.png")
    with pytest.raises(ValueError, match="empty"):
        sp.plot_per_class_auroc({"joint": {}}, tmp_path / "b.png")
    with pytest.raises(ValueError, match="finite"):
        sp.plot_per_class_auroc({"joint": {"a": float("nan")}}, tmp_path / "b.png")


# ---------------------------------------------------------------- correlation


def test_plot_correlation(tmp_path: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch) -> None:
    x = rng.normal(size=30)
    y = 2 * x + rng.normal(scale=0.5, size=30)
    titles: list[str] = []
    real_save = sp.save_figure

    def spy(fig: Any, path: Path) -> Path:
        titles.append(fig.axes[0].get_title())
        return real_save(fig, path)

    monkeypatch.setattr(sp, "save_figure", spy)
    out = sp.plot_correlation(x, y, tmp_path / "c.png", xlabel="entropy", ylabel="cell AUROC")
    _check_png(tmp_path / "c.png", out)
    assert f"r = {np.corrcoef(x, y)[0, 1]:.3f}" in titles[0]


def test_plot_correlation_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="same number"):
        sp.plot_correlation(np.ones(3), np.ones(4), tmp_path / "c.png", "x", "y")
    with pytest.raises(ValueError, match="two points"):
        sp.plot_correlation(np.ones(1), np.ones(1), tmp_path / "c.png", "x", "y")
    with pytest.raises(ValueError, match="empty"):
        sp.plot_correlation(np.array([]), np.array([]), tmp_path / "c.png", "x", "y")


def test_figures_are_closed(tmp_path: Path, rng: np.random.Generator) -> None:
    plt = sp.pyplot()
    before = len(plt.get_fignums())
    sp.plot_roc_curves(_pairs(rng), tmp_path / "r.png")
    sp.plot_correlation(np.arange(5.0), np.arange(5.0) ** 2, tmp_path / "c.png", "x", "y")
    assert len(plt.get_fignums()) == before
