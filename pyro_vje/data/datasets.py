"""Data sets of the paper's experiments (Section 5) behind one function, :func:`build_dataset`.

Every data set yields ``(image, label)`` pairs with an ``int`` label: the image is
what ``transform`` returns for a PIL image (for ``"digits"``: for a float tensor
``(1, 8, 8)`` in ``[0, 1]``), or the raw PIL image / tensor when ``transform`` is
``None``. Supported names (see :data:`DATASET_INFO`):

* ``"digits"`` -- scikit-learn's 8x8 digits, embedded; the split of
  :func:`~pyro_vje.data.digits.load_digits_split` with ``seed=0``.
* ``"cifar10"``, ``"cifar100"`` -- an ImageFolder tree ``root/{train,test}/<class>/*``
  (how the shared JPEG copy of CIFAR-10 is stored) or torchvision's own files
  (``root/cifar-10-batches-py``, ``root/cifar-100-python``; ``download=True`` fetches them).
* ``"fashion-mnist"``, ``"mnist"`` -- torchvision's own files (``root/FashionMNIST/raw``,
  ``root/MNIST/raw``, the IDX files; ``download=True`` fetches them), 28x28 grey-scale,
  held in memory as one ``uint8`` tensor.
* ``"stl10"`` -- torchvision's STL-10 (``root/stl10_binary``), splits ``train``, ``test``,
  ``unlabeled`` and ``train+unlabeled`` (label ``-1`` for unlabeled images).
* ``"imagenet"``, ``"imagefolder"`` -- an ImageFolder tree ``root/<split>/<class>/*``.

``indices`` selects images before anything is decoded, and ``cache=True`` decodes the
selected images of an ImageFolder tree once into a ``uint8`` array held in memory
(:class:`CachedImageFolder`), for small images such as CIFAR's.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import ConcatDataset, Dataset, Subset
from torchvision import datasets as tvd
from torchvision.datasets.folder import IMG_EXTENSIONS

from ..progress import progress_bar
from .digits import load_digits_split
from .unreadable import load_image, readable_samples, warn_skipped

log = logging.getLogger("pyro_vje")

__all__ = [
    "DATASET_INFO",
    "DATASET_SPLITS",
    "CachedImageFolder",
    "DatasetInfo",
    "DigitsDataset",
    "GRAYSCALE_28",
    "MOCO_V2",
    "ViewRecipe",
    "build_dataset",
    "dataset_classes",
    "dataset_info",
    "dataset_labels",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ViewRecipe:
    """The two-view augmentation of a data set: MoCo v2's steps with this data set's parameters.

    The keyword arguments of :class:`~pyro_vje.data.batched_views.BatchedMocoV2` and
    :func:`~pyro_vje.data.transforms.moco_v2_transform` (the batched and per-image forms of
    one recipe). ``blur=None``: blur from 96 px up (MoCo v2 as the paper runs it on CIFAR).
    Saturation, hue and grayscale do nothing on one-channel images.
    """

    crop_scale: tuple[float, float] = (0.2, 1.0)
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1)
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    blur: bool | None = None
    flip_p: float = 0.5

    def kwargs(self) -> dict[str, Any]:
        """The recipe as keyword arguments of ``BatchedMocoV2`` / ``moco_v2_transform``."""
        return dataclasses.asdict(self)


#: MoCo v2 (paper Section 5.2), the recipe of every colour data set.
MOCO_V2 = ViewRecipe()

#: The 28x28 grey-scale recipe (Fashion-MNIST; MNIST without its flip): MoCo v2 without colour,
#: brightness and contrast kept. Crop scale and blur chosen with VJE on the validation split
#: carved from the training images (docs/data.md, "28x28 grey-scale views").
GRAYSCALE_28 = ViewRecipe(crop_scale=(0.2, 1.0), jitter=(0.4, 0.4, 0.0, 0.0), grayscale_p=0.0, blur=True)


@dataclass(frozen=True)
class DatasetInfo:
    """Static facts about a data set: what code elsewhere asks of it, read here rather than by name.

    ``num_classes`` is ``0`` for ``"imagefolder"``, whose classes are found when it is
    loaded; :func:`dataset_info` fills it in from a loaded data set. ``test_split``: the
    split a run evaluates on. ``reads_folder``: false for a data set built into a package
    (digits: no ``--data-dir``). ``views``: the two-view recipe (``None``: the data set's
    own, digits' :class:`~pyro_vje.data.digits.DigitsTwoViews`). ``flips``: whether a
    horizontal flip keeps an image of the class (clothes yes, digits no). ``downloads``: whether
    torchvision can fetch it (``--download``); a folder-only data set (ImageNet, an image folder)
    needs ``--data-dir``. ``raw_pixels_reading``: what the end-of-run reading says when raw
    pixels beat the learned features, where that is expected rather than a sign to train longer.
    """

    name: str
    image_size: int
    channels: int
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    test_split: str = "test"
    reads_folder: bool = True
    views: ViewRecipe | None = MOCO_V2
    flips: bool = True
    downloads: bool = True
    raw_pixels_reading: str | None = None


_DIGITS_MEAN_STD = ((0.3053,), (0.3761,))  # all 1,797 digits' pixels in [0, 1] (computed, 4 places)
_FASHION_MEAN_STD = ((0.2860,), (0.3530,))  # the 60,000 training images' pixels in [0, 1]
_MNIST_MEAN_STD = ((0.1307,), (0.3081,))  # the same for MNIST (the values torchvision's examples use)

DATASET_INFO: dict[str, DatasetInfo] = {
    "digits": DatasetInfo(
        "digits",
        8,
        1,
        10,
        *_DIGITS_MEAN_STD,
        reads_folder=False,
        views=None,
        flips=False,
        downloads=False,
        raw_pixels_reading="raw pixels are a strong kNN baseline on 8x8 digits (centred and size-normalized)",
    ),
    "cifar10": DatasetInfo("cifar10", 32, 3, 10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": DatasetInfo("cifar100", 32, 3, 100, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "fashion-mnist": DatasetInfo("fashion-mnist", 28, 1, 10, *_FASHION_MEAN_STD, views=GRAYSCALE_28),
    "mnist": DatasetInfo(
        "mnist", 28, 1, 10, *_MNIST_MEAN_STD, views=dataclasses.replace(GRAYSCALE_28, flip_p=0.0), flips=False
    ),
    "stl10": DatasetInfo("stl10", 96, 3, 10, IMAGENET_MEAN, IMAGENET_STD),
    "imagenet": DatasetInfo(
        "imagenet", 224, 3, 1000, IMAGENET_MEAN, IMAGENET_STD, test_split="val", downloads=False
    ),
    "imagefolder": DatasetInfo("imagefolder", 32, 3, 0, IMAGENET_MEAN, IMAGENET_STD, downloads=False),
}

DATASET_SPLITS: dict[str, tuple[str, ...]] = {
    "digits": ("train", "test"),
    "cifar10": ("train", "test"),
    "cifar100": ("train", "test"),
    "fashion-mnist": ("train", "test"),
    "mnist": ("train", "test"),
    "stl10": ("train", "test", "unlabeled", "train+unlabeled"),
    "imagenet": ("train", "val", "test"),
    "imagefolder": ("train", "val", "test"),
}

# torchvision's folder for each data set it can download, and the class that reads it.
_TORCHVISION = {
    "cifar10": ("cifar-10-batches-py", tvd.CIFAR10),
    "cifar100": ("cifar-100-python", tvd.CIFAR100),
    "fashion-mnist": ("FashionMNIST", tvd.FashionMNIST),
    "mnist": ("MNIST", tvd.MNIST),
    "stl10": ("stl10_binary", tvd.STL10),
}


def dataset_info(
    name: str,
    dataset: Dataset | None = None,
    *,
    image_size: int | None = None,
    count_classes: bool = True,
) -> DatasetInfo:
    """:data:`DATASET_INFO` entry for ``name``, with the classes of a loaded ``dataset`` and an image size.

    The image size is resolved here, once: ``image_size`` (e.g. a run's ``image_size``)
    overrides the native size, ``None`` keeps it; read ``info.image_size`` afterwards.
    For ``"imagefolder"`` the number of classes comes from ``dataset`` (needed there,
    unless ``count_classes=False``, which leaves it 0 for callers that only need the
    image format and normalization).
    """
    info = _info(name)
    if info.num_classes == 0 and count_classes:
        if dataset is None:
            raise ValueError(f"{info.name}: the number of classes is found at load time; pass the dataset")
        info = dataclasses.replace(info, num_classes=len(dataset_classes(dataset)))
    if image_size is not None:
        info = dataclasses.replace(info, image_size=int(image_size))
    return info


def _info(name: str) -> DatasetInfo:
    key = str(name).lower()
    if key not in DATASET_INFO:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASET_INFO)}")
    return DATASET_INFO[key]


class DigitsDataset(Dataset):
    """scikit-learn's digits as a map-style data set of ``(transform(image), label)`` pairs.

    ``images`` is a float tensor ``(N, 1, 8, 8)`` in ``[0, 1]``, ``targets`` a long tensor ``(N,)``.
    """

    classes = [str(d) for d in range(10)]

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, transform: Callable | None = None):
        if len(images) != len(targets):
            raise ValueError(f"{len(images)} images but {len(targets)} labels")
        self.images = images
        self.targets = targets
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = self.images[index].clone()
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.targets[index])


class CachedImageFolder(Dataset):
    """The images of an ImageFolder, decoded once into a ``uint8`` array ``(N, H, W, C)``.

    Same order, labels (``targets``), ``classes`` and ``samples`` as the ImageFolder it
    was built from; ``__getitem__`` rebuilds the PIL image from the array, so the
    pixels are identical to ImageFolder's. All images must have one size.
    """

    def __init__(self, folder: tvd.ImageFolder, *, progress: bool | None = None):
        self.root = folder.root
        self.classes = list(folder.classes)
        self.class_to_idx = dict(folder.class_to_idx)
        self.samples = list(folder.samples)
        self.targets = np.asarray([t for _, t in self.samples], dtype=np.int64)
        self.transform = folder.transform
        self.target_transform = folder.target_transform
        if progress is None:
            progress = sys.stderr.isatty()
        self.images = _decode_all([p for p, _ in self.samples], folder.loader, progress)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = Image.fromarray(self.images[index])
        target = int(self.targets[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target


def _decode_all(paths: Sequence[str], loader: Callable, progress: bool) -> np.ndarray:
    if not paths:
        raise ValueError("nothing to cache: no images selected")
    array: np.ndarray | None = None
    for i, path in enumerate(progress_bar(paths, enabled=progress, desc="decoding images", unit="img")):
        pixels = np.asarray(loader(path), dtype=np.uint8)
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        if array is None:
            array = np.empty((len(paths), *pixels.shape), dtype=np.uint8)
        elif pixels.shape != array.shape[1:]:
            raise ValueError(
                f"cache=True needs images of one size: {paths[0]} is {array.shape[1:]} (H, W, C) "
                f"but {path} is {pixels.shape}; resize the tree or use cache=False"
            )
        array[i] = pixels
    assert array is not None
    return array


def build_dataset(
    name: str,
    split: str,
    *,
    root: str | os.PathLike | None = None,
    transform: Callable | None = None,
    download: bool = False,
    cache: bool = False,
    indices: Sequence[int] | np.ndarray | None = None,
    skip_unreadable: bool = False,
) -> Dataset:
    """The ``split`` of data set ``name`` as a map-style data set of ``(image, int label)`` pairs.

    Args:
        name: one of :data:`DATASET_INFO` (``digits``, ``cifar10``, ``cifar100``, ``stl10``,
            ``imagenet``, ``imagefolder``).
        split: ``train`` or ``test``; also ``unlabeled`` and ``train+unlabeled`` for STL-10,
            ``val`` for ``imagenet``/``imagefolder`` (the folder ``root/val``; ``test`` reads
            ``root/test``, or ``root/val`` where there is no ``root/test``).
        root: the data folder (``--data-dir``); not used for ``digits``.
        transform: applied to each PIL image (digits: to each ``(1, 8, 8)`` tensor).
        download: let torchvision download CIFAR-10/100 or STL-10 into ``root``.
        cache: decode the (selected) images of an ImageFolder tree once into memory; torchvision's
            CIFAR/STL-10 and digits are held in memory anyway.
        indices: keep only these images, in this order, before anything is decoded
            (e.g. from :func:`~pyro_vje.data.subset.balanced_subset_indices`).
        skip_unreadable: image folders only: leave out the (selected) files PIL cannot read,
            logging how many (:mod:`~pyro_vje.data.unreadable`); otherwise reading one raises
            :class:`~pyro_vje.data.unreadable.UnreadableImageError` naming it.

    The result keeps its class's ``classes`` and labels (``targets``, STL-10: ``labels``);
    :func:`dataset_labels` reads them without decoding images.

    Raises:
        ValueError: unknown data set or split, bad ``indices``, train/test class folders that
            differ, or the wrong number of class folders for CIFAR.
        FileNotFoundError: missing ``root``, split folder, class folders, images or torchvision files.
    """
    info = _info(name)
    name = info.name
    split = str(split).lower()
    if split not in DATASET_SPLITS[name]:
        raise ValueError(
            f"unknown split {split!r} for {name}; choose one of {', '.join(DATASET_SPLITS[name])}"
        )
    if name == "digits":
        d = load_digits_split(seed=0)
        if split == "train":
            images, targets = d.train_images, d.train_labels
        else:
            images, targets = d.test_images, d.test_labels
        if indices is not None:
            idx = torch.as_tensor(_check_indices(indices, len(targets), name, split))
            images, targets = images[idx], targets[idx]
        return DigitsDataset(images, targets, transform)

    root_path = _check_root(root, name, download)
    if name in ("imagenet", "imagefolder"):
        folder = _split_folder(root_path, split, name)
        return _load_image_folder(folder, name, transform, cache, indices, skip_unreadable)

    subdir, _ = _TORCHVISION[name]
    if name in ("cifar10", "cifar100") and ((root_path / "train").is_dir() or (root_path / "test").is_dir()):
        folder = root_path / split
        if not folder.is_dir():
            raise FileNotFoundError(
                f"{name}: {root_path} has the ImageFolder layout (train/ or test/) but no folder "
                f"{folder} for split {split!r}; expected {folder}/<class>/<image>"
            )
        return _load_image_folder(folder, name, transform, cache, indices, skip_unreadable)
    if not download and not (root_path / subdir).is_dir():
        looked = f"an ImageFolder tree {root_path}/{{train,test}}/<class>/<image>, or "
        looked = looked if name in ("cifar10", "cifar100") else ""
        raise FileNotFoundError(
            f"no {name} found in --data-dir {root_path}: looked for {looked}torchvision's files in "
            f"{root_path / subdir}/; pass --download (download=True) to fetch them with torchvision"
            f"{_split_folder_hint(root_path)}"
        )
    ds = _torchvision_dataset(name, split, root_path, transform, download)
    if indices is not None:
        idx = _check_indices(indices, len(ds), name, split)
        ds.data = ds.data[idx]
        if name == "stl10":
            ds.labels = ds.labels[idx]
        elif isinstance(ds.targets, torch.Tensor):  # (Fashion-)MNIST
            ds.targets = ds.targets[torch.as_tensor(idx)]
        else:
            ds.targets = [ds.targets[i] for i in idx]
    return ds


def _torchvision_dataset(name: str, split: str, root: Path, transform: Callable | None, download: bool):
    subdir, cls = _TORCHVISION[name]
    kwargs: dict[str, Any] = {"split": split} if name == "stl10" else {"train": split == "train"}
    try:
        return cls(str(root), transform=transform, download=download, **kwargs)
    except RuntimeError as e:
        if download:
            raise
        raise FileNotFoundError(
            f"{name}: torchvision could not read {root / subdir}: {e} (pass --download, i.e. download=True)"
        ) from e


def _check_root(root: str | os.PathLike | None, name: str, download: bool) -> Path:
    if root is None:
        raise ValueError(f"{name} needs root= (the --data-dir): the folder that holds its files")
    path = Path(root).expanduser()
    if path.exists() and not path.is_dir():
        raise FileNotFoundError(f"{name}: data directory (--data-dir) {path} is not a directory")
    if not path.exists() and not (download and name in _TORCHVISION):
        more = "; pass --download (download=True) to fetch it with torchvision"
        more = more if name in _TORCHVISION else ""
        raise FileNotFoundError(f"{name}: data directory (--data-dir) {path} does not exist{more}")
    return path


def _split_folder(root: Path, split: str, name: str) -> Path:
    folder = root / split
    if folder.is_dir():
        return folder
    if split == "test" and (root / "val").is_dir():
        return root / "val"
    also = f" or {root / 'val'}" if split == "test" else ""
    raise FileNotFoundError(
        f"{name}: no folder {folder}{also} for split {split!r}; expected the ImageFolder layout "
        f"{root}/<split>/<class>/<image>{_split_folder_hint(root)}"
    )


def _split_folder_hint(root: Path) -> str:
    """A hint when ``root`` looks like a split folder itself (class folders holding images)."""
    try:
        for sub in sorted(p for p in root.iterdir() if p.is_dir())[:3]:
            if any(f.suffix.lower() in IMG_EXTENSIONS for f in sub.iterdir()):
                return f" ({root} itself holds class folders of images: pass its parent folder)"
    except OSError:
        pass
    return ""


def _class_names(folder: Path) -> list[str]:
    return sorted(entry.name for entry in os.scandir(folder) if entry.is_dir())


def open_image_folder(folder: Path, transform: Callable | None, name: str) -> tvd.ImageFolder:
    """``torchvision.datasets.ImageFolder(folder)``, with an error naming ``name`` and the layout
    when class folders hold no images."""
    try:
        return tvd.ImageFolder(str(folder), transform=transform, loader=load_image)
    except FileNotFoundError as e:
        raise FileNotFoundError(
            f"{name}: {folder} has class folders without images ({e}); expected "
            f"{folder}/<class>/<image> with extensions {', '.join(IMG_EXTENSIONS)}"
        ) from e


def keep_samples(ds: Dataset, samples: Sequence[tuple[str, int]]) -> None:
    """Replace an image-folder data set's ``(path, label)`` list, keeping ``targets`` (and an
    ``ImageFolder``'s ``imgs``) in step with it."""
    ds.samples = list(samples)  # type: ignore[attr-defined]
    ds.targets = [t for _, t in ds.samples]  # type: ignore[attr-defined]
    if isinstance(ds, tvd.ImageFolder):
        ds.imgs = ds.samples


def drop_unreadable(ds: Dataset, folder: Path, what: str, name: str) -> None:
    """Leave out the files of ``ds`` that PIL cannot read, saying so as ``what``
    (:func:`~pyro_vje.data.unreadable.warn_skipped`); an error naming ``name`` if none is left."""
    kept, dropped = readable_samples(ds.samples)  # type: ignore[attr-defined]
    keep_samples(ds, kept)
    warn_skipped(what, folder, dropped)
    if not kept:
        raise FileNotFoundError(f"{name}: every selected image of {folder} is unreadable")


def _load_image_folder(
    folder: Path,
    name: str,
    transform: Callable | None,
    cache: bool,
    indices: Sequence[int] | np.ndarray | None,
    skip_unreadable: bool = False,
) -> Dataset:
    classes = _class_names(folder)
    if not classes:
        raise FileNotFoundError(f"{name}: {folder} has no class folders; expected {folder}/<class>/<image>")
    expected = DATASET_INFO[name].num_classes if name in ("cifar10", "cifar100") else 0
    if expected and len(classes) != expected:
        raise ValueError(f"{name} has {expected} classes but {folder} has {len(classes)} class folders")
    _check_sibling_classes(folder, classes, name)
    ds = open_image_folder(folder, transform, name)
    if indices is not None:
        idx = _check_indices(indices, len(ds), name, folder.name)
        keep_samples(ds, [ds.samples[i] for i in idx])
    if skip_unreadable:
        drop_unreadable(ds, folder, name, name)
    return CachedImageFolder(ds) if cache else ds


def _check_sibling_classes(folder: Path, classes: list[str], name: str) -> None:
    """Labels are class indices, so train and test folders must hold the same classes."""
    others = ["test", "val"] if folder.name == "train" else ["train"]
    for other in others:
        sibling = folder.parent / other
        if sibling == folder or not sibling.is_dir():
            continue
        theirs = _class_names(sibling)
        if theirs != classes:
            only_here = sorted(set(classes) - set(theirs))
            only_there = sorted(set(theirs) - set(classes))
            raise ValueError(
                f"{name}: class folders differ between {folder} and {sibling}, so labels would not match: "
                f"only in {folder.name}/: {only_here or 'none'}; only in {other}/: {only_there or 'none'}"
            )
        return


def _check_indices(indices: Sequence[int] | np.ndarray, size: int, name: str, split: str) -> np.ndarray:
    idx = np.asarray(indices)
    if idx.ndim != 1 or len(idx) == 0:
        raise ValueError(f"indices must be a non-empty 1-D sequence of ints, got shape {idx.shape}")
    if not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"indices must be integers, got dtype {idx.dtype}")
    if idx.min() < 0 or idx.max() >= size:
        raise ValueError(
            f"indices must lie in [0, {size}) for {name} split {split!r}, got [{idx.min()}, {idx.max()}]"
        )
    return idx.astype(np.int64)


def dataset_labels(ds: Dataset) -> np.ndarray:
    """The labels of a data set from :func:`build_dataset` (or a Subset/ConcatDataset of one) as int64.

    Reads the label attributes only; no image is decoded.
    """
    if isinstance(ds, Subset):
        return dataset_labels(ds.dataset)[np.asarray(ds.indices, dtype=np.int64)]
    if isinstance(ds, ConcatDataset):
        return np.concatenate([dataset_labels(d) for d in ds.datasets])
    for attr in ("targets", "labels"):
        labels = getattr(ds, attr, None)
        if labels is not None:
            if isinstance(labels, torch.Tensor):
                labels = labels.cpu().numpy()
            return np.asarray(labels, dtype=np.int64)
    raise TypeError(f"cannot read labels of {type(ds).__name__} (no targets or labels attribute)")


def dataset_classes(ds: Dataset) -> list[str]:
    """Class names of a data set from :func:`build_dataset` (or a Subset/ConcatDataset of one)."""
    while isinstance(ds, (Subset, ConcatDataset)):
        ds = ds.dataset if isinstance(ds, Subset) else ds.datasets[0]
    classes = getattr(ds, "classes", None)
    if classes is None:
        raise TypeError(f"{type(ds).__name__} has no classes attribute")
    return list(classes)
