"""Augmentations of the paper (Section 5.2): MoCo v2 for images, a scaled-down recipe for 8x8 digits.

* :func:`moco_v2_transform` -- the MoCo v2 recipe (Chen et al., 2020b); Gaussian blur only
  from 96 px up by default, since the paper drops it for 32x32 CIFAR.
* :func:`digits_transform` -- per-sample version of :class:`~pyro_vje.data.digits.DigitsTwoViews`.
* :func:`eval_transform` -- no augmentation, for kNN / linear evaluation.
* :class:`TwoViews` -- applies a transform twice; a data set built with
  ``transform=TwoViews(train_transform(info))`` yields ``((view1, view2), label)``.

All random draws use the global torch RNG, so they are reproducible under
``torch.manual_seed`` and DataLoader's per-worker seeding. Every transform is a
picklable object (no lambdas), so it works with DataLoader workers under ``spawn``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torchvision import transforms as T

from .datasets import DATASET_INFO, DatasetInfo
from .digits import DigitsTwoViews

__all__ = [
    "DigitsAugment",
    "ResizeIfNeeded",
    "TwoViews",
    "digits_transform",
    "eval_transform",
    "moco_v2_transform",
    "train_transform",
]


def moco_v2_transform(
    image_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    blur: bool | None = None,
    crop_scale: tuple[float, float] = (0.2, 1.0),
    color: bool = True,
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1),
    jitter_p: float = 0.8,
    grayscale_p: float = 0.2,
    flip_p: float = 0.5,
) -> T.Compose:
    """The MoCo v2 augmentation of a PIL image, ending in a normalized float tensor ``(C, S, S)``.

    RandomResizedCrop(``image_size``, scale=``crop_scale``), color jitter (0.4, 0.4, 0.4, 0.1)
    with p=0.8, grayscale with p=0.2, Gaussian blur (kernel ~10% of the image size, odd,
    sigma in [0.1, 2]) with p=0.5 if ``blur``, horizontal flip, ToTensor, Normalize.
    ``blur=None`` means ``image_size >= 96``: the paper trains CIFAR (32 px) without blur.
    ``mean``/``std`` must have one entry per channel of the images (1-channel images work).
    ``color=False`` leaves out the color jitter and the grayscale (crops and flips only): views
    that keep an image's colors, for one-class training where color tells the classes apart.
    ``jitter``, ``jitter_p``, ``grayscale_p`` and ``flip_p`` are a data set's
    :class:`~pyro_vje.data.datasets.ViewRecipe` (a step with probability 0 is left out).
    """
    if image_size < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    if len(mean) != len(std):
        raise ValueError(f"mean and std differ in length: {len(mean)} vs {len(std)}")
    if blur is None:
        blur = image_size >= 96
    steps: list[Callable] = [T.RandomResizedCrop(image_size, scale=crop_scale)]
    if color and jitter_p > 0:
        steps.append(T.RandomApply([T.ColorJitter(*jitter)], p=jitter_p))
    if color and grayscale_p > 0:
        steps.append(T.RandomGrayscale(p=grayscale_p))
    if blur:
        kernel = max(3, int(0.1 * image_size) // 2 * 2 + 1)
        steps.append(T.RandomApply([T.GaussianBlur(kernel, sigma=(0.1, 2.0))], p=0.5))
    if flip_p > 0:
        steps.append(T.RandomHorizontalFlip(flip_p))
    steps += [T.ToTensor(), T.Normalize(tuple(mean), tuple(std))]
    return T.Compose(steps)


class DigitsAugment:
    """One random view of a digit tensor ``(1, 8, 8)`` (or any ``(C, H, W)``) in ``[0, 1]``.

    The recipe of :class:`~pyro_vje.data.digits.DigitsTwoViews` (random affine, contrast,
    pixel noise, random erasing; the same keyword arguments and defaults) applied to a
    single sample with the global torch RNG.
    """

    def __init__(self, **recipe: Any):
        self.augment = DigitsTwoViews(**recipe)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3:
            raise ValueError(f"DigitsAugment expects one image (C, H, W), got {tuple(x.shape)}")
        return self.augment(x.unsqueeze(0)).squeeze(0)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self.augment).items())
        return f"{type(self).__name__}({args})"


def digits_transform(
    *,
    mean: Sequence[float] = DATASET_INFO["digits"].mean,
    std: Sequence[float] = DATASET_INFO["digits"].std,
    **recipe: Any,
) -> T.Compose:
    """Per-sample digits augmentation (:class:`DigitsAugment`) followed by Normalize(``mean``, ``std``).

    Input: a float tensor ``(1, 8, 8)`` in ``[0, 1]``, as ``build_dataset("digits", ...)`` yields.
    ``recipe`` takes :class:`~pyro_vje.data.digits.DigitsTwoViews`'s keyword arguments
    (``max_rotation``, ``scale_range``, ``max_shift``, ``contrast_range``, ``noise``,
    ``erase_prob``, ``erase_size``) and defaults.
    """
    return T.Compose([DigitsAugment(**recipe), T.Normalize(tuple(mean), tuple(std))])


class ResizeIfNeeded:
    """Resize the shorter side to ``size`` and center-crop to ``size x size``, unless already that size.

    Images of the target size pass through untouched (pixel-identical).
    """

    def __init__(self, size: int):
        self.size = int(size)
        self.resize = T.Compose([T.Resize(self.size), T.CenterCrop(self.size)])

    def __call__(self, image):
        if isinstance(image, torch.Tensor):
            height, width = image.shape[-2:]
        else:
            width, height = image.size
        if (height, width) == (self.size, self.size):
            return image
        return self.resize(image)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size})"


def eval_transform(info: DatasetInfo, image_size: int | None = None) -> T.Compose:
    """Deterministic evaluation transform: resize (if needed), ToTensor, Normalize.

    From 224 px up: Resize(``image_size * 256 / 224``) then CenterCrop(``image_size``), the
    ImageNet protocol. Below: :class:`ResizeIfNeeded`, so native-size images (CIFAR at 32,
    STL-10 at 96) are not resampled. Digits (tensors): Normalize only.
    """
    size = info.image_size if image_size is None else int(image_size)
    normalize = T.Normalize(info.mean, info.std)
    if info.views is None:  # digits: tensors in [0, 1]
        _check_digits_size(info, size)
        return T.Compose([normalize])
    if size >= 224:
        resize: list[Callable] = [T.Resize(int(size * 256 / 224)), T.CenterCrop(size)]
    else:
        resize = [ResizeIfNeeded(size)]
    return T.Compose([*resize, T.ToTensor(), normalize])


def train_transform(info: DatasetInfo, image_size: int | None = None, *, color: bool = True) -> T.Compose:
    """Training augmentation: :func:`moco_v2_transform` with the data set's recipe (``info.views``;
    ``color=False``: without its color jitter and grayscale), :func:`digits_transform` for digits."""
    size = info.image_size if image_size is None else int(image_size)
    if info.views is None:
        if not color:
            raise ValueError("digits have their own augmentation recipe; color=False applies to color images")
        _check_digits_size(info, size)
        return digits_transform(mean=info.mean, std=info.std)
    return moco_v2_transform(size, info.mean, info.std, color=color, **info.views.kwargs())


def _check_digits_size(info: DatasetInfo, size: int) -> None:
    if size != info.image_size:
        side = info.image_size
        raise ValueError(f"digits are {side}x{side} px; image_size={size} is not supported")


class TwoViews:
    """Two independent draws of ``transform`` on the same input: ``x -> (transform(x), transform(x))``."""

    def __init__(self, transform: Callable):
        self.transform = transform

    def __call__(self, x) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(x), self.transform(x)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.transform!r})"
