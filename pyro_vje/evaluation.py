"""Evaluation of frozen features: weighted k-nearest-neighbour accuracy (paper Table 2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


@torch.no_grad()
def knn_predict(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    num_classes: int,
    k: int = 30,
    temperature: float = 0.1,
    chunk_size: int = 1024,
) -> torch.Tensor:
    """Weighted kNN on L2-normalized features (the InstDisc/solo-learn protocol).

    Each test point takes its ``k`` most cosine-similar training points; a
    neighbour with similarity ``c`` votes for its label with weight
    ``exp(c / temperature)``; the prediction is the label with the largest total.
    """
    if train_features.dim() != 2 or test_features.dim() != 2:
        raise ValueError("knn_predict expects features of shape (N, D)")
    if train_features.shape[1] != test_features.shape[1]:
        raise ValueError(
            f"train and test features differ in D: {train_features.shape[1]} vs {test_features.shape[1]}"
        )
    if not 1 <= k <= len(train_features):
        raise ValueError(f"k must be in [1, {len(train_features)}], got {k}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    train = F.normalize(train_features.float(), dim=1)
    predictions = []
    for start in range(0, len(test_features), chunk_size):
        test = F.normalize(test_features[start : start + chunk_size].float(), dim=1)
        sim, idx = (test @ train.T).topk(k, dim=1)
        votes = torch.zeros(len(test), num_classes, device=test.device)
        votes.scatter_add_(1, train_labels[idx], torch.exp(sim / temperature))
        predictions.append(votes.argmax(dim=1))
    return torch.cat(predictions)


def knn_accuracy(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    num_classes: int,
    k: int = 30,
    temperature: float = 0.1,
) -> float:
    """Top-1 accuracy of :func:`knn_predict`."""
    pred = knn_predict(train_features, train_labels, test_features, num_classes, k, temperature)
    return float((pred == test_labels).float().mean())
