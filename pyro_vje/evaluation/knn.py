"""Weighted k-nearest-neighbour evaluation of frozen features (paper Tables 2, 5, 6; k = 30).

The protocol of InstDisc (Wu et al., 2018) as used by solo-learn: features are
L2-normalized, each test point takes its ``k`` most cosine-similar training
points, and a neighbour with similarity ``c`` votes for its label with weight
``exp(c / temperature)``. Classes are ranked by their summed votes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["knn_accuracy", "knn_distance", "knn_evaluate", "knn_predict"]


def _check_features(features: torch.Tensor, name: str) -> torch.Tensor:
    """``features`` as a tensor of shape ``(N, D)`` with only finite values, else ``ValueError``."""
    features = torch.as_tensor(features)
    if features.dim() != 2:
        raise ValueError(f"{name} must have shape (N, D), got {tuple(features.shape)}")
    if not (features.is_floating_point() or features.is_complex()):
        features = features.float()
    if not bool(torch.isfinite(features).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return features


def _check_labels(
    labels: torch.Tensor, n: int, num_classes: int, name: str, features_name: str
) -> torch.Tensor:
    """``labels`` as a 1-D int64 tensor of length ``n`` with values in ``[0, num_classes)``."""
    labels = torch.as_tensor(labels)
    if labels.dim() != 1:
        raise ValueError(f"{name} must be 1-D, got shape {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer class indices, got dtype {labels.dtype}")
    if len(labels) != n:
        raise ValueError(f"{name} has {len(labels)} entries but {features_name} has {n} rows")
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(
            f"{name} must lie in [0, {num_classes}), got values in [{int(labels.min())}, {int(labels.max())}]"
        )
    return labels.long()


def _check_common(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    num_classes: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Validate the arguments shared by every evaluation; returns them as checked tensors."""
    if not (isinstance(num_classes, int) and num_classes >= 1):
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    train_features = _check_features(train_features, "train_features")
    test_features = _check_features(test_features, "test_features")
    if train_features.shape[1] != test_features.shape[1]:
        raise ValueError(
            f"train and test features differ in D: {train_features.shape[1]} vs {test_features.shape[1]}"
        )
    if len(train_features) == 0:
        raise ValueError("train_features is empty")
    train_labels = _check_labels(
        train_labels, len(train_features), num_classes, "train_labels", "train_features"
    )
    return train_features, train_labels, test_features


def _knn_votes(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    num_classes: int,
    k: int,
    temperature: float,
    chunk_size: int,
):
    """Yield ``(start, votes)`` per chunk of test points; ``votes`` is ``(chunk, num_classes)``.

    Votes are ``exp((c - c_max) / temperature)`` with ``c_max`` the test point's largest
    similarity: a positive factor per test point that leaves the ranking of classes
    unchanged and keeps small temperatures from overflowing.
    """
    if not (isinstance(k, int) and 1 <= k <= len(train_features)):
        raise ValueError(f"k must be in [1, {len(train_features)}], got {k}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not chunk_size >= 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    train = F.normalize(train_features.float(), dim=1)
    labels = train_labels.to(train.device)
    for start in range(0, len(test_features), chunk_size):
        test = F.normalize(test_features[start : start + chunk_size].to(train.device).float(), dim=1)
        sim, idx = (test @ train.T).topk(k, dim=1)
        weights = torch.exp((sim - sim[:, :1]) / temperature)
        votes = torch.zeros(len(test), num_classes, device=train.device, dtype=weights.dtype)
        votes.scatter_add_(1, labels[idx], weights)
        yield start, votes


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
    ``exp(c / temperature)``; the prediction is the label with the largest total
    (the lowest label among exact ties).

    :param train_features: ``(N, D)`` training features (need not be normalized).
    :param train_labels: ``(N,)`` integer labels in ``[0, num_classes)``.
    :param test_features: ``(M, D)`` test features.
    :param num_classes: number of classes.
    :param k: number of neighbours, ``1 <= k <= N``.
    :param temperature: vote temperature, ``> 0``.
    :param chunk_size: test points per similarity block (bounds memory to ``chunk_size x N``).
    :returns: ``(M,)`` int64 predicted labels, on the device of ``train_features``.
    :raises ValueError: on bad shapes, labels, NaN/inf features or parameters.
    """
    train_features, train_labels, test_features = _check_common(
        train_features, train_labels, test_features, num_classes
    )
    predictions = [
        votes.argmax(dim=1)
        for _, votes in _knn_votes(
            train_features, train_labels, test_features, num_classes, k, temperature, chunk_size
        )
    ]
    if not predictions:
        return torch.zeros(0, dtype=torch.long, device=train_features.device)
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
    """Top-1 accuracy of :func:`knn_predict` (a fraction in ``[0, 1]``)."""
    pred = knn_predict(train_features, train_labels, test_features, num_classes, k, temperature)
    test_labels = _check_labels(test_labels, len(pred), num_classes, "test_labels", "test_features")
    if len(pred) == 0:
        raise ValueError("test_features is empty")
    return float((pred == test_labels.to(pred.device)).float().mean())


@torch.no_grad()
def knn_evaluate(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    num_classes: int,
    k: int = 30,
    temperature: float = 0.1,
    chunk_size: int = 1024,
) -> dict[str, float]:
    """Top-1 and top-5 accuracy of weighted kNN (fractions in ``[0, 1]``).

    ``"top1"``: the class with the largest summed vote is the test label (as
    :func:`knn_predict`). ``"top5"`` (only when ``num_classes >= 5``): fewer than five
    classes have a strictly larger summed vote than the test label, and the test label
    received a vote at all (a class none of the ``k`` neighbours carries is never
    counted, whatever the tie-breaking among zero-vote classes).

    Arguments as :func:`knn_predict`, plus ``test_labels`` ``(M,)``.

    :raises ValueError: on bad shapes, labels out of range, NaN/inf features, empty test set.
    """
    train_features, train_labels, test_features = _check_common(
        train_features, train_labels, test_features, num_classes
    )
    test_labels = _check_labels(test_labels, len(test_features), num_classes, "test_labels", "test_features")
    if len(test_features) == 0:
        raise ValueError("test_features is empty")
    correct1 = correct5 = 0
    for start, votes in _knn_votes(
        train_features, train_labels, test_features, num_classes, k, temperature, chunk_size
    ):
        target = test_labels[start : start + len(votes)].to(votes.device)
        correct1 += int((votes.argmax(dim=1) == target).sum())
        if num_classes >= 5:
            own = votes.gather(1, target[:, None])
            rank = (votes > own).sum(dim=1)
            correct5 += int(((rank < 5) & (own[:, 0] > 0)).sum())
    results = {"top1": correct1 / len(test_features)}
    if num_classes >= 5:
        results["top5"] = correct5 / len(test_features)
    return results


def knn_distance(bank: torch.Tensor, queries: torch.Tensor, k: int = 5) -> torch.Tensor:
    """Mean cosine distance of each query to its ``k`` nearest bank rows (an anomaly score:
    higher = farther from the bank; the one-class protocol's kNN baselines)."""
    bank, queries = _check_features(bank, "bank"), _check_features(queries, "queries")
    if bank.shape[1] != queries.shape[1] or len(bank) == 0:
        raise ValueError(
            f"knn_distance: bank {tuple(bank.shape)} and queries {tuple(queries.shape)} need the same "
            "feature dimension and a non-empty bank"
        )
    if k < 1:
        raise ValueError(f"knn_distance: k must be >= 1, got {k}")
    bank_n, q_n = F.normalize(bank.float(), dim=1), F.normalize(queries.float(), dim=1)
    k = min(k, len(bank_n))
    out = []
    for chunk in q_n.split(1024):
        sims = (chunk @ bank_n.T).topk(k, dim=1).values
        out.append(1.0 - sims.mean(1))
    return torch.cat(out)
