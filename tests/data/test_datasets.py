"""build_dataset: digits, ImageFolder trees (synthetic and the shared CIFAR-10 copy), caching, errors."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import ConcatDataset, Subset
from torchvision.datasets import ImageFolder

from pyro_vje.data import (
    DATASET_INFO,
    CachedImageFolder,
    DatasetInfo,
    build_dataset,
    dataset_classes,
    dataset_info,
    dataset_labels,
    load_digits_split,
)

SHARED_CIFAR = Path(__file__).resolve().parents[2].parent / "shared/data/cifar10"
needs_cifar = pytest.mark.skipif(
    not (SHARED_CIFAR / "train").is_dir(), reason=f"shared CIFAR-10 folder not found at {SHARED_CIFAR}"
)


def make_tree(
    root: Path, splits=("train", "test"), classes=("a", "b", "c"), per_class=3, size=(8, 6), ext="png"
):
    """root/<split>/<class>/<i>.<ext>: small random RGB images, distinct per file."""
    rng = np.random.default_rng(0)
    for split in splits:
        for c in classes:
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / c / f"{i}.{ext}")
    return root


# --- info -------------------------------------------------------------------------------------------


def test_dataset_info_table():
    expected = {
        "digits": (8, 1, 10),
        "cifar10": (32, 3, 10),
        "cifar100": (32, 3, 100),
        "fashion-mnist": (28, 1, 10),
        "mnist": (28, 1, 10),
        "stl10": (96, 3, 10),
        "imagenet": (224, 3, 1000),
        "imagefolder": (32, 3, 0),
    }
    assert set(DATASET_INFO) == set(expected)
    for name, (size, channels, classes) in expected.items():
        info = DATASET_INFO[name]
        assert isinstance(info, DatasetInfo) and info.name == name
        assert (info.image_size, info.channels, info.num_classes) == (size, channels, classes)
        assert len(info.mean) == len(info.std) == channels
    assert DATASET_INFO["cifar10"].mean == (0.4914, 0.4822, 0.4465)
    with pytest.raises(dataclasses.FrozenInstanceError):
        DATASET_INFO["cifar10"].image_size = 64  # type: ignore[misc]


def test_digits_stats_are_honest():
    images = torch.cat([load_digits_split().train_images, load_digits_split().test_images])
    info = DATASET_INFO["digits"]
    assert abs(images.mean().item() - info.mean[0]) < 1e-3 and abs(images.std().item() - info.std[0]) < 1e-3


def test_dataset_info_resolves_imagefolder(tmp_path):
    ds = build_dataset("imagefolder", "train", root=make_tree(tmp_path, classes=("x", "y")))
    info = dataset_info("imagefolder", ds, image_size=64)
    assert info.num_classes == 2 and info.image_size == 64
    assert dataset_info("cifar10") == DATASET_INFO["cifar10"]
    with pytest.raises(ValueError, match="found at load time"):
        dataset_info("imagefolder")
    unknown = dataset_info("imagefolder", image_size=48, count_classes=False)
    assert unknown.num_classes == 0 and unknown.image_size == 48


# --- digits -----------------------------------------------------------------------------------------


def test_digits_matches_load_digits_split():
    d = load_digits_split(seed=0)
    for split, images, labels in (
        ("train", d.train_images, d.train_labels),
        ("test", d.test_images, d.test_labels),
    ):
        ds = build_dataset("digits", split)
        assert len(ds) == len(labels)
        np.testing.assert_array_equal(dataset_labels(ds), labels.numpy())
        x, y = ds[5]
        assert isinstance(y, int) and y == int(labels[5])
        assert x.shape == (1, 8, 8) and torch.equal(x, images[5])


def test_digits_indices_and_transform():
    full = build_dataset("digits", "train")
    ds = build_dataset("digits", "train", indices=[4, 0, 4], transform=lambda x: x * 2)
    assert len(ds) == 3
    assert torch.equal(ds[0][0], full[4][0] * 2) and torch.equal(ds[1][0], full[0][0] * 2)
    np.testing.assert_array_equal(dataset_labels(ds), dataset_labels(full)[[4, 0, 4]])


# --- ImageFolder trees ------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", ["png", "jpg"])
def test_imagefolder_reads_a_synthetic_tree(tmp_path, ext):
    root = make_tree(tmp_path, ext=ext)
    ds = build_dataset("imagefolder", "train", root=root)
    assert len(ds) == 9 and dataset_classes(ds) == ["a", "b", "c"]
    np.testing.assert_array_equal(dataset_labels(ds), [0, 0, 0, 1, 1, 1, 2, 2, 2])
    image, label = ds[4]
    assert isinstance(image, Image.Image) and image.size == (8, 6) and image.mode == "RGB" and label == 1
    ds = build_dataset("imagenet", "test", root=root, transform=lambda im: np.asarray(im).sum())
    assert len(ds) == 9 and isinstance(ds[0][0], np.integer)


def test_test_split_falls_back_to_val_and_val_is_accepted(tmp_path):
    root = make_tree(tmp_path, splits=("train", "val"))
    for split in ("val", "test"):
        ds = build_dataset("imagenet", split, root=root)
        assert Path(ds.root).name == "val" and len(ds) == 9


def test_indices_select_before_reading(tmp_path):
    root = make_tree(tmp_path)
    full = build_dataset("imagefolder", "train", root=root)
    ds = build_dataset("imagefolder", "train", root=root, indices=np.array([8, 1, 4]))
    assert len(ds) == 3
    np.testing.assert_array_equal(dataset_labels(ds), [2, 0, 1])
    for j, i in enumerate([8, 1, 4]):
        assert np.array_equal(np.asarray(ds[j][0]), np.asarray(full[i][0]))


def test_cache_is_pixel_identical_on_a_synthetic_tree(tmp_path):
    root = make_tree(tmp_path, ext="jpg")
    plain = build_dataset("imagefolder", "train", root=root, indices=[7, 2, 3])
    cached = build_dataset("imagefolder", "train", root=root, indices=[7, 2, 3], cache=True)
    assert isinstance(cached, CachedImageFolder) and cached.images.shape == (3, 6, 8, 3)
    assert cached.images.dtype == np.uint8 and cached.classes == plain.classes
    for (a, ya), (b, yb) in zip(plain, cached):
        assert ya == yb and np.array_equal(np.asarray(a), np.asarray(b)) and b.mode == a.mode


def test_cache_rejects_mixed_sizes(tmp_path):
    root = make_tree(tmp_path)
    Image.new("RGB", (5, 5)).save(root / "train" / "c" / "big.png")
    with pytest.raises(ValueError, match="one size"):
        build_dataset("imagefolder", "train", root=root, cache=True)


def test_labels_of_subsets_and_concat(tmp_path):
    ds = build_dataset("imagefolder", "train", root=make_tree(tmp_path))
    sub = Subset(ds, [8, 0, 3])
    np.testing.assert_array_equal(dataset_labels(sub), [2, 0, 1])
    np.testing.assert_array_equal(dataset_labels(Subset(sub, [2])), [1])
    assert dataset_labels(ConcatDataset([sub, sub])).tolist() == [2, 0, 1, 2, 0, 1]
    assert dataset_classes(sub) == ["a", "b", "c"]
    assert dataset_labels(ds).dtype == np.int64
    with pytest.raises(TypeError):
        dataset_labels([1, 2, 3])


def test_cifar_reads_an_imagefolder_layout(tmp_path):
    classes = [f"class{i}" for i in range(10)]
    root = make_tree(tmp_path, classes=classes, per_class=1, size=(32, 32))
    ds = build_dataset("cifar10", "test", root=root, cache=True)
    assert len(ds) == 10 and dataset_labels(ds).tolist() == list(range(10))
    with pytest.raises(ValueError, match="100 classes but .* 10 class folders"):
        build_dataset("cifar100", "train", root=root)


# --- errors -----------------------------------------------------------------------------------------


def test_unknown_dataset_and_split(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'kmnist'; choose one of digits, cifar10"):
        build_dataset("kmnist", "train", root=tmp_path)
    with pytest.raises(ValueError, match="unknown split 'unlabeled' for cifar10; choose one of train, test"):
        build_dataset("cifar10", "unlabeled", root=tmp_path)
    with pytest.raises(ValueError, match="unknown split 'val' for digits"):
        build_dataset("digits", "val")
    with pytest.raises(
        ValueError, match="unknown split 'extra' for stl10; choose one of .*train\\+unlabeled"
    ):
        build_dataset("stl10", "extra", root=tmp_path)


def test_root_errors(tmp_path):
    with pytest.raises(ValueError, match="needs root="):
        build_dataset("imagefolder", "train")
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match=f"{missing} does not exist; pass --download"):
        build_dataset("cifar10", "train", root=missing)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_dataset("imagenet", "train", root=missing)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        build_dataset("imagefolder", "train", root=a_file)


def test_missing_split_folder(tmp_path):
    root = make_tree(tmp_path, splits=("train",))
    with pytest.raises(FileNotFoundError, match=r"no folder .*test or .*val for split 'test'"):
        build_dataset("imagefolder", "test", root=root)
    classes = [f"k{i}" for i in range(10)]
    make_tree(tmp_path / "c10", splits=("train",), classes=classes, per_class=1)
    with pytest.raises(FileNotFoundError, match="ImageFolder layout .* no folder .*test"):
        build_dataset("cifar10", "test", root=tmp_path / "c10")


def test_root_that_is_a_split_folder_gets_a_hint(tmp_path):
    root = make_tree(tmp_path)
    with pytest.raises(FileNotFoundError, match="pass its parent folder"):
        build_dataset("imagefolder", "train", root=root / "train")


def test_split_folder_without_class_folders_or_images(tmp_path):
    (tmp_path / "empty" / "train").mkdir(parents=True)
    (tmp_path / "empty" / "train" / "loose.png").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="has no class folders"):
        build_dataset("imagefolder", "train", root=tmp_path / "empty")
    (tmp_path / "noimg" / "train" / "a").mkdir(parents=True)
    (tmp_path / "noimg" / "train" / "a" / "notes.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match="class folders without images"):
        build_dataset("imagefolder", "train", root=tmp_path / "noimg")


def test_train_and_test_classes_must_match(tmp_path):
    make_tree(tmp_path, splits=("train",), classes=("a", "b", "c"))
    make_tree(tmp_path, splits=("test",), classes=("a", "b", "d"))
    for split in ("train", "test"):
        with pytest.raises(ValueError, match="class folders differ") as err:
            build_dataset("imagefolder", split, root=tmp_path)
        assert "only in train/: ['c']" in str(err.value) and "only in test/: ['d']" in str(err.value)


def test_bad_indices(tmp_path):
    root = make_tree(tmp_path)
    for bad, match in (([9], r"\[0, 9\)"), ([-1], r"\[0, 9\)"), ([], "non-empty"), ([0.5], "integers")):
        with pytest.raises(ValueError, match=match):
            build_dataset("imagefolder", "train", root=root, indices=bad)
    with pytest.raises(ValueError, match=r"\[0, 1347\)"):
        build_dataset("digits", "train", indices=[5000])


@pytest.mark.parametrize(
    "name, subdir",
    [("cifar10", "cifar-10-batches-py"), ("cifar100", "cifar-100-python"), ("stl10", "stl10_binary")],
)
def test_torchvision_sets_without_files_say_so(tmp_path, name, subdir):
    with pytest.raises(FileNotFoundError) as err:
        build_dataset(name, "test", root=tmp_path)
    msg = str(err.value)
    assert subdir in msg and "--download" in msg and str(tmp_path) in msg
    if name != "stl10":
        assert "ImageFolder" in msg
    # torchvision's folder present but its files missing: torchvision's own message, re-raised.
    (tmp_path / subdir).mkdir()
    (tmp_path / subdir / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(FileNotFoundError, match="Dataset not found or corrupted"):
        build_dataset(name, "test", root=tmp_path)


# --- the shared CIFAR-10 copy -----------------------------------------------------------------------


@needs_cifar
def test_shared_cifar_cache_is_pixel_identical():
    indices = [0, 4999, 5000, 12345, 49999, 777]
    plain = build_dataset("cifar10", "train", root=SHARED_CIFAR, indices=indices)
    cached = build_dataset("cifar10", "train", root=SHARED_CIFAR, indices=indices, cache=True)
    assert isinstance(plain, ImageFolder) and isinstance(cached, CachedImageFolder)
    assert cached.images.shape == (6, 32, 32, 3) and cached.classes == plain.classes
    assert plain.classes == [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    np.testing.assert_array_equal(dataset_labels(cached), dataset_labels(plain))
    assert dataset_labels(plain).tolist() == [0, 0, 1, 2, 9, 0]
    for (a, ya), (b, yb) in zip(plain, cached):
        assert ya == yb and np.array_equal(np.asarray(a), np.asarray(b))


@needs_cifar
def test_shared_cifar_test_split_labels_without_decoding():
    ds = build_dataset("cifar10", "test", root=SHARED_CIFAR)
    assert np.bincount(dataset_labels(ds)).tolist() == [1000] * 10


def test_no_dataset_name_is_compared_outside_data():
    """Dataset facts live in DATASET_INFO: code outside pyro_vje/data/ asks the table, not the name."""
    import re

    import pyro_vje
    from pyro_vje.data.datasets import DATASET_INFO

    package = Path(pyro_vje.__file__).parent
    names = "|".join(re.escape(name) for name in DATASET_INFO)
    compared = re.compile(rf"""(==|!=)\s*["']({names})["']|\bin\s*\([^)]*["']({names})["']""")
    offenders = [
        f"{path.relative_to(package)}:{number}: {line.strip()}"
        for path in sorted(package.rglob("*.py"))
        if "data" not in path.relative_to(package).parts[:1]
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if compared.search(line)
    ]
    assert not offenders, "dataset names compared outside data/:\n" + "\n".join(offenders)


def test_folder_only_data_sets_need_a_folder():
    from pyro_vje.config import TrainConfig

    assert [name for name, info in DATASET_INFO.items() if info.reads_folder and not info.downloads] == [
        "imagenet",
        "imagefolder",
    ]
    with pytest.raises(ValueError, match="reads a folder"):
        TrainConfig(dataset="imagenet").validate()
    TrainConfig(dataset="fashion-mnist").validate()  # torchvision fetches it with --download
