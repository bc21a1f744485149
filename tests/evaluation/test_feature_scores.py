"""Feature-space anomaly baselines against independent references (scipy, NumPy in float64)."""

import numpy as np
import pytest
import torch
from scipy.spatial.distance import mahalanobis as scipy_mahalanobis

from pyro_vje.evaluation.feature_scores import feature_scores, inverse_norm, mahalanobis


def _tied_covariance(bank: np.ndarray, labels: np.ndarray) -> np.ndarray:
    centred = np.concatenate([bank[labels == c] - bank[labels == c].mean(0) for c in np.unique(labels)])
    return centred.T @ centred / len(bank)


def test_mahalanobis_of_one_gaussian_matches_scipy():
    rng = np.random.default_rng(0)
    bank = rng.normal(size=(300, 5)) @ rng.normal(size=(5, 5))  # a correlated Gaussian
    queries = rng.normal(size=(40, 5)) * 3
    got = mahalanobis(torch.tensor(bank), torch.tensor(queries), ridge=0.0).numpy()
    inv = np.linalg.inv(np.cov(bank.T, bias=True))
    want = np.array([scipy_mahalanobis(q, bank.mean(0), inv) ** 2 for q in queries])
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_class_conditional_mahalanobis_is_the_nearest_class_under_the_tied_covariance():
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1, 2], 100)
    bank = rng.normal(size=(300, 4)) + np.array([[0, 0, 0, 0], [5, 0, 0, 0], [0, 5, 0, 0]])[labels]
    queries = rng.normal(size=(30, 4)) * 4
    got = mahalanobis(torch.tensor(bank), torch.tensor(queries), torch.tensor(labels), ridge=0.0).numpy()
    inv = np.linalg.inv(_tied_covariance(bank, labels))
    means = [bank[labels == c].mean(0) for c in range(3)]
    want = np.array([min(scipy_mahalanobis(q, m, inv) ** 2 for m in means) for q in queries])
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_a_collapsed_bank_stays_finite_and_still_ranks_off_subspace_queries_far():
    rng = np.random.default_rng(2)
    bank = torch.tensor(rng.normal(size=(50, 1)) * np.array([[1.0, 2.0, 0.0]]))  # rank 1 in 3-D
    on = torch.tensor([[1.0, 2.0, 0.0]])
    off = torch.tensor([[0.0, 0.0, 1.0]])
    d_on, d_off = mahalanobis(bank, on), mahalanobis(bank, off)
    assert torch.isfinite(d_on).all() and torch.isfinite(d_off).all()
    assert d_off.item() > 1e3 * d_on.item()


def test_inverse_norm_matches_numpy():
    x = np.array([[3.0, 4.0], [0.0, 0.5], [1.0, 0.0]])
    np.testing.assert_allclose(
        inverse_norm(torch.tensor(x)).numpy(), 1 / np.linalg.norm(x, axis=1), rtol=1e-6
    )


def test_feature_scores_names_and_bad_input():
    rng = np.random.default_rng(3)
    bank = {"z": torch.tensor(rng.normal(size=(20, 3))), "labels": torch.zeros(20, dtype=torch.long)}
    test = {"z": torch.tensor(rng.normal(size=(7, 3)))}
    out = feature_scores(bank, test, k=3)
    assert set(out) == {"knn_z", "mahalanobis_z", "inverse_norm_z"}  # no mu: not in the features
    assert all(v.shape == (7,) for v in out.values())
    with pytest.raises(ValueError, match="neither bank nor test"):
        feature_scores({"h": bank["z"]}, {"h": test["z"]}, features=("z",))
    with pytest.raises(ValueError, match="differ in D"):
        mahalanobis(bank["z"], torch.zeros(2, 4))
    with pytest.raises(ValueError, match="NaN"):
        mahalanobis(bank["z"], torch.full((2, 3), float("nan")))
    with pytest.raises(ValueError, match="bank labels"):
        mahalanobis(bank["z"], test["z"], torch.zeros(3))
