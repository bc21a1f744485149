"""Uncertainty metrics against independent references: scipy, sklearn, brute force over orders."""

import itertools

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from pyro_vje.evaluation.uncertainty_metrics import aurc, fraction_higher, r_auroc, risk_coverage, spearman


def test_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, size=200).astype(float)  # many ties
    y = x + rng.normal(size=200)
    assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
    assert np.isnan(spearman(np.ones(5), np.arange(5)))


def test_r_auroc_matches_sklearn_with_wrong_as_positive():
    rng = np.random.default_rng(1)
    u = rng.normal(size=300)
    wrong = rng.random(300) < 1 / (1 + np.exp(-2 * u))
    assert r_auroc(u, wrong) == pytest.approx(roc_auc_score(wrong, u))
    assert np.isnan(r_auroc(u, np.zeros(300, bool)))


def _brute_force_curve(u, e):
    """The risk at each k averaged over every order of the tied uncertainties."""
    n = len(u)
    curves = []
    for perm in itertools.permutations(range(n)):
        order = sorted(perm, key=lambda i: u[i])  # a stable sort of one order of the ties
        kept = np.cumsum(np.asarray(e, float)[order])
        curves.append(kept / np.arange(1, n + 1))
    return np.mean(curves, axis=0)


def test_risk_coverage_is_the_brute_force_curve_over_tie_orders():
    u = np.array([0.3, 0.1, 0.3, 0.9, 0.1, 0.3, 0.5])
    e = np.array([1, 0, 0, 1, 1, 0, 0])
    coverage, risk = risk_coverage(u, e)
    np.testing.assert_allclose(coverage, np.arange(1, 8) / 7)
    np.testing.assert_allclose(risk, _brute_force_curve(u, e), atol=1e-12)
    assert aurc(u, e) == pytest.approx(_brute_force_curve(u, e).mean())


def test_aurc_orders_a_perfect_a_constant_and_an_inverted_scalar():
    e = np.array([0, 0, 0, 1, 1])
    perfect, flat, inverted = aurc(e.astype(float), e), aurc(np.zeros(5), e), aurc(-e.astype(float), e)
    assert perfect < flat < inverted
    assert flat == pytest.approx(0.4)  # a constant scalar: the overall error rate at every coverage


def test_fraction_higher_counts_ties_half_and_checks_lengths():
    assert fraction_higher([1, 2, 3, 4], [0, 2, 5, 1]) == pytest.approx((1 + 0.5 + 0 + 1) / 4)
    with pytest.raises(ValueError, match="lengths differ"):
        fraction_higher([1, 2], [1])
    with pytest.raises(ValueError, match="NaN"):
        spearman([1, np.nan], [1, 2])
