"""Out-of-distribution (OOD) data sets for ``pyro-vje score``, behind :func:`build_ood_dataset`.

``pyro-vje score`` compares the in-distribution test split with OOD inputs; a spec string
(:data:`OOD_CHOICES`) picks them:

* a synthetic shift of the in-distribution split (:data:`SHIFTS`, :class:`ShiftedDataset`):
  ``gaussian_noise`` and ``uniform_noise`` (pure noise images of the same size, the base
  content discarded), ``blur`` (Gaussian blur, sigma ``severity`` px) and ``invert``;
* another data set of :data:`~pyro_vje.data.DATASET_INFO` (``cifar10``, ``cifar100``, ``stl10``,
  ...) read with :func:`~pyro_vje.data.build_dataset`, or torchvision's ``svhn``;
* ``imagefolder:PATH`` -- a folder of class folders (torchvision's ImageFolder layout), a
  folder of ``train``/``val``/``test`` split folders of those, or a flat folder of images.

Shifts are deterministic: the noise of item ``i`` comes from a ``torch.Generator`` seeded
with ``seed * 1_000_003 + i``, so scoring twice sees identical inputs. Labels are kept as
they are (they do not matter for OOD scoring; a flat image folder has label ``-1``).

The transform should be the in-distribution evaluation transform, which resizes images of
another size (:func:`~pyro_vje.data.eval_transform` uses
:class:`~pyro_vje.data.ResizeIfNeeded`); :func:`ood_transform` also converts the image type
and channels (e.g. CIFAR images scored by a digits model, digits tensors by a CIFAR model).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import Dataset
from torchvision import datasets as tvd
from torchvision import transforms as T
from torchvision.datasets.folder import IMG_EXTENSIONS
from torchvision.transforms import functional as TF

from .datasets import (
    DATASET_INFO,
    DatasetInfo,
    _check_indices,
    build_dataset,
    dataset_classes,
    dataset_labels,
    drop_unreadable,
    keep_samples,
    open_image_folder,
)
from .transforms import ResizeIfNeeded, eval_transform, train_transform
from .unreadable import load_image

__all__ = [
    "OOD_CHOICES",
    "SHIFTS",
    "SVHN_SPLITS",
    "ImageFiles",
    "MatchImageFormat",
    "ShiftedDataset",
    "blur_kernel_size",
    "build_ood_dataset",
    "check_ood_spec",
    "ood_train_transform",
    "ood_transform",
]

SHIFTS: tuple[str, ...] = ("gaussian_noise", "uniform_noise", "blur", "invert")
"""Synthetic shifts of the in-distribution split (see :class:`ShiftedDataset`)."""

SVHN_SPLITS: tuple[str, ...] = ("train", "test", "extra")

OOD_CHOICES: str = (
    f"a shift of the in-distribution split ({', '.join(SHIFTS)}), "
    f"a data set read from the OOD data folder ({', '.join([*DATASET_INFO, 'svhn'])}), "
    "or imagefolder:PATH (a folder of class folders of images, or of images)"
)
"""One-line description of the accepted OOD specs, for help texts."""

ImageLike = Image.Image | torch.Tensor
"""A PIL image or an image tensor ``(C, H, W)``."""

_SEED_STRIDE = 1_000_003
_GAUSSIAN_MEAN = 0.5
_GAUSSIAN_STD = 0.25
_SPLIT_NAMES = frozenset({"train", "val", "test"})


class ShiftedDataset(Dataset):
    """A synthetic distribution shift of ``base``'s images, then ``transform``; labels are kept.

    ``base`` must yield ``(image, label)`` pairs *before* any evaluation transform: a PIL
    image (``L`` or ``RGB``; other modes are converted to ``RGB``) or an image tensor
    ``(C, H, W)`` (float in ``[0, 1]``, like ``build_dataset("digits", ..., transform=None)``,
    or ``uint8``). The shifted image has the input's type, size and channels, so the data
    set's own evaluation transform applies unchanged. Shifts (:data:`SHIFTS`):

    * ``gaussian_noise`` -- i.i.d. N(0.5, 0.25^2) pixels clipped to ``[0, 1]``; the base
      content is discarded (pure noise);
    * ``uniform_noise`` -- i.i.d. U[0, 1] pixels (for PIL / ``uint8``: uniform over 0..255);
    * ``blur`` -- Gaussian blur with sigma ``severity`` px and an odd kernel of about 20% of
      the shorter side (at least 3, at most what the image allows);
    * ``invert`` -- ``1 - x`` (``ImageOps.invert`` for PIL, ``255 - x`` for ``uint8``).

    Noise is deterministic: item ``index`` draws from a ``torch.Generator`` seeded with
    ``seed * 1_000_003 + index`` (independent of the base image and of the global RNG).

    Args:
        base: the data set to shift (no transform).
        shift: one of :data:`SHIFTS`.
        transform: applied to each shifted image (e.g. the in-distribution eval transform).
        seed: seed of the noise shifts.
        severity: the blur's sigma in pixels (only used by ``blur``).
    """

    def __init__(
        self,
        base: Dataset,
        shift: str,
        transform: Callable | None = None,
        *,
        seed: int = 0,
        severity: float = 2.0,
    ):
        key = str(shift).lower()
        if key not in SHIFTS:
            raise ValueError(f"unknown shift {shift!r}; choose one of {', '.join(SHIFTS)}")
        if not float(severity) > 0:
            raise ValueError(f"severity (the blur's sigma in px) must be positive, got {severity}")
        self.base = base
        self.shift = key
        self.transform = transform
        self.seed = int(seed)
        self.severity = float(severity)

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        n = len(self)
        i = int(index)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"index {index} out of range for {n} items")
        image, label = self.base[i]
        image = self.apply(image, i)
        if self.transform is not None:
            image = self.transform(image)
        return image, label

    def apply(self, image: ImageLike, index: int) -> ImageLike:
        """The shifted ``image`` of item ``index`` (same type, size and channels)."""
        if isinstance(image, Image.Image):
            if image.mode not in ("L", "RGB"):
                image = image.convert("RGB")
        elif not isinstance(image, torch.Tensor) or image.dim() < 2:
            raise TypeError(
                f"{type(self).__name__} needs PIL images or image tensors (C, H, W) from its base data set "
                f"(built with transform=None), got {_describe(image)}"
            )
        if self.shift in ("gaussian_noise", "uniform_noise"):
            return _noise(image, self.shift, self.generator(index))
        if self.shift == "blur":
            return _blur(image, self.severity)
        return _invert(image)

    def generator(self, index: int) -> torch.Generator:
        """The generator of item ``index``: seeded with ``seed * 1_000_003 + index``."""
        return torch.Generator().manual_seed((self.seed * _SEED_STRIDE + int(index)) % 2**64)

    @property
    def targets(self) -> np.ndarray:
        """The base data set's labels (:func:`~pyro_vje.data.dataset_labels`), read without decoding."""
        return dataset_labels(self.base)

    @property
    def classes(self) -> list[str]:
        """The base data set's class names."""
        try:
            return dataset_classes(self.base)
        except TypeError as e:
            raise AttributeError(str(e)) from e

    def __repr__(self) -> str:
        more = f", severity={self.severity}" if self.shift == "blur" else ""
        return (
            f"{type(self).__name__}(shift={self.shift!r}, seed={self.seed}{more}, n={len(self)}, "
            f"base={type(self.base).__name__}, transform={self.transform!r})"
        )


def _describe(x: Any) -> str:
    if isinstance(x, torch.Tensor):
        return f"a tensor of shape {tuple(x.shape)}"
    return type(x).__name__


def _image_shape(image: ImageLike) -> tuple[int, ...]:
    """``(C, H, W)`` of a PIL image, or the shape of a tensor."""
    if isinstance(image, Image.Image):
        width, height = image.size
        return (len(image.getbands()), height, width)
    return tuple(image.shape)


def _noise(image: ImageLike, kind: str, generator: torch.Generator) -> ImageLike:
    shape = _image_shape(image)
    if kind == "gaussian_noise":
        x = torch.randn(shape, generator=generator).mul_(_GAUSSIAN_STD).add_(_GAUSSIAN_MEAN).clamp_(0.0, 1.0)
    else:
        x = torch.rand(shape, generator=generator)
    if isinstance(image, torch.Tensor) and image.is_floating_point():
        return x.to(dtype=image.dtype, device=image.device)
    pixels = (x * 256).floor_().clamp_(0, 255).to(torch.uint8)  # [0, 1] -> 0..255, uniform bins
    if isinstance(image, torch.Tensor):
        return pixels.to(dtype=image.dtype, device=image.device)
    array = pixels.permute(1, 2, 0).numpy()
    return Image.fromarray(np.ascontiguousarray(array[:, :, 0] if image.mode == "L" else array))


def blur_kernel_size(side: int) -> int:
    """The blur's kernel size for images whose shorter side is ``side`` px.

    Odd ``int(0.2 * side)`` rounded up to odd, at least 3, and at most ``2 * side - 1`` (what
    reflect padding allows); ``1`` (no blur) for 1-px images.
    """
    kernel = max(3, int(0.2 * side) // 2 * 2 + 1)
    return min(kernel, 2 * side - 1)


def _blur(image: ImageLike, sigma: float) -> ImageLike:
    shape = _image_shape(image)
    kernel = blur_kernel_size(min(shape[-2:]))
    if kernel < 3:
        return image.copy() if isinstance(image, Image.Image) else image.clone()
    return TF.gaussian_blur(image, [kernel, kernel], [sigma, sigma])


def _invert(image: ImageLike) -> ImageLike:
    if isinstance(image, Image.Image):
        return ImageOps.invert(image)
    if image.is_floating_point():
        return 1 - image
    if image.dtype == torch.uint8:
        return 255 - image
    raise TypeError(f"invert: image tensors must be float in [0, 1] or uint8, got {image.dtype}")


class ImageFiles(Dataset):
    """A flat folder of images (no class folders) as ``(transform(image), -1)`` pairs.

    ``samples`` holds ``(path, -1)`` in sorted path order, ``targets`` the labels (all ``-1``:
    unlabeled, as STL-10's unlabeled split) and ``classes`` is empty.
    """

    classes: list[str] = []

    def __init__(self, folder: str | os.PathLike, transform: Callable | None = None):
        self.root = str(folder)
        paths = sorted(
            entry.path
            for entry in os.scandir(folder)
            if entry.is_file() and entry.name.lower().endswith(IMG_EXTENSIONS)
        )
        self.samples = [(p, -1) for p in paths]
        self.targets = [-1] * len(paths)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        path, target = self.samples[index]
        image = load_image(path)
        if self.transform is not None:
            image = self.transform(image)
        return image, target


def build_ood_dataset(
    spec: str,
    *,
    in_dataset: str,
    transform: Callable | None,
    root: str | os.PathLike | None = None,
    in_root: str | os.PathLike | None = None,
    download: bool = False,
    split: str = "test",
    seed: int = 0,
    indices: Sequence[int] | np.ndarray | None = None,
    severity: float = 2.0,
    skip_unreadable: bool = False,
) -> Dataset:
    """The OOD data set named by ``spec`` (see :data:`OOD_CHOICES`), yielding ``(transform(image), label)``.

    Args:
        spec: one of

            * a shift of :data:`SHIFTS`: the ``split`` of ``in_dataset`` read from ``in_root``
              (``build_dataset(in_dataset, split, root=in_root, transform=None, indices=indices)``)
              wrapped in :class:`ShiftedDataset` with ``transform``, ``seed`` and ``severity``;
            * a name of :data:`~pyro_vje.data.DATASET_INFO` (``cifar10``, ``cifar100``, ``stl10``,
              ...): its ``split`` read from ``root`` with :func:`~pyro_vje.data.build_dataset`;
            * ``svhn``: torchvision's SVHN (``root/<split>_32x32.mat``, split ``train``, ``test``
              or ``extra``);
            * ``imagefolder:PATH``: ``PATH/<class>/<image>`` (ImageFolder), ``PATH/<split>/<class>/<image>``
              when ``PATH``'s only subfolders are ``train``/``val``/``test`` (``test`` falls back to
              ``val``), or ``PATH/<image>`` (flat, labels ``-1``).
        in_dataset: the in-distribution data set (its split is shifted by the shift specs).
        transform: applied to every image; pass the in-distribution evaluation transform
            (:func:`~pyro_vje.data.eval_transform`, which resizes other sizes) or
            :func:`ood_transform` (which also converts image type and channels).
        root: the OOD data folder (for data set names and ``svhn``).
        in_root: the in-distribution data folder (for shifts; not needed for ``digits``).
        download: let torchvision download CIFAR-10/100, STL-10 or SVHN into ``root``.
        split: the split to read (default ``test``).
        seed: seed of the noise shifts.
        indices: keep only these images, in this order (before anything is decoded).
        severity: the blur's sigma in px.
        skip_unreadable: leave out the image files PIL cannot read (``imagefolder:`` and image-folder
            data sets, after ``indices``), saying how many on stderr; otherwise reading one raises
            :class:`~pyro_vje.data.unreadable.UnreadableImageError` naming it.

    Labels are kept as the data set has them (they are irrelevant for OOD scoring).

    Raises:
        ValueError: unknown spec, split or ``indices``; missing ``root`` for a data set name or SVHN.
        FileNotFoundError: missing data (with a hint to pass ``--download`` where torchvision can fetch it).
    """
    text = str(spec).strip()
    key = check_ood_spec(text, root=root)
    if key.startswith("imagefolder:"):
        path = text[len("imagefolder:") :].strip()
        return _ood_image_folder(path, split, transform, indices, skip_unreadable)
    if key in SHIFTS:
        base = build_dataset(
            in_dataset, split, root=in_root, transform=None, indices=indices, skip_unreadable=skip_unreadable
        )
        return ShiftedDataset(base, key, transform, seed=seed, severity=severity)
    if key == "svhn":
        return _svhn(root, split, transform, download, indices)
    if key in DATASET_INFO:
        return build_dataset(
            key,
            split,
            root=root,
            transform=transform,
            download=download,
            indices=indices,
            skip_unreadable=skip_unreadable,
        )
    raise ValueError(f"unknown OOD data set {spec!r}; choose {OOD_CHOICES}")


def check_ood_spec(spec: str, *, root: str | os.PathLike | None = None) -> str:
    """``spec`` (see :data:`OOD_CHOICES`) lower-cased, or a ``ValueError`` naming what is wrong
    (an unknown name, with the closest known one; ``imagefolder:`` without a path; a data set
    name without ``root``), without reading any data: ``pyro-vje score`` checks every ``--ood``
    before it loads the model."""
    text = str(spec).strip()
    key = text.lower()
    if key.startswith("imagefolder:"):
        if not text[len("imagefolder:") :].strip():
            raise ValueError("imagefolder:PATH needs a path after the colon, e.g. imagefolder:/data/textures")
        return key
    names = [*SHIFTS, *DATASET_INFO, "svhn"]
    if key not in names:
        close = difflib.get_close_matches(key, names, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ValueError(f"unknown OOD data set {spec!r}{hint}; choose {OOD_CHOICES}")
    if key != "digits" and key not in SHIFTS and root is None:  # build_dataset would name --data-dir
        raise ValueError(f"OOD data set {key!r} needs its folder: give --ood-root DIR (root= in the API)")
    return key


def _svhn(
    root: str | os.PathLike | None,
    split: str,
    transform: Callable | None,
    download: bool,
    indices: Sequence[int] | np.ndarray | None,
) -> Dataset:
    split = str(split).lower()
    if split not in SVHN_SPLITS:
        raise ValueError(f"unknown split {split!r} for svhn; choose one of {', '.join(SVHN_SPLITS)}")
    if root is None:
        raise ValueError(
            "OOD data set 'svhn' needs its folder: give --ood-root DIR (root= in the API) "
            "that holds or receives its .mat files"
        )
    path = Path(root).expanduser()
    filename = tvd.SVHN.split_list[split][1]
    hint = "pass --download (download=True) to fetch it with torchvision"
    if not download and not (path / filename).is_file():
        raise FileNotFoundError(f"svhn: no {filename} in {path}; {hint}")
    try:
        ds = tvd.SVHN(str(path), split=split, download=download, transform=transform)
    except RuntimeError as e:
        if download:
            raise
        raise FileNotFoundError(f"svhn: torchvision could not read {path / filename}: {e} ({hint})") from e
    if indices is not None:
        idx = _check_indices(indices, len(ds), "svhn", split)
        ds.data = ds.data[idx]
        ds.labels = ds.labels[idx]
    return ds


def _ood_image_folder(
    path: str,
    split: str,
    transform: Callable | None,
    indices: Sequence[int] | np.ndarray | None,
    skip_unreadable: bool = False,
) -> Dataset:
    spec = f"imagefolder:{path}"
    folder = Path(path).expanduser()
    layouts = f"{folder}/<class>/<image>, {folder}/<split>/<class>/<image> or {folder}/<image>"
    if not folder.exists():
        raise FileNotFoundError(f"{spec}: {folder} does not exist; expected {layouts}")
    if not folder.is_dir():
        raise FileNotFoundError(f"{spec}: {folder} is not a directory; expected {layouts}")
    subdirs = sorted(entry.name for entry in os.scandir(folder) if entry.is_dir())
    if subdirs and set(subdirs) <= _SPLIT_NAMES:
        chosen = folder / split
        if not chosen.is_dir() and split == "test" and (folder / "val").is_dir():
            chosen = folder / "val"
        if not chosen.is_dir():
            raise FileNotFoundError(
                f"{spec}: {folder} holds split folders ({', '.join(subdirs)}) but none for split {split!r}"
            )
        folder = chosen
        subdirs = sorted(entry.name for entry in os.scandir(folder) if entry.is_dir())
    ds: Dataset
    if subdirs:
        ds = open_image_folder(folder, transform, spec)
    else:
        ds = ImageFiles(folder, transform=transform)
        if len(ds) == 0:
            raise FileNotFoundError(
                f"{spec}: {folder} has neither class folders nor images; expected {layouts} "
                f"with extensions {', '.join(IMG_EXTENSIONS)}"
            )
    if indices is not None:
        idx = _check_indices(indices, len(ds), spec, split)
        keep_samples(ds, [ds.samples[i] for i in idx])  # type: ignore[attr-defined]
    if skip_unreadable:
        drop_unreadable(ds, folder, "OOD imagefolder", spec)
    return ds


class MatchImageFormat:
    """Convert any image to the in-distribution input format before its evaluation transform.

    For ``digits`` (``info.channels == 1`` and tensors expected): PIL images become grayscale,
    resized to ``size x size`` (:class:`~pyro_vje.data.ResizeIfNeeded`) float tensors
    ``(1, size, size)`` in ``[0, 1]``; tensors pass through (RGB ones are averaged to gray and
    resized). For image data sets: tensors ``(C, H, W)`` in ``[0, 1]`` become PIL images, and
    every PIL image is converted to ``RGB`` (``L`` when ``info.channels == 1``).
    """

    def __init__(self, info: DatasetInfo, image_size: int | None = None):
        self.tensor_input = info.name == "digits"
        self.channels = int(info.channels)
        self.size = int(info.image_size if image_size is None else image_size)
        self.resize = ResizeIfNeeded(self.size)

    def __call__(self, image: ImageLike) -> ImageLike:
        if self.tensor_input:
            if isinstance(image, Image.Image):
                image = TF.to_tensor(image.convert("L" if self.channels == 1 else "RGB"))
            elif not image.is_floating_point():
                image = image.float() / 255
            if image.shape[-3] != self.channels:
                if self.channels == 1:
                    image = image.mean(dim=-3, keepdim=True)
                else:
                    image = image.expand(*image.shape[:-3], self.channels, *image.shape[-2:])
            return self.resize(image)
        if isinstance(image, torch.Tensor):
            image = TF.to_pil_image(image)
        return image.convert("L" if self.channels == 1 else "RGB")

    def __repr__(self) -> str:
        kind = "tensor" if self.tensor_input else "PIL"
        return f"{type(self).__name__}({kind}, channels={self.channels}, size={self.size})"


def ood_transform(info: DatasetInfo, image_size: int | None = None) -> T.Compose:
    """The in-distribution evaluation transform, preceded by :class:`MatchImageFormat`.

    Accepts PIL images of any mode and size and image tensors, and returns what
    :func:`~pyro_vje.data.eval_transform` returns for the in-distribution data (so CIFAR or
    SVHN images can be scored by a digits model, and digits by a CIFAR model).
    """
    return T.Compose([MatchImageFormat(info, image_size), *eval_transform(info, image_size).transforms])


def ood_train_transform(info: DatasetInfo, image_size: int | None = None) -> T.Compose:
    """The in-distribution *training* augmentation, preceded by :class:`MatchImageFormat`:
    the views of out-of-distribution images for test-time-augmentation scores
    (``pyro-vje score --tta-views``), as :func:`ood_transform` is for plain scores."""
    return T.Compose([MatchImageFormat(info, image_size), *train_transform(info, image_size).transforms])
