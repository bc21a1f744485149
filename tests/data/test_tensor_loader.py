"""TwoViewTensorLoader: the order and sharding of DataLoader + DistributedSampler, per-epoch
determinism (exact resume), views on the device; in_memory_images for the in-memory data sets."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, DistributedSampler, Subset
from torchvision import datasets as tvd

from pyro_vje.data import build_dataset, dataset_labels
from pyro_vje.data.batched_views import BatchedMocoV2
from pyro_vje.data.datasets import CachedImageFolder
from pyro_vje.data.digits import DigitsTwoViews
from pyro_vje.data.tensor_loader import TwoViewTensorLoader, in_memory_images, view_seed

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def _images(n: int, size: int = 8) -> torch.Tensor:
    return torch.randint(
        0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )


@pytest.mark.parametrize("world,batch", [(1, 8), (2, 8), (3, 5)])
def test_order_and_length_are_those_of_dataloader_with_distributed_sampler(world, batch):
    n = 53
    labels = torch.arange(n)  # the label is the index: the batches show the order
    for rank in range(world):
        loader = TwoViewTensorLoader(
            _images(n), labels, BatchedMocoV2(8, MEAN, STD), batch, seed=4, num_replicas=world, rank=rank
        )
        sampler = DistributedSampler(
            range(n), num_replicas=world, rank=rank, shuffle=True, seed=4, drop_last=True
        )
        reference = DataLoader(labels, batch_size=batch, sampler=sampler, drop_last=True)
        for epoch in (0, 3):
            loader.set_epoch(epoch)
            sampler.set_epoch(epoch)
            ours = [y for _, y in loader]
            theirs = list(reference)
            assert len(loader) == len(reference) == len(ours)
            assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
    # the ranks' shards of one epoch are disjoint
    seen = []
    for rank in range(world):
        loader = TwoViewTensorLoader(
            _images(n), labels, BatchedMocoV2(8, MEAN, STD), batch, seed=4, num_replicas=world, rank=rank
        )
        seen += torch.cat([y for _, y in loader]).tolist()
    assert len(seen) == len(set(seen))


def test_views_are_a_pure_function_of_seed_epoch_and_rank():
    images, labels = _images(40), torch.arange(40)

    def epoch_views(epoch, seed=1, rank=0):
        loader = TwoViewTensorLoader(
            images, labels, BatchedMocoV2(8, MEAN, STD), 16, seed=seed, num_replicas=2, rank=rank
        )
        loader.set_epoch(epoch)
        return [torch.cat([x1, x2]) for (x1, x2), _ in loader]

    first = epoch_views(2)
    assert all(torch.equal(a, b) for a, b in zip(first, epoch_views(2)))  # a fresh loader (resume)
    assert not torch.equal(first[0], epoch_views(1)[0])
    assert not torch.equal(first[0], epoch_views(2, seed=2)[0])
    assert not torch.equal(first[0], epoch_views(2, rank=1)[0])
    # iterating twice in one epoch gives the same batches; the two views of a batch differ
    loader = TwoViewTensorLoader(images, labels, BatchedMocoV2(8, MEAN, STD), 16, seed=1)
    a, b = list(loader), list(loader)
    assert torch.equal(a[0][0][0], b[0][0][0]) and not torch.equal(a[0][0][0], a[0][0][1])


def test_views_are_the_augmentation_of_the_batch_with_the_epoch_generator():
    images, labels = _images(24), torch.arange(24)
    augment = BatchedMocoV2(8, MEAN, STD)
    loader = TwoViewTensorLoader(images, labels, augment, 12, seed=3)
    loader.set_epoch(5)
    (x1, x2), y = next(iter(loader))
    generator = torch.Generator().manual_seed(view_seed(3, 5, 0))
    assert torch.equal(x1, augment(images[y], generator)) and torch.equal(x2, augment(images[y], generator))
    assert x1.shape == (12, 3, 8, 8) and x1.dtype == torch.float32 and y.dtype == torch.long
    # loader.dataset reads like a DataLoader's: len and labels without augmenting
    assert len(loader.dataset) == 24 and dataset_labels(loader.dataset).tolist() == list(range(24))


def test_digits_views_through_the_same_loader():
    images = torch.rand(30, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    loader = TwoViewTensorLoader(images, torch.zeros(30), DigitsTwoViews(), 10)
    (x1, x2), _ = next(iter(loader))
    assert x1.shape == (10, 1, 8, 8) and not torch.equal(x1, x2)


def test_bad_arguments_are_clear_errors():
    augment = BatchedMocoV2(8, MEAN, STD)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        TwoViewTensorLoader(_images(4)[0], torch.arange(4), augment, 2)
    with pytest.raises(ValueError, match="labels"):
        TwoViewTensorLoader(_images(4), torch.arange(5), augment, 2)
    with pytest.raises(ValueError, match="batch_size"):
        TwoViewTensorLoader(_images(4), torch.arange(4), augment, 0)
    with pytest.raises(ValueError, match="rank"):
        TwoViewTensorLoader(_images(4), torch.arange(4), augment, 2, num_replicas=2, rank=2)


def _tree(root, n_per_class=4, size=8):
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / "train" / c).mkdir(parents=True)
        for i in range(n_per_class):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
                root / "train" / c / f"{i}.png"
            )
    return root


def test_in_memory_images_of_a_cached_folder_and_its_subset(tmp_path):
    ds = build_dataset("imagefolder", "train", root=_tree(tmp_path), cache=True)
    assert isinstance(ds, CachedImageFolder)
    images, labels = in_memory_images(ds)
    assert images.shape == (8, 3, 8, 8) and images.dtype == torch.uint8
    for i in (0, 5):
        pixels = np.array(Image.open(ds.samples[i][0]).convert("RGB"))
        assert torch.equal(images[i], torch.from_numpy(pixels).permute(2, 0, 1))
    assert labels.tolist() == [0] * 4 + [1] * 4
    sub_images, sub_labels = in_memory_images(Subset(ds, [6, 1]))
    assert torch.equal(sub_images, images[[6, 1]]) and sub_labels.tolist() == [1, 0]
    with pytest.raises(TypeError, match="cache=True"):
        in_memory_images(build_dataset("imagefolder", "train", root=tmp_path))


def test_in_memory_images_of_torchvision_cifar_and_stl_layouts():
    cifar = tvd.CIFAR10.__new__(tvd.CIFAR10)  # the attributes torchvision fills from its files
    cifar.data = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    cifar.targets = [3, 7]
    images, labels = in_memory_images(cifar)
    assert torch.equal(images, torch.from_numpy(cifar.data).permute(0, 3, 1, 2)) and labels.tolist() == [3, 7]
    stl = tvd.STL10.__new__(tvd.STL10)
    stl.data = np.arange(2 * 3 * 4 * 4, dtype=np.uint8).reshape(2, 3, 4, 4)
    stl.labels = np.array([-1, 2])
    images, labels = in_memory_images(stl)
    assert torch.equal(images, torch.from_numpy(stl.data)) and labels.tolist() == [-1, 2]


def test_in_memory_images_of_digits():
    ds = build_dataset("digits", "train")
    images, labels = in_memory_images(ds)
    assert images.shape == (len(ds), 1, 8, 8) and torch.equal(labels, ds.targets)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_batches_live_on_cuda():
    loader = TwoViewTensorLoader(_images(32), torch.arange(32), BatchedMocoV2(8, MEAN, STD), 8, device="cuda")
    (x1, x2), y = next(iter(loader))
    assert x1.device.type == x2.device.type == y.device.type == "cuda"
