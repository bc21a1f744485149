"""Data loaders of a run: two-view training batches, and un-augmented evaluation splits.

The training order always comes from a :class:`~torch.utils.data.DistributedSampler`
(one replica for a single process), seeded by the run's seed and the epoch:
the order of a run is a pure function of (seed, epoch), which is what makes
``--resume`` exact and makes a torchrun run see the same global batches as a
single process with the same global batch size.

The views are made one of two ways (``augment_backend``, :func:`augment_backend`):

* ``batched``: the training images are held in memory as one ``uint8`` tensor on the
  training device, and :class:`~pyro_vje.data.tensor_loader.TwoViewTensorLoader` makes
  both views of a whole batch there (:class:`~pyro_vje.data.batched_views.BatchedMocoV2`;
  digits: :class:`~pyro_vje.data.digits.DigitsTwoViews`), from a generator seeded by
  (seed, epoch, rank). The default for CIFAR-10/100, STL-10 and cached folders.
  A new run records the backend ``auto`` chose in ``config.json``; a resumed run keeps it.
* ``per_image``: torchvision's transforms on PIL images in a DataLoader. With workers
  (``num_workers > 0``) the workers stay alive across epochs, and each image's views are
  drawn from a seed of (seed, epoch, index)
  (:class:`~pyro_vje.data.per_image_views.PerImageViews`), so they do not depend on which
  worker made them or on what it made before: resuming at an epoch starts fresh workers
  and sees the same views. Without workers the views come from the
  global torch RNG, whose state the checkpoint keeps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ..config import TrainConfig
from ..data import (
    DATASET_INFO,
    DatasetInfo,
    DigitsTwoViews,
    TwoViews,
    balanced_subset_indices,
    build_dataset,
    dataset_labels,
    eval_transform,
    subset_indices,
    train_transform,
)
from ..data.batched_views import BatchedMocoV2
from ..data.per_image_views import EpochIndices, PerImageViews
from ..data.tensor_loader import Normalized, TwoViewTensorLoader, in_memory_images, view_seed
from .distributed import DistInfo


@dataclass
class RunData:
    info: DatasetInfo
    image_size: int
    num_classes: int
    train_loader: DataLoader | TwoViewTensorLoader
    train_sampler: DistributedSampler | EpochIndices
    loader_generator: torch.Generator
    bank_loader: DataLoader  # labelled training images, no augmentation (kNN bank / probe training)
    test_loader: DataLoader
    augment_backend: str = "per_image"  # how the views are made: "batched" or "per_image"

    def set_epoch(self, epoch: int, seed: int, rank: int = 0) -> None:
        """Fix this epoch's order (seed, epoch) and views (seed, epoch, rank)."""
        self.train_sampler.set_epoch(epoch)
        if isinstance(self.train_loader, TwoViewTensorLoader):
            self.train_loader.set_epoch(epoch)
        self.loader_generator.manual_seed(view_seed(seed, epoch, rank))


def run_dataset_info(config: TrainConfig) -> DatasetInfo:
    """The data set's :class:`~pyro_vje.data.DatasetInfo` with the run's view recipe: its
    ``crop_min_scale``, ``color_jitter`` and ``blur`` replace the data set's where set."""
    info = DATASET_INFO[config.dataset]
    changes = {
        "crop_scale": None if config.crop_min_scale is None else (config.crop_min_scale, 1.0),
        "blur": config.blur,
    }
    if config.color_jitter is not None:
        strength = config.color_jitter
        old = info.views.jitter if info.views is not None else (0.0,) * 4
        changes["jitter"] = tuple(strength if old[i] > 0 else 0.0 for i in range(3)) + (old[3],)
        changes["jitter_p"] = info.views.jitter_p if strength > 0 and info.views is not None else 0.0
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        return info
    if info.views is None:
        raise ValueError(
            f"{config.dataset} has its own augmentation recipe: crop_min_scale, color_jitter and blur "
            "apply to the MoCo v2 family of views"
        )
    return dataclasses.replace(info, views=dataclasses.replace(info.views, **changes))


def test_split_name(dataset: str) -> str:
    """The split a run of ``dataset`` evaluates on (its :class:`~pyro_vje.data.DatasetInfo`'s)."""
    return DATASET_INFO[dataset].test_split


#: the seed of the held-out validation images (``validation``): one set for every run and seed.
VALIDATION_SEED = 20261207


def validation_indices(labels: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` training images a run with ``validation: n`` holds out: class-balanced, drawn with
    :data:`VALIDATION_SEED` (so every run, whatever its seed, holds out the same images), ascending."""
    return balanced_subset_indices(labels, n, seed=VALIDATION_SEED, strict=True)


def _subset(
    config: TrainConfig, split: str, n: int | None, seed: int, clip: bool = False, *, held_out: bool = False
) -> list[int] | None:
    """The indices of ``split`` that the run reads (:func:`~pyro_vje.data.subset_indices`).

    With ``config.validation``: the training split without the held-out images, or with
    ``held_out`` only those (the evaluation split of a validation run).
    """
    one_class = not held_out and config.normal_class is not None and split in ("train", config.train_split)
    validating = config.validation is not None and split == "train"
    if n is None and not one_class and not validating:
        return None
    labels = dataset_labels(
        build_dataset(config.dataset, split, root=config.data_dir, download=config.download)
    )
    pool = np.arange(len(labels))
    if validating:
        if config.validation >= len(labels):
            raise ValueError(
                f"validation {config.validation} must be smaller than the training split ({len(labels)})"
            )
        val = validation_indices(labels, config.validation)
        pool = val if held_out else np.setdiff1d(pool, val)
    chosen = subset_indices(
        labels[pool],
        n,
        seed,
        normal_class=config.normal_class if one_class else None,
        clip=clip,
        split=split,
    )
    return pool.tolist() if chosen is None else pool[np.asarray(chosen, dtype=np.int64)].tolist()


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


def _reading(config: TrainConfig) -> dict[str, Any]:
    """How ``config`` reads its data set: :func:`~pyro_vje.data.build_dataset`'s shared keywords."""
    return {
        "root": config.data_dir,
        "download": config.download,
        "cache": config.cache,
        "skip_unreadable": config.skip_unreadable,
    }


def build_eval_sets(
    config: TrainConfig, split: str | None = None, transform: Callable | None = None
) -> tuple[Dataset, Dataset, int]:
    """The kNN bank (labelled training images, the training subset if any) and the evaluation
    split (``split``, default the data set's test split, or the held-out training images of a
    ``validation`` run; ``eval_subset`` if any), both without augmentation
    (``transform`` replaces the evaluation split's), and the number of classes."""
    info = DATASET_INFO[config.dataset]
    size = config.image_size or info.image_size
    common = _reading(config)
    evaluate = eval_transform(info, size)
    clip = config.train_split != "train"  # e.g. STL-10's 5k labelled images under a 100k+ subset
    bank_indices = _subset(config, "train", config.subset, config.seed, clip=clip)
    bank_set = build_dataset(config.dataset, "train", transform=evaluate, indices=bank_indices, **common)
    held_out = split is None and config.validation is not None
    split = split or ("train" if held_out else test_split_name(config.dataset))
    test_indices = _subset(config, split, config.eval_subset, config.seed, held_out=held_out)
    test_transform = transform if transform is not None else evaluate
    test_set = build_dataset(config.dataset, split, transform=test_transform, indices=test_indices, **common)
    num_classes = int(max(dataset_labels(bank_set).max(), dataset_labels(test_set).max())) + 1
    return bank_set, test_set, num_classes


def augment_backend(config: TrainConfig, train_set: Dataset) -> str:
    """``config.augment_backend`` resolved for ``train_set`` (built without a transform).

    ``auto`` is ``batched`` when the images are held in memory (:func:`in_memory_images`:
    torchvision's CIFAR-10/100 and STL-10, a ``--cache`` folder) and augmented;
    ``per_image`` otherwise, and for digits (see below). An explicit
    ``batched`` that cannot be honoured is an error saying why.
    """
    choice = config.augment_backend
    if choice == "per_image":
        return choice
    if choice == "auto" and DATASET_INFO[config.dataset].views is None:
        # digits keep the per-image stream their recorded default run used: with the batched
        # stream (same recipe, other random draws) the default run's mu fell below the
        # random-init encoder (docs/results.md, 2026-12-05 merge check); `batched` stays available
        return "per_image"
    try:
        in_memory_images(train_set)
        reason = None
    except TypeError:
        reason = f"the {config.dataset} images are not held in memory: add --cache (cache: true)"
    if config.augment != "default":
        reason = f"augment={config.augment!r} has no batched form (batched views are the default recipe)"
    if choice == "batched":
        if reason:
            raise ValueError(f"augment_backend 'batched': {reason}, or use augment_backend per_image")
        return choice
    return "batched" if reason is None else "per_image"


def batched_augment(info: DatasetInfo, image_size: int) -> Callable:
    """The batched form of :func:`~pyro_vje.data.transforms.train_transform` for ``info``'s data set."""
    if info.views is None:  # digits: their own recipe
        if image_size != info.image_size:
            raise ValueError(f"digits are {info.image_size}x{info.image_size} px; image_size={image_size}")
        return Normalized(DigitsTwoViews(), info.mean, info.std)
    return BatchedMocoV2(image_size, info.mean, info.std, **info.views.kwargs())


def build_run_data(
    config: TrainConfig,
    dist: DistInfo,
    per_rank_batch: int,
    pin_memory: bool,
    device: torch.device | str = "cpu",
) -> RunData:
    """Datasets, samplers and loaders for ``config`` (see the module docstring); batched views are
    made on ``device``."""
    info = run_dataset_info(config)
    size = config.image_size or info.image_size
    common = _reading(config)
    train_indices = _subset(config, config.train_split, config.subset, config.seed)
    train_set = build_dataset(config.dataset, config.train_split, indices=train_indices, **common)
    bank_set, test_set, num_classes = build_eval_sets(config)
    if len(train_set) < per_rank_batch * dist.world_size:
        raise ValueError(
            f"the training set has {len(train_set)} images, fewer than one global batch "
            f"({per_rank_batch * dist.world_size}); lower batch_size or enlarge subset"
        )
    backend = augment_backend(config, train_set)
    generator = torch.Generator()
    workers = config.num_workers
    if backend == "batched":
        images, labels = in_memory_images(train_set)
        train_loader: DataLoader | TwoViewTensorLoader = TwoViewTensorLoader(
            images,
            labels,
            batched_augment(info, size),
            per_rank_batch,
            device=device,
            seed=config.seed,
            num_replicas=dist.world_size,
            rank=dist.rank,
        )
        sampler: DistributedSampler | EpochIndices = train_loader.sampler
    else:
        if config.augment == "none":
            augment = eval_transform(info, size)
        else:  # default, or crop: without the color jitter and grayscale
            augment = train_transform(info, size, color=config.augment != "crop")
        # with workers: views seeded per (seed, epoch, index), so the workers can live across epochs
        seeded = workers > 0
        views = PerImageViews(train_set, TwoViews(augment), seed=config.seed if seeded else None)
        sampler = DistributedSampler(
            views,
            num_replicas=dist.world_size,
            rank=dist.rank,
            shuffle=True,
            seed=config.seed,
            drop_last=True,
        )
        if seeded:
            sampler = EpochIndices(sampler)
        train_loader = DataLoader(
            views,
            batch_size=per_rank_batch,
            sampler=sampler,
            num_workers=workers,
            pin_memory=pin_memory,
            drop_last=True,
            generator=generator,
            prefetch_factor=4 if workers > 0 else None,
            persistent_workers=workers > 0,
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
        augment_backend=backend,
    )
