"""Fashion-MNIST and MNIST through torchvision's classes: tiny IDX files written here, the shared
Fashion-MNIST copy where it exists, their views, and the held-out validation split of a run."""

import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF

from pyro_vje.data import DATASET_INFO, build_dataset, dataset_labels, train_transform
from pyro_vje.data.batched_views import BatchedMocoV2
from pyro_vje.data.tensor_loader import in_memory_images

SHARED_FASHION = Path(__file__).resolve().parents[2].parent / "shared/data/fashion-mnist"
needs_fashion = pytest.mark.skipif(
    not (SHARED_FASHION / "FashionMNIST/raw").is_dir(),
    reason=f"shared Fashion-MNIST folder not found at {SHARED_FASHION}",
)


def write_idx(
    root: Path, folder: str, split_images: dict[str, np.ndarray], split_labels: dict[str, np.ndarray]
):
    """torchvision's raw layout, written by hand from the IDX format's definition (big-endian
    magic 0x00000803 / 0x00000801, then the dimensions, then uint8 data)."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    prefix = {"train": "train", "test": "t10k"}
    for split, images in split_images.items():
        n, h, w = images.shape
        (raw / f"{prefix[split]}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 0x803, n, h, w) + images.astype(np.uint8).tobytes()
        )
        labels = split_labels[split]
        (raw / f"{prefix[split]}-labels-idx1-ubyte").write_bytes(
            struct.pack(">II", 0x801, len(labels)) + labels.astype(np.uint8).tobytes()
        )


@pytest.fixture
def tiny_mnist(tmp_path):
    rng = np.random.default_rng(0)
    images = {s: rng.integers(0, 256, (n, 28, 28), dtype=np.uint8) for s, n in (("train", 40), ("test", 20))}
    labels = {s: np.arange(len(images[s])) % 10 for s in images}
    write_idx(tmp_path, "MNIST", images, labels)
    return tmp_path, images, labels


def test_the_table_knows_them():
    for name, mean in (("fashion-mnist", 0.2860), ("mnist", 0.1307)):
        info = DATASET_INFO[name]
        assert (info.image_size, info.channels, info.num_classes, info.mean[0]) == (28, 1, 10, mean)
        assert info.views is not None and info.views.jitter[2:] == (0.0, 0.0)  # no saturation, no hue
    assert DATASET_INFO["fashion-mnist"].flips and DATASET_INFO["fashion-mnist"].views.flip_p == 0.5
    assert (
        not DATASET_INFO["mnist"].flips and DATASET_INFO["mnist"].views.flip_p == 0.0
    )  # a flipped 2 is no 2


def test_mnist_reads_idx_files_written_here(tiny_mnist):
    root, images, labels = tiny_mnist
    for split in ("train", "test"):
        ds = build_dataset("mnist", split, root=root)
        assert dataset_labels(ds).tolist() == labels[split].tolist()
        pixels, held = in_memory_images(ds)
        assert pixels.shape == (len(images[split]), 1, 28, 28) and pixels.dtype == torch.uint8
        assert np.array_equal(pixels[:, 0].numpy(), images[split])
        assert held.tolist() == labels[split].tolist()
        image, label = ds[3]  # a PIL image, as torchvision yields it
        assert np.array_equal(np.asarray(image), images[split][3]) and label == labels[split][3]


def test_indices_select_images_and_labels(tiny_mnist):
    root, images, labels = tiny_mnist
    ds = build_dataset("mnist", "train", root=root, indices=[5, 2, 17])
    assert dataset_labels(ds).tolist() == [5, 2, 7]
    assert np.array_equal(in_memory_images(ds)[0][:, 0].numpy(), images["train"][[5, 2, 17]])


def test_a_missing_folder_names_the_flag(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"--data-dir.*does not exist.*--download"):
        build_dataset("fashion-mnist", "train", root=tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"no mnist found in --data-dir") as err:
        build_dataset("mnist", "train", root=tmp_path)
    assert "ImageFolder" not in str(err.value)  # only CIFAR reads that layout


def test_the_batched_recipe_keeps_images_upright_for_mnist_and_flips_clothes():
    """Crops off (scale 1 of a square image is the whole image): MNIST's views are the image itself
    up to brightness/contrast, never its mirror; Fashion-MNIST's are mirrored about half the time."""
    gen = torch.Generator().manual_seed(0)
    image = torch.zeros(64, 1, 28, 28, dtype=torch.uint8)
    image[..., :, :10] = 255  # a bright left edge: a flip moves it right
    for name, low, high in (("mnist", 0, 0), ("fashion-mnist", 16, 48)):
        kwargs = {**DATASET_INFO[name].views.kwargs(), "crop_scale": (1.0, 1.0), "crop_ratio": (1.0, 1.0)}
        views = BatchedMocoV2(28, (0.0,), (1.0,), **kwargs)(image, gen)
        flipped = int((views[:, 0, :, -5:].mean(dim=(1, 2)) > views[:, 0, :, :5].mean(dim=(1, 2))).sum())
        assert low <= flipped <= high, (name, flipped)


def test_the_per_image_recipe_matches_the_table():
    steps = [type(t).__name__ for t in train_transform(DATASET_INFO["mnist"]).transforms]
    assert "RandomHorizontalFlip" not in steps and "RandomGrayscale" not in steps
    steps = train_transform(DATASET_INFO["fashion-mnist"]).transforms
    jitter = next(t for t in steps if type(t).__name__ == "RandomApply").transforms[0]
    assert jitter.saturation is None and jitter.hue is None and jitter.brightness == (0.6, 1.4)
    cifar = [type(t).__name__ for t in train_transform(DATASET_INFO["cifar10"]).transforms]
    assert cifar == [
        "RandomResizedCrop",
        "RandomApply",
        "RandomGrayscale",
        "RandomHorizontalFlip",
        "ToTensor",
        "Normalize",
    ]  # MoCo v2 unchanged


@needs_fashion
def test_shared_fashion_mnist_is_the_original_release():
    ds = build_dataset("fashion-mnist", "train", root=SHARED_FASHION)
    pixels, labels = in_memory_images(ds)
    assert pixels.shape == (60000, 1, 28, 28)
    assert labels[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]  # shared/data/README.md
    x = pixels.float() / 255
    info = DATASET_INFO["fashion-mnist"]
    assert abs(x.mean().item() - info.mean[0]) < 5e-5 and abs(x.std().item() - info.std[0]) < 5e-5
    assert np.bincount(labels.numpy()).tolist() == [6000] * 10
    first = TF.pil_to_tensor(build_dataset("fashion-mnist", "test", root=SHARED_FASHION)[0][0])
    assert first.shape == (1, 28, 28)
