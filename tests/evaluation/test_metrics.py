"""pyro_vje.evaluation.metrics against hand counts (AUROC as Mann-Whitney U, AUPR, FPR@95)."""

import numpy as np
import pytest

from pyro_vje.evaluation import metrics


def test_bad_scores_are_refused():
    with pytest.raises(ValueError, match="NaN"):
        metrics.auroc([0.1, float("nan")], [0.2])
    with pytest.raises(ValueError, match="1-D"):
        metrics.auroc([], [0.2])


def hand_auroc(s_in, s_out):
    total = 0.0
    for a in s_in:
        for b in s_out:
            total += 1.0 if b > a else 0.5 if b == a else 0.0
    return total / (len(s_in) * len(s_out))


def test_auroc_agrees_with_a_hand_count():
    s_in, s_out = [0.1, 0.4, 0.35, 0.8, 0.5], [0.9, 0.4, 0.7, 0.2]
    assert metrics.auroc(s_in, s_out) == pytest.approx(hand_auroc(s_in, s_out))
    assert metrics.auroc(s_in, s_out) == pytest.approx(12.5 / 20)
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 5, 30).astype(float), rng.integers(1, 6, 25).astype(float)
    assert metrics.auroc(a, b) == pytest.approx(hand_auroc(a, b))


def test_aupr_and_fpr95_by_hand():
    s_in, s_out = [0.1, 0.2, 0.3, 0.4], [0.35, 0.5]
    # ranked by score: 0.5(out) 0.4(in) 0.35(out) 0.3 0.2 0.1; precision at the outliers: 1, 2/3
    assert metrics.aupr(s_in, s_out) == pytest.approx((1 + 2 / 3) / 2)
    # threshold keeping 95% of 4 inliers = the 4th smallest (0.4): outliers <= 0.4 -> 0.35 of 2
    assert metrics.fpr_at_tpr(s_in, s_out) == pytest.approx(0.5)
    m = metrics.ood_metrics(s_in, s_out)
    assert set(m) == {"auroc", "aupr_out", "aupr_in", "fpr95"} and m["auroc"] == pytest.approx(7 / 8)
