import numpy as np
import pytest
import torch

from pyro_vje.evaluation import knn_accuracy, knn_predict


def _numpy_weighted_knn(train, train_labels, test, num_classes, k, temperature):
    """Independent transcription: cosine similarity, top-k, exp(sim/T) votes."""
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


@pytest.mark.parametrize("k, temperature", [(1, 0.1), (5, 0.07), (30, 0.5)])
def test_knn_matches_numpy_reference(k, temperature):
    g = torch.Generator().manual_seed(0)
    train, test = torch.randn(200, 6, generator=g), torch.randn(50, 6, generator=g)
    labels = torch.randint(0, 4, (200,), generator=g)
    ours = knn_predict(train, labels, test, 4, k=k, temperature=temperature, chunk_size=17)
    ref = _numpy_weighted_knn(train.numpy(), labels.numpy(), test.numpy(), 4, k, temperature)
    np.testing.assert_array_equal(ours.numpy(), ref)


def test_knn_accuracy_on_separable_clusters():
    g = torch.Generator().manual_seed(1)
    centres = torch.eye(3) * 10
    labels = torch.arange(3).repeat(20)
    train = centres[labels] + torch.randn(60, 3, generator=g)
    assert knn_accuracy(train, labels, train, labels, 3, k=5) == 1.0


def test_knn_bad_input():
    x, y = torch.randn(10, 3), torch.zeros(10, dtype=torch.long)
    with pytest.raises(ValueError, match="k must be"):
        knn_predict(x, y, x, 2, k=11)
    with pytest.raises(ValueError, match="differ in D"):
        knn_predict(x, y, torch.randn(4, 2), 2, k=3)
    with pytest.raises(ValueError, match="temperature"):
        knn_predict(x, y, x, 2, k=3, temperature=0.0)
