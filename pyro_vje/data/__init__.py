"""Data: the paper's data sets (:func:`build_dataset`), balanced subsets and augmentations.

The embedded default is scikit-learn's digits (:func:`load_digits_split`,
:class:`DigitsTwoViews` for batch-wise views); CIFAR-10/100, STL-10, ImageNet and any
ImageFolder tree come through :func:`build_dataset`, with the MoCo v2 recipe in
:func:`train_transform` / :func:`moco_v2_transform`. See docs/data.md.
"""

from .datasets import (
    DATASET_INFO,
    DATASET_SPLITS,
    CachedImageFolder,
    DatasetInfo,
    DigitsDataset,
    build_dataset,
    dataset_classes,
    dataset_info,
    dataset_labels,
)
from .digits import DigitsSplit, DigitsTwoViews, load_digits_split
from .subset import balanced_subset_indices, narrow, subset_indices
from .transforms import (
    DigitsAugment,
    ResizeIfNeeded,
    TwoViews,
    digits_transform,
    eval_transform,
    moco_v2_transform,
    train_transform,
)

__all__ = [
    "DATASET_INFO",
    "DATASET_SPLITS",
    "CachedImageFolder",
    "DatasetInfo",
    "DigitsAugment",
    "DigitsDataset",
    "DigitsSplit",
    "DigitsTwoViews",
    "ResizeIfNeeded",
    "TwoViews",
    "balanced_subset_indices",
    "build_dataset",
    "dataset_classes",
    "dataset_info",
    "dataset_labels",
    "digits_transform",
    "eval_transform",
    "load_digits_split",
    "moco_v2_transform",
    "narrow",
    "subset_indices",
    "train_transform",
]
