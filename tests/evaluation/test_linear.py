import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits, make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from pyro_vje.evaluation import LinearProbeConfig, linear_probe


def _tensors(x_train, x_test, y_train, y_test):
    return (
        torch.as_tensor(x_train, dtype=torch.float32),
        torch.as_tensor(y_train),
        torch.as_tensor(x_test, dtype=torch.float32),
        torch.as_tensor(y_test),
    )


def _sklearn_accuracy(x_train, x_test, y_train, y_test) -> float:
    """Independent reference: multinomial logistic regression (L-BFGS) on standardized inputs."""
    scaler = StandardScaler().fit(x_train)
    model = LogisticRegression(C=1.0, max_iter=5000).fit(scaler.transform(x_train), y_train)
    return float(model.score(scaler.transform(x_test), y_test))


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return train_test_split(x, y, test_size=0.25, stratify=y, random_state=0)


@pytest.fixture(scope="module")
def hard_synthetic():
    x, y = make_classification(
        3000, 50, n_informative=20, n_redundant=10, n_classes=10, n_clusters_per_class=1,
        class_sep=1.0, flip_y=0.05, random_state=0,
    )  # fmt: skip
    return train_test_split(x, y, test_size=0.3, random_state=0)


def test_separable_data_is_learned_perfectly():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(6).repeat(50)
    centres = torch.randn(6, 8, generator=g) * 5
    x = centres[labels] + 0.3 * torch.randn(300, 8, generator=g)
    out = linear_probe(x[:200], labels[:200], x[200:], labels[200:], 6, LinearProbeConfig(epochs=20))
    assert out == {"top1": 1.0, "top5": 1.0, "train_top1": 1.0, "epochs": 20.0}


def test_matches_sklearn_on_digits_pixels(digits):
    ours = linear_probe(*_tensors(*digits), 10)
    ref = _sklearn_accuracy(*digits)
    assert ref > 0.95
    assert abs(ours["top1"] - ref) <= 0.02, (ours, ref)
    assert ours["top1"] <= ours["top5"] and ours["train_top1"] > 0.98 and ours["epochs"] == 100.0


def test_matches_sklearn_on_hard_synthetic(hard_synthetic):
    ours = linear_probe(*_tensors(*hard_synthetic), 10)
    ref = _sklearn_accuracy(*hard_synthetic)
    assert 0.45 < ref < 0.65  # genuinely hard: far from both chance and 100 %
    assert abs(ours["top1"] - ref) <= 0.02, (ours, ref)


def test_fast_preset(digits):
    fast = LinearProbeConfig.fast()
    assert fast.epochs == 15 and fast.lr == LinearProbeConfig().lr
    assert LinearProbeConfig.fast(seed=3, batch_size=64) == LinearProbeConfig(
        epochs=15, seed=3, batch_size=64
    )
    out = linear_probe(*_tensors(*digits), 10, fast)
    assert out["epochs"] == 15.0
    assert abs(out["top1"] - _sklearn_accuracy(*digits)) <= 0.03


def test_deterministic_given_seed_and_leaves_global_rng_alone(digits):
    args = _tensors(*digits)
    config = LinearProbeConfig(epochs=3, batch_size=32, seed=7)
    state = torch.get_rng_state()
    first = linear_probe(*args, 10, config)
    assert torch.equal(state, torch.get_rng_state())
    torch.manual_seed(123)  # the global RNG plays no part
    assert linear_probe(*args, 10, config) == first


def test_standardization_makes_the_scale_irrelevant(hard_synthetic):
    x_train, x_test, y_train, y_test = hard_synthetic
    config = LinearProbeConfig(epochs=5)
    base = linear_probe(*_tensors(x_train, x_test, y_train, y_test), 10, config)
    shifted = linear_probe(*_tensors(x_train * 1e3 + 7, x_test * 1e3 + 7, y_train, y_test), 10, config)
    assert shifted["top1"] == pytest.approx(base["top1"], abs=0.005)
    assert shifted["train_top1"] == pytest.approx(base["train_top1"], abs=0.005)


def test_works_under_no_grad(digits):
    with torch.no_grad():
        out = linear_probe(*_tensors(*digits), 10, LinearProbeConfig(epochs=2))
    assert out["top1"] > 0.8


def test_constant_features_and_few_classes():
    g = torch.Generator().manual_seed(1)
    labels = torch.arange(3).repeat(40)
    x = torch.cat([torch.eye(3)[labels] * 4 + torch.randn(120, 3, generator=g), torch.ones(120, 2)], dim=1)
    out = linear_probe(x, labels, x, labels, 3, LinearProbeConfig(epochs=10))
    assert set(out) == {"top1", "train_top1", "epochs"}  # no top-5 with 3 classes
    assert out["top1"] > 0.9 and np.isfinite(out["top1"])


def test_bad_input():
    x, y = torch.randn(20, 4), torch.arange(20) % 5
    config = LinearProbeConfig(epochs=1)
    bad = x.clone()
    bad[2, 2] = float("nan")
    with pytest.raises(ValueError, match="train_features contains NaN or inf"):
        linear_probe(bad, y, x, y, 5, config)
    bad[2, 2] = float("-inf")
    with pytest.raises(ValueError, match="test_features contains NaN or inf"):
        linear_probe(x, y, bad, y, 5, config)
    with pytest.raises(ValueError, match="train_labels has 19 entries"):
        linear_probe(x, y[:19], x, y, 5, config)
    with pytest.raises(ValueError, match="test_labels has 19 entries"):
        linear_probe(x, y, x, y[:19], 5, config)
    with pytest.raises(ValueError, match=r"train_labels must lie in \[0, 4\)"):
        linear_probe(x, y, x, y % 4, 4, config)
    with pytest.raises(ValueError, match="integer class indices"):
        linear_probe(x, y, x, y.float(), 5, config)
    with pytest.raises(ValueError, match="differ in D"):
        linear_probe(x, y, x[:, :3], y, 5, config)
    with pytest.raises(ValueError, match="shape"):
        linear_probe(x[None], y, x, y, 5, config)
    with pytest.raises(ValueError, match="test_features is empty"):
        linear_probe(x, y, x[:0], y[:0], 5, config)
    with pytest.raises(ValueError, match="num_classes"):
        linear_probe(x, y, x, y, 0, config)
    for field, value in [
        ("epochs", 0),
        ("batch_size", 0),
        ("lr", -0.1),
        ("momentum", 1.0),
        ("weight_decay", -1.0),
    ]:
        with pytest.raises(ValueError, match=field):
            linear_probe(x, y, x, y, 5, LinearProbeConfig(**{field: value}))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_with_features_on_cpu(digits):
    out = linear_probe(*_tensors(*digits), 10, LinearProbeConfig.fast(device="cuda"))
    assert abs(out["top1"] - _sklearn_accuracy(*digits)) <= 0.03


def test_the_progress_bar_raises_no_torch_warning(recwarn):  # issue 26: requires_grad UserWarning
    x, y = torch.randn(64, 8), torch.arange(64) % 4
    linear_probe(x, y, x, y, 4, LinearProbeConfig(epochs=2), progress=True)
    assert not [w for w in recwarn if "requires_grad" in str(w.message)]
