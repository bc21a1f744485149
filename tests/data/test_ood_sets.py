"""OOD data sets: synthetic shifts (PIL and digits tensors), build_ood_dataset specs, errors."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import Dataset

from pyro_vje.data import DATASET_INFO, build_dataset, dataset_labels, eval_transform
from pyro_vje.data.ood_sets import (
    OOD_CHOICES,
    SHIFTS,
    ImageFiles,
    MatchImageFormat,
    ShiftedDataset,
    blur_kernel_size,
    build_ood_dataset,
    check_ood_spec,
    ood_train_transform,
    ood_transform,
)

SHARED_CIFAR = Path(__file__).resolve().parents[2].parent / "shared/data/cifar10"
needs_cifar = pytest.mark.skipif(
    not (SHARED_CIFAR / "test").is_dir(), reason=f"shared CIFAR-10 folder not found at {SHARED_CIFAR}"
)

DIGITS = DATASET_INFO["digits"]
CIFAR = DATASET_INFO["cifar10"]


class PILDataset(Dataset):
    """Random RGB (or L) PIL images of one size with labels 0, 1, 2, ..."""

    def __init__(self, n: int = 4, size: tuple[int, int] = (32, 24), mode: str = "RGB", seed: int = 0):
        rng = np.random.default_rng(seed)
        shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
        self.images = [Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)) for _ in range(n)]
        self.targets = list(range(n))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return self.images[index].copy(), self.targets[index]


def digits_base(n: int = 5) -> Dataset:
    return build_dataset("digits", "test", transform=None, indices=list(range(n)))


def as_array(image) -> np.ndarray:
    if isinstance(image, Image.Image):
        return np.asarray(image, dtype=np.float64) / 255
    return image.double().numpy()


def high_freq_energy(x: np.ndarray) -> float:
    """Mean squared difference of neighbouring pixels (along H and W)."""
    x = x if x.ndim == 3 and x.shape[0] in (1, 3) else np.atleast_3d(x).transpose(2, 0, 1)
    return float(np.mean(np.diff(x, axis=-1) ** 2) + np.mean(np.diff(x, axis=-2) ** 2))


def make_tree(root: Path, classes=("a", "b"), per_class=2, size=(12, 10)) -> Path:
    rng = np.random.default_rng(1)
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / c / f"{i}.png")
    return root


# --- ShiftedDataset on PIL images ------------------------------------------------------------------


@pytest.mark.parametrize("shift", SHIFTS)
@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_pil_shift_type_size_labels_determinism(shift, mode):
    base = PILDataset(mode=mode)
    ds = ShiftedDataset(base, shift, seed=3)
    assert len(ds) == len(base)
    for i in range(len(ds)):
        image, label = ds[i]
        assert isinstance(image, Image.Image)
        assert image.mode == mode and image.size == base.images[i].size
        assert label == base.targets[i]
        again, _ = ds[i]
        np.testing.assert_array_equal(np.asarray(image), np.asarray(again))
    np.testing.assert_array_equal(np.asarray(ds[-1][0]), np.asarray(ds[len(ds) - 1][0]))


@pytest.mark.parametrize("shift", ["gaussian_noise", "uniform_noise"])
def test_pil_noise_ignores_content_and_depends_on_seed_and_index(shift):
    a = ShiftedDataset(PILDataset(seed=0), shift, seed=5)
    b = ShiftedDataset(PILDataset(seed=1), shift, seed=5)
    np.testing.assert_array_equal(np.asarray(a[0][0]), np.asarray(b[0][0]))
    assert not np.array_equal(np.asarray(a[0][0]), np.asarray(a[1][0]))
    c = ShiftedDataset(PILDataset(seed=0), shift, seed=6)
    assert not np.array_equal(np.asarray(a[0][0]), np.asarray(c[0][0]))


def test_pil_noise_statistics():
    base = PILDataset(n=1, size=(64, 64))
    gauss = as_array(ShiftedDataset(base, "gaussian_noise")[0][0])
    assert abs(gauss.mean() - 0.5) < 0.02 and 0.2 < gauss.std() < 0.26
    uniform = as_array(ShiftedDataset(base, "uniform_noise")[0][0])
    assert abs(uniform.mean() - 0.5) < 0.02 and abs(uniform.std() - 12**-0.5) < 0.02
    assert uniform.min() < 0.01 and uniform.max() > 0.99


def test_pil_invert_twice_is_identity():
    base = PILDataset()
    once = ShiftedDataset(base, "invert")
    twice = ShiftedDataset(once, "invert")
    for i in range(len(base)):
        original = np.asarray(base.images[i])
        np.testing.assert_array_equal(np.asarray(once[i][0]), 255 - original)
        np.testing.assert_array_equal(np.asarray(twice[i][0]), original)


def test_pil_blur_reduces_high_frequency_energy_more_with_severity():
    base = PILDataset(n=1, size=(32, 32))
    raw = high_freq_energy(as_array(base[0][0]).transpose(2, 0, 1))
    mild = high_freq_energy(as_array(ShiftedDataset(base, "blur", severity=0.5)[0][0]).transpose(2, 0, 1))
    strong = high_freq_energy(as_array(ShiftedDataset(base, "blur")[0][0]).transpose(2, 0, 1))
    assert strong < mild < 0.5 * raw


def test_pil_other_modes_become_rgb():
    rgba = [(Image.new("RGBA", (6, 5), (10, 20, 30, 255)), 0)]
    image, _ = ShiftedDataset(rgba, "invert")[0]
    assert image.mode == "RGB" and image.getpixel((0, 0)) == (245, 235, 225)


# --- ShiftedDataset on digits tensors --------------------------------------------------------------


@pytest.mark.parametrize("shift", SHIFTS)
def test_tensor_shift_type_size_range_determinism(shift):
    base = digits_base()
    ds = ShiftedDataset(base, shift, seed=1)
    for i in range(len(ds)):
        x, label = ds[i]
        assert isinstance(x, torch.Tensor) and x.dtype == torch.float32 and x.shape == (1, 8, 8)
        assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
        assert label == base[i][1]
        assert torch.equal(x, ds[i][0])
    assert np.array_equal(ds.targets, dataset_labels(base))
    assert ds.classes == [str(d) for d in range(10)]


@pytest.mark.parametrize("shift", ["gaussian_noise", "uniform_noise"])
def test_tensor_noise_ignores_content(shift):
    base = digits_base()
    zeros = [(torch.zeros(1, 8, 8), 0)] * len(base)
    a, b = ShiftedDataset(base, shift, seed=2), ShiftedDataset(zeros, shift, seed=2)
    for i in range(len(base)):
        assert torch.equal(a[i][0], b[i][0])
    assert not torch.equal(a[0][0], a[1][0])
    g = torch.Generator().manual_seed(2 * 1_000_003 + 1)  # the documented seeding of item 1
    if shift == "uniform_noise":
        expected = torch.rand((1, 8, 8), generator=g)
    else:
        expected = (torch.randn((1, 8, 8), generator=g) * 0.25 + 0.5).clamp(0, 1)
    assert torch.equal(a[1][0], expected)


def test_tensor_invert_twice_is_exact_identity():
    base = digits_base()
    twice = ShiftedDataset(ShiftedDataset(base, "invert"), "invert")
    for i in range(len(base)):
        assert torch.equal(ShiftedDataset(base, "invert")[i][0], 1 - base[i][0])
        assert torch.equal(twice[i][0], base[i][0])


def test_tensor_blur_reduces_high_frequency_energy():
    base = digits_base()
    blurred = ShiftedDataset(base, "blur")
    for i in range(len(base)):
        assert high_freq_energy(as_array(blurred[i][0])) < 0.7 * high_freq_energy(as_array(base[i][0]))


def test_uint8_tensor_shifts():
    x = torch.randint(0, 256, (3, 9, 9), dtype=torch.uint8)
    for shift in SHIFTS:
        y, _ = ShiftedDataset([(x, 0)], shift)[0]
        assert y.dtype == torch.uint8 and y.shape == x.shape
    assert torch.equal(ShiftedDataset([(x, 0)], "invert")[0][0], 255 - x)


def test_blur_kernel_size():
    assert [blur_kernel_size(s) for s in (1, 2, 8, 32, 96, 224)] == [1, 3, 3, 7, 19, 45]


def test_shifted_dataset_errors():
    with pytest.raises(ValueError, match="unknown shift 'rotate'.*gaussian_noise"):
        ShiftedDataset(digits_base(), "rotate")
    with pytest.raises(ValueError, match="severity"):
        ShiftedDataset(digits_base(), "blur", severity=0)
    with pytest.raises(TypeError, match="transform=None"):
        ShiftedDataset([(np.zeros((8, 8)), 0)], "invert")[0]
    with pytest.raises(IndexError):
        ShiftedDataset(digits_base(3), "invert")[3]


def test_shift_then_transform():
    ds = ShiftedDataset(PILDataset(size=(20, 20)), "blur", eval_transform(CIFAR))
    x, label = ds[1]
    assert x.shape == (3, 32, 32) and label == 1


# --- build_ood_dataset -----------------------------------------------------------------------------


@pytest.mark.parametrize("shift", SHIFTS)
def test_build_shift_of_digits(shift):
    transform = eval_transform(DIGITS)
    ds = build_ood_dataset(shift, in_dataset="digits", transform=transform, seed=4, indices=[3, 1, 2])
    base = build_dataset("digits", "test", indices=[3, 1, 2])
    assert isinstance(ds, ShiftedDataset) and ds.shift == shift and len(ds) == 3
    for i in range(3):
        x, label = ds[i]
        assert x.shape == (1, 8, 8) and label == base[i][1]
        assert torch.equal(x, ds[i][0])
        assert torch.allclose(x, transform(ds.apply(base[i][0], i)))
    same = build_ood_dataset(
        shift.upper(), in_dataset="digits", transform=transform, seed=4, indices=[3, 1, 2]
    )
    assert torch.equal(same[2][0], ds[2][0])


def test_build_shift_options_reach_dataset():
    ds = build_ood_dataset("blur", in_dataset="digits", transform=None, split="train", severity=0.7, seed=9)
    assert ds.severity == 0.7 and ds.seed == 9
    assert len(ds) == len(build_dataset("digits", "train"))


def test_build_imagefolder_classes(tmp_path):
    root = make_tree(tmp_path / "ood")
    ds = build_ood_dataset(f"imagefolder:{root}", in_dataset="cifar10", transform=eval_transform(CIFAR))
    assert len(ds) == 4 and list(dataset_labels(ds)) == [0, 0, 1, 1]
    x, label = ds[2]
    assert x.shape == (3, 32, 32) and label == 1
    picked = build_ood_dataset(
        f"imagefolder:{root}", in_dataset="cifar10", transform=eval_transform(CIFAR), indices=[3, 0]
    )
    assert len(picked) == 2 and list(dataset_labels(picked)) == [1, 0]
    digits = build_ood_dataset(f"imagefolder:{root}", in_dataset="digits", transform=ood_transform(DIGITS))
    assert digits[0][0].shape == (1, 8, 8)


def test_build_imagefolder_split_layout_and_flat(tmp_path):
    make_tree(tmp_path / "splits" / "val", classes=("x",), per_class=3)
    make_tree(tmp_path / "splits" / "train", classes=("x",), per_class=1)
    ds = build_ood_dataset(f"imagefolder:{tmp_path / 'splits'}", in_dataset="cifar10", transform=None)
    assert len(ds) == 3  # test falls back to val
    train = build_ood_dataset(
        f"imagefolder:{tmp_path / 'splits'}", in_dataset="cifar10", transform=None, split="train"
    )
    assert len(train) == 1

    flat = tmp_path / "flat"
    make_tree(tmp_path / "tmp", classes=("c",), per_class=3)
    flat.mkdir()
    for f in sorted((tmp_path / "tmp" / "c").iterdir()):
        f.rename(flat / f.name)
    (flat / "notes.txt").write_text("not an image")
    ds = build_ood_dataset(f"imagefolder:{flat}", in_dataset="cifar10", transform=eval_transform(CIFAR))
    assert isinstance(ds, ImageFiles) and len(ds) == 3
    assert list(dataset_labels(ds)) == [-1, -1, -1]
    x, label = ds[0]
    assert x.shape == (3, 32, 32) and label == -1
    picked = build_ood_dataset(f"imagefolder:{flat}", in_dataset="cifar10", transform=None, indices=[2])
    assert len(picked) == 1 and picked.samples[0][0].endswith("2.png")


@needs_cifar
def test_build_cifar10_from_shared_copy():
    ds = build_ood_dataset(
        "cifar10", in_dataset="digits", root=SHARED_CIFAR, transform=eval_transform(CIFAR), indices=[0, 1, 2]
    )
    assert len(ds) == 3
    x, _ = ds[0]
    assert x.shape == (3, 32, 32)
    for_digits = build_ood_dataset(
        "cifar10", in_dataset="digits", root=SHARED_CIFAR, transform=ood_transform(DIGITS), indices=[0, 1, 2]
    )
    assert for_digits[1][0].shape == (1, 8, 8)
    blurred = build_ood_dataset(
        "blur", in_dataset="cifar10", in_root=SHARED_CIFAR, transform=eval_transform(CIFAR), indices=[0, 1, 2]
    )
    assert blurred[2][0].shape == (3, 32, 32)
    assert not torch.equal(blurred[0][0], x)


def test_ood_transform_converts_formats():
    to_digits = ood_transform(DIGITS)
    assert to_digits(Image.new("RGB", (32, 32), (255, 255, 255))).shape == (1, 8, 8)
    assert to_digits(torch.rand(3, 16, 16)).shape == (1, 8, 8)
    x = torch.rand(1, 8, 8)
    assert torch.equal(to_digits(x), eval_transform(DIGITS)(x))
    to_cifar = ood_transform(CIFAR)
    assert to_cifar(torch.rand(1, 8, 8)).shape == (3, 32, 32)
    assert to_cifar(Image.new("L", (40, 50))).shape == (3, 32, 32)
    image = PILDataset(n=1)[0][0].resize((32, 32))
    assert torch.equal(to_cifar(image), eval_transform(CIFAR)(image))
    assert "tensor" in repr(MatchImageFormat(DIGITS))


def test_ood_train_transform_augments_after_matching_the_format():
    """The TTA views of OOD images: any image format in, the in-distribution augmentation's output."""
    augment = ood_train_transform(CIFAR, 24)
    assert augment(Image.new("L", (40, 50))).shape == (3, 24, 24)
    assert augment(torch.rand(1, 8, 8)).shape == (3, 24, 24)
    torch.manual_seed(0)
    a = augment(PILDataset(n=1)[0][0])
    torch.manual_seed(0)
    b = augment(PILDataset(n=1)[0][0])
    torch.manual_seed(1)
    c = augment(PILDataset(n=1)[0][0])
    assert torch.equal(a, b) and not torch.equal(a, c)  # random augmentation, seeded by torch


# --- errors ----------------------------------------------------------------------------------------


def test_unknown_spec_lists_choices():
    with pytest.raises(ValueError, match="unknown OOD data set 'kmnist'") as info:
        build_ood_dataset("kmnist", in_dataset="digits", transform=None)
    for choice in (*SHIFTS, "cifar100", "svhn", "imagefolder:PATH"):
        assert choice in str(info.value)
    assert "svhn" in OOD_CHOICES and "imagefolder:PATH" in OOD_CHOICES
    with pytest.raises(ValueError, match="needs a path"):
        build_ood_dataset("imagefolder:", in_dataset="digits", transform=None)


def test_svhn_missing_without_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="--download") as info:
        build_ood_dataset("svhn", in_dataset="cifar10", root=tmp_path, transform=None)
    assert str(tmp_path) in str(info.value) and "test_32x32.mat" in str(info.value)
    with pytest.raises(ValueError, match="root="):
        build_ood_dataset("svhn", in_dataset="cifar10", transform=None)
    with pytest.raises(ValueError, match="unknown split 'val' for svhn"):
        build_ood_dataset("svhn", in_dataset="cifar10", root=tmp_path, transform=None, split="val")


def test_imagefolder_errors(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_ood_dataset(f"imagefolder:{missing}", in_dataset="cifar10", transform=None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="neither class folders nor images"):
        build_ood_dataset(f"imagefolder:{tmp_path / 'empty'}", in_dataset="cifar10", transform=None)
    (tmp_path / "hollow" / "cls").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="class folders without images"):
        build_ood_dataset(f"imagefolder:{tmp_path / 'hollow'}", in_dataset="cifar10", transform=None)
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        build_ood_dataset(f"imagefolder:{tmp_path / 'file.png'}", in_dataset="cifar10", transform=None)
    make_tree(tmp_path / "only_train" / "train", classes=("x",), per_class=1)
    with pytest.raises(FileNotFoundError, match="none for split 'test'"):
        build_ood_dataset(f"imagefolder:{tmp_path / 'only_train'}", in_dataset="cifar10", transform=None)


def test_dataset_name_missing_root_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="--download"):
        build_ood_dataset("cifar100", in_dataset="cifar10", root=tmp_path, transform=None)
    # the OOD folder is --ood-root (root=), not the run's --data-dir
    for spec in ("cifar100", "svhn"):
        with pytest.raises(ValueError, match="--ood-root") as info:
            build_ood_dataset(spec, in_dataset="cifar10", transform=None)
        assert "--data-dir" not in str(info.value)


# ------------------------------------------------------------------ issue 26
def test_ood_specs_are_checked_without_reading_data():
    assert check_ood_spec("Gaussian_Noise") == "gaussian_noise"
    assert check_ood_spec("cifar100", root="/nowhere") == "cifar100"  # the folder is read later
    with pytest.raises(ValueError, match=r"unknown OOD data set 'cifar101' \(did you mean cifar10"):
        check_ood_spec("cifar101")
    with pytest.raises(ValueError, match="--ood-root"):
        check_ood_spec("svhn")
    with pytest.raises(ValueError, match="needs a path"):
        check_ood_spec("imagefolder:")
