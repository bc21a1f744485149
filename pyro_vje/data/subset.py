"""Which images of a split a run reads: deterministic subsets, in one place.

* :func:`balanced_subset_indices` — ``n`` indices as equal per class as possible (e.g. the
  8,000-image CIFAR-10 subset of the CPU benchmarks);
* :func:`subset_indices` — the narrowing a run applies to a split: one class's images (the
  one-class protocol), a class-balanced subset, a plain random subset (unlabelled data, or
  ``balanced=False`` for ``pyro-vje score --limit``), or everything (``None``);
* :func:`narrow` — a data set restricted to such indices.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

__all__ = ["balanced_subset_indices", "narrow", "subset_indices"]


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


def subset_indices(
    labels: Sequence[int] | np.ndarray,
    n: int | None = None,
    seed: int = 0,
    *,
    normal_class: int | None = None,
    balanced: bool = True,
    clip: bool = False,
    split: str = "split",
) -> list[int] | None:
    """The indices of a split (with these ``labels``) that a run reads, ascending; ``None`` for all.

    * ``normal_class`` given: that class's images only (the one-class protocol), ``n`` of
      them at random (``numpy`` permutation seeded with ``seed``) when ``n`` is smaller;
    * else ``n=None``: everything (``None``);
    * else ``n`` images: class-balanced (:func:`balanced_subset_indices`) when ``balanced`` and
      the images are labelled; for unlabelled images (any label < 0, e.g. STL-10's) a plain
      random subset drawn with ``torch.randperm`` seeded with ``seed``; with
      ``balanced=False`` a plain random subset drawn with a ``numpy`` permutation.
      ``n`` at least the split's size gives everything when ``clip`` or ``balanced=False``,
      and a ``ValueError`` (``n`` larger than the split) otherwise.

    ``split`` names the split in error messages.
    """
    labels = np.asarray(labels)
    if normal_class is not None:
        members = np.flatnonzero(labels == normal_class)
        if len(members) == 0:
            raise ValueError(f"normal_class {normal_class}: no such class in the {split!r} split")
        if n is not None and n < len(members):
            members = np.sort(np.random.default_rng(seed).permutation(members)[:n])
        return [int(i) for i in members]
    if n is None:
        return None
    n = operator.index(n)
    if not balanced:
        if n >= len(labels):
            return None
        return np.sort(np.random.default_rng(seed).permutation(len(labels))[:n]).tolist()
    if clip and n >= len(labels):
        return None
    if n > len(labels):
        raise ValueError(f"subset {n} is larger than the {split!r} split ({len(labels)} images)")
    if (labels < 0).any():  # unlabelled images (STL-10): a plain deterministic random subset
        generator = torch.Generator().manual_seed(seed)
        return sorted(torch.randperm(len(labels), generator=generator)[:n].tolist())
    return [int(i) for i in balanced_subset_indices(labels, n, seed=seed)]


def narrow(dataset: Dataset, indices: Sequence[int] | None) -> Dataset:
    """``dataset`` restricted to ``indices`` (a :class:`~torch.utils.data.Subset`), or itself for ``None``."""
    return dataset if indices is None else Subset(dataset, list(indices))
