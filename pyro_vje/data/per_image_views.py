"""Per-image views of a data set built without a transform, optionally seeded per (epoch, index).

:class:`PerImageViews` applies a transform (e.g. ``TwoViews(train_transform(info))``) to
the images of a data set from :func:`~pyro_vje.data.datasets.build_dataset` built with
``transform=None``, so one data set object can feed either the per-image DataLoader or the
batched tensor loader.

With ``seed`` given it expects the keys ``(index, epoch)`` of :class:`EpochIndices` and
draws each item's views under the torch seed :func:`item_seed` ``(seed, epoch, index)``
(the global RNG is restored afterwards). The views then do not depend on which DataLoader
worker made them, on how many workers there are, or on what a worker made before: the
workers can stay alive across epochs (``persistent_workers``) and a run resumed at an
epoch still sees exactly the views of the uninterrupted run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler

from .datasets import dataset_classes, dataset_labels

__all__ = ["EpochIndices", "PerImageViews", "item_seed"]


def item_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit torch seed for item ``index`` in ``epoch`` of a run seeded ``seed`` (NumPy's SeedSequence
    mixes the three, so nearby keys give unrelated streams)."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1, np.uint64)[0] >> np.uint64(1))


class EpochIndices(Sampler):
    """The indices of ``sampler`` paired with its epoch: ``(index, epoch)``, for :class:`PerImageViews`."""

    def __init__(self, sampler: DistributedSampler):
        self.sampler = sampler

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.sampler.epoch
        return ((int(i), epoch) for i in self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)


class PerImageViews(Dataset):
    """``(transform(image), label)`` for the items of ``dataset`` (built with ``transform=None``).

    ``seed=None``: keys are indices and ``transform`` draws from the global torch RNG.
    ``seed``: keys are ``(index, epoch)`` and each item is drawn under :func:`item_seed`.
    ``targets`` and ``classes`` are the wrapped data set's, so
    :func:`~pyro_vje.data.datasets.dataset_labels` reads them without decoding.
    """

    def __init__(self, dataset: Dataset, transform: Callable, seed: int | None = None):
        self.dataset = dataset
        self.transform = transform
        self.seed = seed

    @property
    def targets(self) -> np.ndarray:
        return dataset_labels(self.dataset)

    @property
    def classes(self) -> list[str]:
        return dataset_classes(self.dataset)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: Any) -> tuple[Any, int]:
        if self.seed is None:
            image, label = self.dataset[key]
            return self.transform(image), label
        if not (isinstance(key, tuple) and len(key) == 2):
            raise TypeError(
                f"a seeded PerImageViews takes keys (index, epoch) from EpochIndices, got {key!r}"
            )
        index, epoch = key
        image, label = self.dataset[index]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(item_seed(self.seed, epoch, index))
            return self.transform(image), label
