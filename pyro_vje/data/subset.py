"""Deterministic class-balanced subsets (e.g. the 8,000-image CIFAR-10 subset of the CPU benchmarks)."""

from __future__ import annotations

import operator
from collections.abc import Sequence

import numpy as np

__all__ = ["balanced_subset_indices"]


def balanced_subset_indices(
    labels: Sequence[int] | np.ndarray, n: int, seed: int = 0, *, strict: bool = False
) -> np.ndarray:
    """``n`` indices into ``labels``, as equal per class as possible, sorted ascending (int64).

    Each of the ``C`` distinct labels (classes in ascending label order) gets ``n // C``
    images; the remainder ``n % C`` goes one each to the first classes. A class with too
    few images contributes all it has and its shortfall is spread over the other
    classes the same way (so the result always has exactly ``n`` indices); with
    ``strict=True`` a short class raises ``ValueError`` instead.

    Within a class the images are taken in the order of one permutation
    ``numpy.random.default_rng(seed).permutation(len(labels))``, so the same
    ``(labels, n, seed)`` gives the same indices on every machine.

    Raises:
        ValueError: ``labels`` not 1-D, ``n < 1``, ``n > len(labels)``, or (``strict``) a short class.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    n = operator.index(n)
    if not 1 <= n <= len(labels):
        raise ValueError(f"n must be in [1, {len(labels)}] (the number of labels), got {n}")
    classes, counts = np.unique(labels, return_counts=True)
    if strict:
        equal = n // len(classes) + (np.arange(len(classes)) < n % len(classes))
        short = {c.item(): int(k) for c, k, q in zip(classes, counts, equal) if k < q}
        if short:
            raise ValueError(
                f"a balanced subset of {n} from {len(classes)} classes needs {n // len(classes)} images per "
                f"class (one more for the first {n % len(classes)}); too few in (label: count): {short}"
            )
    quotas = _quotas(counts, n)
    order = np.random.default_rng(seed).permutation(len(labels))
    ordered = labels[order]
    chosen = [order[ordered == c][:q] for c, q in zip(classes, quotas)]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def _quotas(counts: np.ndarray, n: int) -> np.ndarray:
    """Water-filling: equal shares, remainder to the first classes, shortfalls redistributed."""
    quotas = np.zeros(len(counts), dtype=np.int64)
    remaining = n
    while remaining > 0:
        open_ = np.flatnonzero(quotas < counts)
        share, extra = divmod(remaining, len(open_))
        for rank, k in enumerate(open_):
            give = min(share + (rank < extra), counts[k] - quotas[k])
            quotas[k] += give
            remaining -= give
    return quotas
