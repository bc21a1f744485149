"""Data loaders of a run: two-view training batches, and un-augmented evaluation splits.

The training loader always uses a :class:`~torch.utils.data.DistributedSampler`
(one replica for a single process), seeded by the run's seed and the epoch:
the order of a run is a pure function of (seed, epoch), which is what makes
``--resume`` exact and makes a torchrun run see the same global batches as a
single process with the same global batch size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ..data import (
    DATASET_INFO,
    DatasetInfo,
    TwoViews,
    balanced_subset_indices,
    build_dataset,
    dataset_labels,
    eval_transform,
    train_transform,
)
from .config import TrainConfig
from .distributed import DistInfo


@dataclass
class RunData:
    info: DatasetInfo
    image_size: int
    num_classes: int
    train_loader: DataLoader
    train_sampler: DistributedSampler
    loader_generator: torch.Generator
    bank_loader: DataLoader  # labelled training images, no augmentation (kNN bank / probe training)
    test_loader: DataLoader

    def set_epoch(self, epoch: int, seed: int, rank: int = 0) -> None:
        """Fix this epoch's order (seed, epoch) and worker seeds (seed, epoch, rank)."""
        self.train_sampler.set_epoch(epoch)
        self.loader_generator.manual_seed(seed * 1_000_003 + epoch + 7_919 * rank)


def test_split_name(dataset: str) -> str:
    return "val" if dataset == "imagenet" else "test"


def _subset(
    config: TrainConfig, split: str, n: int | None, seed: int, clip: bool = False
) -> list[int] | None:
    one_class = config.normal_class is not None and split in ("train", config.train_split)
    if n is None and not one_class:
        return None
    plain = build_dataset(config.dataset, split, root=config.data_dir, download=config.download)
    labels = dataset_labels(plain)
    if one_class:  # the one-class protocol: this class's images (n of them, if given)
        members = np.flatnonzero(labels == config.normal_class)
        if len(members) == 0:
            raise ValueError(f"normal_class {config.normal_class}: no such class in the {split!r} split")
        if n is not None and n < len(members):
            members = np.sort(np.random.default_rng(seed).permutation(members)[:n])
        return [int(i) for i in members]
    if clip and n >= len(labels):
        return None
    if n > len(labels):
        raise ValueError(f"subset {n} is larger than the {split!r} split ({len(labels)} images)")
    if (labels < 0).any():  # unlabelled images (STL-10): a plain deterministic random subset
        generator = torch.Generator().manual_seed(seed)
        return sorted(torch.randperm(len(labels), generator=generator)[:n].tolist())
    return [int(i) for i in balanced_subset_indices(labels, n, seed=seed)]


def _eval_loader(ds: Dataset, batch: int, workers: int, pin_memory: bool) -> DataLoader:
    # its own generator: iterating it draws nothing from the global RNG (exact resume)
    return DataLoader(
        ds,
        batch_size=batch,
        shuffle=False,
        num_workers=workers,
        pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(0),
    )


def build_eval_sets(
    config: TrainConfig, split: str | None = None, transform: Callable | None = None
) -> tuple[Dataset, Dataset, int]:
    """The kNN bank (labelled training images, the training subset if any) and the evaluation
    split (``split``, default test/val, ``eval_subset`` if any), both without augmentation
    (``transform`` replaces the evaluation split's), and the number of classes."""
    info = DATASET_INFO[config.dataset]
    size = config.image_size or info.image_size
    common = {"root": config.data_dir, "download": config.download, "cache": config.cache}
    evaluate = eval_transform(info, size)
    clip = config.train_split != "train"  # e.g. STL-10's 5k labelled images under a 100k+ subset
    bank_indices = _subset(config, "train", config.subset, config.seed, clip=clip)
    bank_set = build_dataset(config.dataset, "train", transform=evaluate, indices=bank_indices, **common)
    split = split or test_split_name(config.dataset)
    test_indices = _subset(config, split, config.eval_subset, config.seed)
    test_transform = transform if transform is not None else evaluate
    test_set = build_dataset(config.dataset, split, transform=test_transform, indices=test_indices, **common)
    num_classes = int(max(dataset_labels(bank_set).max(), dataset_labels(test_set).max())) + 1
    return bank_set, test_set, num_classes


def build_run_data(config: TrainConfig, dist: DistInfo, per_rank_batch: int, pin_memory: bool) -> RunData:
    """Datasets, samplers and loaders for ``config`` (see the module docstring)."""
    info = DATASET_INFO[config.dataset]
    size = config.image_size or info.image_size
    common = {"root": config.data_dir, "download": config.download, "cache": config.cache}
    if config.augment == "none":
        augment = eval_transform(info, size)
    else:  # default, or crop: without the color jitter and grayscale
        augment = train_transform(info, size, color=config.augment != "crop")
    train_indices = _subset(config, config.train_split, config.subset, config.seed)
    train_set = build_dataset(
        config.dataset, config.train_split, transform=TwoViews(augment), indices=train_indices, **common
    )
    bank_set, test_set, num_classes = build_eval_sets(config)
    if len(train_set) < per_rank_batch * dist.world_size:
        raise ValueError(
            f"the training set has {len(train_set)} images, fewer than one global batch "
            f"({per_rank_batch * dist.world_size}); lower batch_size or enlarge subset"
        )
    sampler = DistributedSampler(
        train_set,
        num_replicas=dist.world_size,
        rank=dist.rank,
        shuffle=True,
        seed=config.seed,
        drop_last=True,
    )
    generator = torch.Generator()
    workers = config.num_workers
    train_loader = DataLoader(
        train_set,
        batch_size=per_rank_batch,
        sampler=sampler,
        num_workers=workers,
        pin_memory=pin_memory,
        drop_last=True,
        generator=generator,
        prefetch_factor=4 if workers > 0 else None,
    )
    eval_batch = max(256, per_rank_batch)
    return RunData(
        info=info,
        image_size=size,
        num_classes=num_classes,
        train_loader=train_loader,
        train_sampler=sampler,
        loader_generator=generator,
        bank_loader=_eval_loader(bank_set, eval_batch, workers, pin_memory),
        test_loader=_eval_loader(test_set, eval_batch, workers, pin_memory),
    )
