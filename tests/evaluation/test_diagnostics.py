import math

import numpy as np
import pytest
import torch

from pyro_vje.evaluation import (
    effective_rank,
    embedding_diagnostics,
    normalized_std,
    posterior_variance_stats,
)


def _np_rankme(x: np.ndarray, eps: float = 1e-7) -> float:
    """Garrido et al. (2023), transcribed in numpy float64."""
    s = np.linalg.svd(np.asarray(x, dtype=np.float64), compute_uv=False)
    p = s / np.abs(s).sum() + eps
    return float(np.exp(-np.sum(p * np.log(p))))


def _np_normalized_std(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    return float(unit.std(axis=0, ddof=1).mean())


def _np_variance_stats(v: np.ndarray) -> tuple[float, float]:
    per_dim = np.asarray(v, dtype=np.float64).mean(axis=0)
    return float(per_dim.mean()), float(per_dim.std(ddof=1) / per_dim.mean())


def _with_singular_values(n: int, d: int, singular: list[float], seed: int = 0) -> torch.Tensor:
    """An n x d matrix with the given non-zero singular values (random singular vectors)."""
    rng = np.random.default_rng(seed)
    r = len(singular)
    u, _ = np.linalg.qr(rng.normal(size=(n, r)))
    v, _ = np.linalg.qr(rng.normal(size=(d, r)))
    return torch.from_numpy(u @ np.diag(singular) @ v.T)


# --- posterior_variance_stats (Table 7) ---


def test_variance_stats_hand_made():
    # per-dimension averages over the 2 inputs: 0.2, 0.3, 0.4 -> mean 0.3, sample std 0.1
    v = torch.tensor([[0.1, 0.2, 0.3], [0.3, 0.4, 0.5]], dtype=torch.float64)
    mean, cv = posterior_variance_stats(v)
    assert mean == pytest.approx(0.3, rel=1e-12)
    assert cv == pytest.approx(0.1 / 0.3, rel=1e-6)


def _as_in_old_train_py(variances: torch.Tensor) -> tuple[float, float]:
    """The function this one was copied from (``pyro_vje/train.py`` at commit 8eef84a)."""
    per_dim = variances.mean(0)
    mean = per_dim.mean()
    return float(mean), float(per_dim.std() / mean)


def test_variance_stats_match_numpy_and_the_former_training_copy():
    v = torch.rand(64, 16, generator=torch.Generator().manual_seed(0)) * torch.linspace(0.1, 2.0, 16)
    ours = posterior_variance_stats(v)
    assert ours == pytest.approx(_np_variance_stats(v.numpy()), rel=1e-6)
    assert ours == pytest.approx(_as_in_old_train_py(v), rel=1e-5)


def test_variance_stats_isotropic_and_collapsed():
    mean, cv = posterior_variance_stats(torch.full((10, 8), 0.99))
    assert mean == pytest.approx(0.99) and cv == pytest.approx(0.0, abs=1e-6)
    mean, cv = posterior_variance_stats(torch.full((10, 8), 1e-6) * torch.arange(1, 9))  # at the floor
    assert mean < 1e-4 and math.isnan(cv)
    assert math.isnan(posterior_variance_stats(torch.zeros(4, 3))[1])
    assert not math.isnan(posterior_variance_stats(torch.full((4, 3), 1e-6), zero_tol=0.0)[1])
    assert math.isnan(posterior_variance_stats(torch.ones(4, 1))[1])  # one dimension: no spread


def test_variance_stats_bad_input():
    with pytest.raises(ValueError, match="non-negative"):
        posterior_variance_stats(torch.tensor([[0.1, -0.2]]))
    with pytest.raises(ValueError, match="variances contains NaN or inf"):
        posterior_variance_stats(torch.tensor([[0.1, float("nan")]]))
    with pytest.raises(ValueError, match="shape"):
        posterior_variance_stats(torch.ones(5))


# --- effective_rank (RankMe) ---


@pytest.mark.parametrize("r", [1, 3, 7, 16])
def test_rank_of_equal_singular_values_is_the_rank(r):
    x = _with_singular_values(50, 16, [2.5] * r, seed=r)
    assert effective_rank(x) == pytest.approx(r, rel=1e-4)
    assert effective_rank(x) == pytest.approx(_np_rankme(x.numpy()), rel=1e-10)


def test_rank_one_and_zero():
    v = torch.randn(1, 32, generator=torch.Generator().manual_seed(0))
    rows = torch.linspace(0.5, 3.0, 40)[:, None] * v  # every row on one line
    assert effective_rank(rows) == pytest.approx(1.0, abs=1e-4)
    assert effective_rank(torch.zeros(5, 4)) == 0.0


def test_rank_matches_numpy_reference_and_is_scale_free():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(200, 24, generator=g) @ torch.diag(torch.logspace(-2, 1, 24))
    ref = _np_rankme(x.double().numpy())
    assert effective_rank(x) == pytest.approx(ref, rel=1e-6)  # float32 input, float64 inside
    assert effective_rank(x.double() * 1e4) == pytest.approx(ref, rel=1e-9)
    assert effective_rank(x, eps=0.0) == pytest.approx(_np_rankme(x.double().numpy(), eps=0.0), rel=1e-6)
    assert 1.0 < ref < 24.0


def test_rank_bad_input():
    with pytest.raises(ValueError, match="features contains NaN or inf"):
        effective_rank(torch.tensor([[1.0, float("inf")]]))


# --- normalized_std ---


def test_normalized_std_of_collapsed_features_is_zero():
    v = torch.randn(1, 10, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    collapsed = torch.linspace(0.1, 5.0, 30, dtype=torch.float64)[:, None] * v  # one direction, any norm
    assert normalized_std(collapsed) == pytest.approx(0.0, abs=1e-12)
    assert normalized_std(collapsed, relative=True) == pytest.approx(0.0, abs=1e-12)


def test_normalized_std_of_isotropic_gaussian_is_one_over_sqrt_d():
    d = 16
    x = torch.randn(20000, d, generator=torch.Generator().manual_seed(3))
    assert normalized_std(x) == pytest.approx(1 / math.sqrt(d), rel=0.02)
    assert normalized_std(x, relative=True) == pytest.approx(1.0, rel=0.02)
    assert normalized_std(x) == pytest.approx(_np_normalized_std(x.numpy()), rel=1e-10)


def test_normalized_std_matches_numpy_on_uncentred_features():
    x = torch.rand(300, 12, generator=torch.Generator().manual_seed(4)) + 0.5  # positive, like post-ReLU
    ours = normalized_std(x)
    assert ours == pytest.approx(_np_normalized_std(x.numpy()), rel=1e-10)
    assert ours < 0.5 / math.sqrt(12)  # far below the isotropic value although not collapsed


def test_normalized_std_needs_two_rows():
    with pytest.raises(ValueError, match="at least 2 rows"):
        normalized_std(torch.ones(1, 3))


# --- embedding_diagnostics ---


def test_embedding_diagnostics_keys_and_values():
    g = torch.Generator().manual_seed(5)
    z, mu = torch.randn(100, 8, generator=g) * 3, torch.randn(100, 8, generator=g)
    var = torch.rand(100, 8, generator=g)
    out = embedding_diagnostics(z)
    assert set(out) == {"z_rank", "z_norm_std", "z_norm_std_rel", "z_norm_mean"}
    out = embedding_diagnostics(z, mu=mu, variances=var)
    assert list(out) == [
        "z_rank", "z_norm_std", "z_norm_std_rel", "z_norm_mean",
        "mu_rank", "mu_norm_std", "mu_norm_std_rel", "var_mean", "var_cv",
    ]  # fmt: skip
    assert all(isinstance(v, float) for v in out.values())
    assert out["z_rank"] == pytest.approx(_np_rankme(z.numpy()), rel=1e-6)
    assert out["mu_rank"] == pytest.approx(_np_rankme(mu.numpy()), rel=1e-6)
    assert out["z_norm_std"] == pytest.approx(_np_normalized_std(z.numpy()), rel=1e-8)
    assert out["z_norm_std_rel"] == pytest.approx(out["z_norm_std"] * math.sqrt(8))
    assert out["mu_norm_std_rel"] == pytest.approx(out["mu_norm_std"] * math.sqrt(8))
    assert out["z_norm_mean"] == pytest.approx(
        float(np.linalg.norm(z.double().numpy(), axis=1).mean()), rel=1e-10
    )
    assert (out["var_mean"], out["var_cv"]) == pytest.approx(_np_variance_stats(var.numpy()), rel=1e-6)
    assert set(embedding_diagnostics(z, variances=var)) == {
        "z_rank", "z_norm_std", "z_norm_std_rel", "z_norm_mean", "var_mean", "var_cv",
    }  # fmt: skip


def test_embedding_diagnostics_rows_must_match():
    with pytest.raises(ValueError, match="mu has 9 rows but z has 10"):
        embedding_diagnostics(torch.randn(10, 4), mu=torch.randn(9, 4))
    with pytest.raises(ValueError, match="variances has 3 rows"):
        embedding_diagnostics(torch.randn(10, 4), variances=torch.rand(3, 4))
    with pytest.raises(ValueError, match="mu contains NaN"):
        embedding_diagnostics(torch.randn(10, 4), mu=torch.full((10, 4), float("nan")))
