import numpy as np
import pytest
import torch

from pyro_vje.evaluation import knn_accuracy, knn_distance, knn_evaluate, knn_predict


def _numpy_weighted_knn(train, train_labels, test, num_classes, k, temperature):
    """Independent transcription: cosine similarity, top-k, exp(sim/T) votes (float64)."""
    train, test = np.asarray(train, dtype=np.float64), np.asarray(test, dtype=np.float64)
    train = train / np.linalg.norm(train, axis=1, keepdims=True)
    test = test / np.linalg.norm(test, axis=1, keepdims=True)
    out = []
    for row in test:
        sim = train @ row
        nearest = np.argsort(-sim, kind="stable")[:k]
        votes = np.zeros(num_classes)
        for j in nearest:
            votes[train_labels[j]] += np.exp(sim[j] / temperature)
        out.append(int(np.argmax(votes)))
    return np.array(out)


def _numpy_knn_topk(train, train_labels, test, test_labels, num_classes, k, temperature):
    """Float64 loops: summed exp(cos/T) votes of the k nearest; top-1 = argmax, top-5 = the
    test label has a vote and fewer than five classes have strictly more."""
    train = np.asarray(train, dtype=np.float64)
    test = np.asarray(test, dtype=np.float64)
    hits1 = hits5 = 0
    for row, label in zip(test, test_labels):
        sims = []
        for j, other in enumerate(train):
            cos = float(row @ other) / (np.sqrt(row @ row) * np.sqrt(other @ other))
            sims.append((cos, j))
        sims.sort(key=lambda t: -t[0])
        votes = [0.0] * num_classes
        for cos, j in sims[:k]:
            votes[int(train_labels[j])] += np.exp(cos / temperature)
        hits1 += int(max(range(num_classes), key=lambda c: votes[c]) == label)
        higher = sum(1 for v in votes if v > votes[label])
        hits5 += int(votes[label] > 0 and higher < 5)
    return hits1 / len(test), hits5 / len(test)


def _random_problem(seed, n_train=200, n_test=50, dim=6, num_classes=4):
    g = torch.Generator().manual_seed(seed)
    train, test = torch.randn(n_train, dim, generator=g), torch.randn(n_test, dim, generator=g)
    labels = torch.randint(0, num_classes, (n_train,), generator=g)
    test_labels = torch.randint(0, num_classes, (n_test,), generator=g)
    return train, labels, test, test_labels


@pytest.mark.parametrize("k, temperature", [(1, 0.1), (5, 0.07), (30, 0.5)])
def test_knn_matches_numpy_reference(k, temperature):
    train, labels, test, _ = _random_problem(0)
    ours = knn_predict(train, labels, test, 4, k=k, temperature=temperature, chunk_size=17)
    ref = _numpy_weighted_knn(train.numpy(), labels.numpy(), test.numpy(), 4, k, temperature)
    np.testing.assert_array_equal(ours.numpy(), ref)


def test_knn_small_temperature_does_not_overflow():
    """exp(1 / 0.005) overflows float32; votes are shifted by the largest similarity."""
    train, labels, test, _ = _random_problem(3)
    ours = knn_predict(train, labels, test, 4, k=10, temperature=0.005)
    ref = _numpy_weighted_knn(train.numpy(), labels.numpy(), test.numpy(), 4, 10, 0.005)
    np.testing.assert_array_equal(ours.numpy(), ref)


@pytest.mark.parametrize(
    "seed, num_classes, k, temperature, chunk_size",
    [(0, 12, 10, 0.1, 7), (1, 12, 30, 0.1, 1024), (2, 20, 3, 0.07, 5), (3, 6, 30, 0.5, 64)],
)
def test_knn_evaluate_matches_numpy_reference(seed, num_classes, k, temperature, chunk_size):
    train, labels, test, test_labels = _random_problem(seed, 150, 60, 8, num_classes)
    ours = knn_evaluate(train, labels, test, test_labels, num_classes, k, temperature, chunk_size)
    top1, top5 = _numpy_knn_topk(
        train.numpy(), labels.numpy(), test.numpy(), test_labels.numpy(), num_classes, k, temperature
    )
    assert set(ours) == {"top1", "top5"}
    assert ours["top1"] == pytest.approx(top1, abs=1e-12)
    assert ours["top5"] == pytest.approx(top5, abs=1e-12)
    assert ours["top1"] <= ours["top5"]
    assert ours["top1"] == pytest.approx(
        knn_accuracy(train, labels, test, test_labels, num_classes, k, temperature)
    )


def test_knn_evaluate_top5_counts_only_voted_classes():
    """k = 1: only the nearest neighbour's class has a vote, so top-5 equals top-1."""
    train, labels, test, test_labels = _random_problem(4, 100, 80, 5, 10)
    out = knn_evaluate(train, labels, test, test_labels, 10, k=1)
    assert out["top5"] == out["top1"]


def test_knn_evaluate_without_top5_below_five_classes():
    train, labels, test, test_labels = _random_problem(5, num_classes=4)
    out = knn_evaluate(train, labels, test, test_labels, 4, k=5)
    assert set(out) == {"top1"}
    out = knn_evaluate(train, labels, test, test_labels, 5, k=5)  # labels < 4 are valid for 5 classes
    assert set(out) == {"top1", "top5"}


def test_knn_accuracy_on_separable_clusters():
    g = torch.Generator().manual_seed(1)
    centres = torch.eye(3) * 10
    labels = torch.arange(3).repeat(20)
    train = centres[labels] + torch.randn(60, 3, generator=g)
    assert knn_accuracy(train, labels, train, labels, 3, k=5) == 1.0
    assert knn_evaluate(train, labels, train, labels, 3, k=5) == {"top1": 1.0}


def test_knn_bad_input():
    x, y = torch.randn(10, 3), torch.zeros(10, dtype=torch.long)
    with pytest.raises(ValueError, match="k must be"):
        knn_predict(x, y, x, 2, k=11)
    with pytest.raises(ValueError, match="differ in D"):
        knn_predict(x, y, torch.randn(4, 2), 2, k=3)
    with pytest.raises(ValueError, match="temperature"):
        knn_predict(x, y, x, 2, k=3, temperature=0.0)


def test_knn_validates_labels_and_values():
    x, y = torch.randn(10, 3), torch.zeros(10, dtype=torch.long)
    with pytest.raises(ValueError, match="train_labels has 9 entries but train_features has 10"):
        knn_predict(x, y[:9], x, 2, k=3)
    with pytest.raises(ValueError, match="test_labels has 9 entries"):
        knn_evaluate(x, y, x, y[:9], 2, k=3)
    with pytest.raises(ValueError, match="test_labels has 9 entries"):
        knn_accuracy(x, y, x, y[:9], 2, k=3)
    with pytest.raises(ValueError, match=r"train_labels must lie in \[0, 2\)"):
        knn_predict(x, y + 2, x, 2, k=3)
    with pytest.raises(ValueError, match=r"test_labels must lie in \[0, 2\)"):
        knn_evaluate(x, y, x, y - 1, 2, k=3)
    with pytest.raises(ValueError, match="integer class indices"):
        knn_evaluate(x, y.float(), x, y, 2, k=3)
    bad = x.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="train_features contains NaN or inf"):
        knn_evaluate(bad, y, x, y, 2, k=3)
    bad[3, 1] = float("inf")
    with pytest.raises(ValueError, match="test_features contains NaN or inf"):
        knn_evaluate(x, y, bad, y, 2, k=3)
    with pytest.raises(ValueError, match="test_features is empty"):
        knn_evaluate(x, y, x[:0], y[:0], 2, k=3)
    with pytest.raises(ValueError, match="shape"):
        knn_evaluate(x[:, 0], y, x, y, 2, k=3)
    assert knn_predict(x, y, x[:0], 2, k=3).shape == (0,)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_knn_on_cuda_matches_cpu():
    train, labels, test, test_labels = _random_problem(6, 300, 100, 16, 10)
    cpu = knn_evaluate(train, labels, test, test_labels, 10, k=20)
    gpu = knn_evaluate(train.cuda(), labels.cuda(), test.cuda(), test_labels.cuda(), 10, k=20)
    assert gpu == pytest.approx(cpu)


def test_knn_distance_matches_numpy():
    rng = np.random.default_rng(0)
    bank, queries = rng.normal(size=(20, 6)), rng.normal(size=(7, 6))
    b = bank / np.linalg.norm(bank, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    expected = [1 - np.sort(b @ qi)[-3:].mean() for qi in q]
    got = knn_distance(torch.tensor(bank), torch.tensor(queries), k=3)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="feature dimension"):
        knn_distance(torch.tensor(bank), torch.tensor(queries[:, :4]))
    with pytest.raises(ValueError, match="k must be"):
        knn_distance(torch.tensor(bank), torch.tensor(queries), k=0)
