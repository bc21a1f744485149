"""Two-view training batches made from a data set held in memory as one tensor, on the target device.

:func:`in_memory_images` takes the pixels of a data set that is already decoded
(:class:`~pyro_vje.data.datasets.CachedImageFolder`, torchvision's CIFAR-10/100 and STL-10,
digits) as one tensor ``(N, C, H, W)``, without decoding anything again.
:class:`TwoViewTensorLoader` moves that tensor to the device once and yields
``((view1, view2), labels)`` batches, both views made by a batched augmentation
(:class:`~pyro_vje.data.batched_views.BatchedMocoV2` for images) on the device, with no
per-image Python and no worker processes.

It stands in for ``DataLoader(dataset, sampler=DistributedSampler(...), drop_last=True)``:
the same ``len``, ``set_epoch(epoch)`` and rank/world-size sharding, and the same order --
it draws the order from a :class:`~torch.utils.data.DistributedSampler` seeded with ``seed``
-- so the order is a pure function of (seed, epoch). The views are drawn from a
``torch.Generator`` on the device, re-seeded from (seed, epoch, rank) at the start of every
pass, so an epoch's views are a pure function of (seed, epoch, rank) too: an interrupted run
resumed at an epoch boundary sees exactly the batches it would have seen. The same seed
gives different views on CPU and CUDA (different generators); the order is the same.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset, DistributedSampler, Subset
from torchvision import datasets as tvd

from .datasets import CachedImageFolder, DigitsDataset

__all__ = ["InMemoryImages", "Normalized", "TwoViewTensorLoader", "in_memory_images", "view_seed"]

BatchAugment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def view_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """The seed of the views' generator in ``epoch`` on ``rank`` (the formula the per-image
    path uses for its DataLoader workers)."""
    return seed * 1_000_003 + epoch + 7_919 * rank


def in_memory_images(ds: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """The images ``(N, C, H, W)`` and labels ``(N,)`` (long) of a data set held in memory.

    ``uint8`` pixels for :class:`~pyro_vje.data.datasets.CachedImageFolder` (``cache=True``)
    and torchvision's CIFAR-10/100, STL-10, MNIST and Fashion-MNIST; float ``[0, 1]`` for
    digits. A ``Subset`` of one of these keeps its indices. The tensors share memory with the
    data set where they can.

    Raises:
        TypeError: for a data set that decodes images when indexed (an uncached ImageFolder):
            build it with ``cache=True``.
    """
    if isinstance(ds, Subset):
        images, labels = in_memory_images(ds.dataset)
        idx = torch.as_tensor(np.asarray(ds.indices, dtype=np.int64))
        return images[idx], labels[idx]
    if isinstance(ds, ConcatDataset):  # e.g. STL-10's train+unlabeled
        parts = [in_memory_images(part) for part in ds.datasets]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    if isinstance(ds, CachedImageFolder):
        images = torch.from_numpy(ds.images).permute(0, 3, 1, 2)
        return images.contiguous(), torch.from_numpy(ds.targets).long()
    if isinstance(ds, (tvd.CIFAR10, tvd.CIFAR100)):  # CIFAR100 subclasses CIFAR10; data (N, H, W, C)
        images = torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2)
        return images.contiguous(), torch.as_tensor(np.asarray(ds.targets, dtype=np.int64))
    if isinstance(ds, tvd.MNIST):  # and FashionMNIST, its subclass; data (N, H, W) uint8
        return ds.data.unsqueeze(1).contiguous(), ds.targets.long()
    if isinstance(ds, tvd.STL10):  # data (N, C, H, W)
        return torch.from_numpy(np.ascontiguousarray(ds.data)), torch.as_tensor(ds.labels.astype(np.int64))
    if isinstance(ds, DigitsDataset):
        return ds.images, ds.targets.long()
    raise TypeError(
        f"{type(ds).__name__} is not held in memory as one array (it decodes images when indexed); "
        f"build it with cache=True (CachedImageFolder) or use the per-image DataLoader path"
    )


class InMemoryImages(Dataset):
    """``(image, label)`` pairs of an image tensor and its labels; ``targets`` are the labels."""

    def __init__(self, images: torch.Tensor, targets: torch.Tensor):
        self.images, self.targets = images, targets

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.targets[index])


class Normalized:
    """``augment`` followed by per-channel normalization: ``(augment(x, g) - mean) / std``.

    For batch augmentations that end in ``[0, 1]`` pixels, such as
    :class:`~pyro_vje.data.digits.DigitsTwoViews` (the per-image digits recipe normalizes too).
    """

    def __init__(self, augment: BatchAugment, mean: tuple[float, ...], std: tuple[float, ...]):
        self.augment = augment
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self._stats: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        views = self.augment(images, generator)
        key = (views.device, views.dtype)
        if key not in self._stats:  # made once per device: a fresh host-to-device copy would synchronize
            shape = (1, -1, 1, 1)
            self._stats[key] = tuple(
                torch.tensor(v, dtype=views.dtype, device=views.device).view(shape)
                for v in (self.mean, self.std)
            )
        mean, std = self._stats[key]
        return (views - mean) / std

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.augment!r}, mean={self.mean}, std={self.std})"


class TwoViewTensorLoader:
    """``((view1, view2), labels)`` batches of an in-memory image tensor, augmented on ``device``.

    Args:
        images: ``(N, C, H, W)`` tensor (``uint8`` for :class:`BatchedMocoV2`); moved to
            ``device`` once.
        labels: ``(N,)`` integer labels.
        augment: ``augment(batch, generator) -> views``, called twice per batch (two views).
        batch_size: images per batch on this process.
        device: where the images live and the views are made.
        seed: the run's seed (order and views).
        num_replicas, rank: the DistributedSampler sharding (one replica for one process).
        drop_last: drop the last incomplete batch (as the training DataLoader does).
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        augment: BatchAugment,
        batch_size: int,
        *,
        device: torch.device | str = "cpu",
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        drop_last: bool = True,
    ):
        if not isinstance(images, torch.Tensor) or images.dim() != 4:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"images must be a tensor (N, C, H, W), got {shape}")
        labels = torch.as_tensor(labels)
        if labels.dim() != 1 or len(labels) != len(images):
            raise ValueError(f"labels must be (N,) = ({len(images)},), got shape {tuple(labels.shape)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must lie in [0, {num_replicas}), got {rank}")
        if len(images) < num_replicas:
            raise ValueError(f"{len(images)} images cannot be shared among {num_replicas} processes")
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.labels = labels.long().to(self.device)
        self.augment = augment
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.rank = int(rank)
        self.drop_last = bool(drop_last)
        # the order of DataLoader(sampler=DistributedSampler(...)): it only needs len(dataset)
        self.sampler = DistributedSampler(
            range(len(images)), num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True
        )
        self.epoch = 0

    @property
    def dataset(self) -> InMemoryImages:
        """The images and labels as a data set (``len``, ``targets``, as ``DataLoader.dataset``)."""
        return InMemoryImages(self.images, self.labels)

    def set_epoch(self, epoch: int) -> None:
        """Fix this epoch's order (seed, epoch) and views (seed, epoch, rank)."""
        self.epoch = int(epoch)
        self.sampler.set_epoch(self.epoch)

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def generator(self) -> torch.Generator:
        """A generator on the device, seeded for this epoch and rank (:func:`view_seed`)."""
        generator = torch.Generator(device=self.device)
        generator.manual_seed(view_seed(self.seed, self.epoch, self.rank))
        return generator

    def __iter__(self) -> Iterator[tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]]:
        # one host-to-device copy of the epoch's order; batches are slices of it (no per-step sync)
        order = torch.tensor(list(self.sampler), dtype=torch.long).to(self.device)
        generator = self.generator()
        for b in range(len(self)):
            index = order[b * self.batch_size : (b + 1) * self.batch_size]
            batch = self.images.index_select(0, index)
            view1 = self.augment(batch, generator)
            view2 = self.augment(batch, generator)
            yield (view1, view2), self.labels.index_select(0, index)
