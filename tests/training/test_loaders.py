"""build_run_data: which backend makes the views (augment_backend), and that either keeps the
order of DistributedSampler and exact resume."""

import numpy as np
import pytest
import torch
from PIL import Image

from pyro_vje.data.tensor_loader import TwoViewTensorLoader
from pyro_vje.runs import read_metrics
from pyro_vje.training import TrainConfig, train
from pyro_vje.training.distributed import DistInfo
from pyro_vje.training.loaders import build_run_data
from tests.training.test_trainer import Interrupt, stop_after, tiny


def _folder(root, n_per_class=6, size=12):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c in ("a", "b"):
            (root / split / c).mkdir(parents=True)
            for i in range(n_per_class):
                pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / c / f"{i}.png")
    return root


def _data(**kw):
    return build_run_data(TrainConfig(**kw).validate(), DistInfo(), per_rank_batch=4, pin_memory=False)


def test_auto_is_batched_for_images_in_memory_and_per_image_otherwise(tmp_path):
    root = _folder(tmp_path)
    cached = _data(dataset="imagefolder", data_dir=str(root), cache=True)
    assert cached.augment_backend == "batched" and isinstance(cached.train_loader, TwoViewTensorLoader)
    (x1, x2), y = next(iter(cached.train_loader))
    assert x1.shape == x2.shape == (4, 3, 32, 32) and x1.dtype == torch.float32  # imagefolder default size
    assert _data(dataset="imagefolder", data_dir=str(root)).augment_backend == "per_image"
    assert _data(dataset="imagefolder", data_dir=str(root), cache=True, augment="none").augment_backend == (
        "per_image"
    )
    assert _data().augment_backend == "per_image"  # digits: the recorded default run's stream
    digits = _data(augment_backend="batched")
    (x1, _), _ = next(iter(digits.train_loader))
    assert digits.augment_backend == "batched" and x1.shape == (4, 1, 8, 8)
    per_image = _data(dataset="imagefolder", data_dir=str(root), cache=True, augment_backend="per_image")
    assert per_image.augment_backend == "per_image"


def test_an_impossible_batched_backend_says_why(tmp_path):
    root = _folder(tmp_path)
    with pytest.raises(ValueError, match="--cache"):
        _data(dataset="imagefolder", data_dir=str(root), augment_backend="batched")
    with pytest.raises(ValueError, match="augment='none'"):
        _data(augment="none", augment_backend="batched")
    with pytest.raises(ValueError, match="augment_backend"):
        TrainConfig(augment_backend="gpu").validate()


@pytest.mark.parametrize("workers", [0, 2])
def test_per_image_order_is_the_distributed_sampler_order(workers):
    data = _data(num_workers=workers, subset=40, augment_backend="per_image")
    data.set_epoch(3, seed=0)
    labels = torch.cat([y for _, y in data.train_loader])
    sampler = torch.utils.data.DistributedSampler(range(40), num_replicas=1, rank=0, seed=0, drop_last=True)
    sampler.set_epoch(3)
    expected = torch.as_tensor(data.train_loader.dataset.targets)[list(sampler)]
    assert torch.equal(labels, expected)


def test_per_image_views_with_workers_do_not_depend_on_the_worker_count():
    batches = {}
    for workers in (1, 2):
        data = _data(num_workers=workers, subset=40, augment_backend="per_image")
        data.set_epoch(2, seed=0)
        batches[workers] = [x1 for (x1, _), _ in data.train_loader]
        assert data.train_loader.persistent_workers
    assert all(torch.equal(a, b) for a, b in zip(batches[1], batches[2]))


@pytest.mark.parametrize("backend,workers", [("batched", 0), ("per_image", 1)])
def test_resume_is_exact_with_batched_views_and_with_persistent_workers(tmp_path, backend, workers):
    kw = {"augment_backend": backend, "num_workers": workers, "baselines": False}
    full = train(tiny(tmp_path / "a", **kw))
    cfg = tiny(tmp_path / "b", **kw)
    with pytest.raises(Interrupt):
        train(cfg, on_epoch_end=stop_after(1))
    resumed = train(cfg, resume=True)
    rows_a = read_metrics(tmp_path / "a" / "run" / "metrics.jsonl")
    rows_b = read_metrics(tmp_path / "b" / "run" / "metrics.jsonl")
    assert [r["epoch"] for r in rows_b] == [1, 2, 3]
    for ra, rb in zip(rows_a, rows_b):
        for key in ("loss", "dir", "rad", "kl", "knn_z"):
            assert ra[key] == rb[key], (ra["epoch"], key)
    assert full["knn_z"] == resumed["knn_z"]


def test_config_json_records_the_backend_auto_chose_and_resume_keeps_it(tmp_path):
    import json

    cfg = tiny(tmp_path, epochs=2, baselines=False)
    with pytest.raises(Interrupt):
        train(cfg, on_epoch_end=stop_after(1))
    # digits under auto: per image (the loader's augment_backend says why)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["augment_backend"] == "per_image"
    train(cfg, resume=True)  # auto on the command line resumes with the recorded backend
    with pytest.raises(ValueError, match="augment_backend"):
        train(tiny(tmp_path, epochs=2, augment_backend="batched"), resume=True)


def test_validation_holds_out_the_same_balanced_images_for_every_seed():
    """validation: N: the evaluation split is N class-balanced training images, the same for every
    seed; training and the kNN bank never see them; the test split is not read."""
    from pyro_vje.data import build_dataset, dataset_labels
    from pyro_vje.data.tensor_loader import in_memory_images

    all_train = build_dataset("digits", "train")
    pixels = in_memory_images(all_train)[0].flatten(1)
    key = {tuple(p.tolist()): i for i, p in enumerate(pixels)}  # digits' 64 pixels identify an image

    def which(ds) -> set[int]:
        return {key[tuple(p.tolist())] for p in in_memory_images(ds)[0].flatten(1)}

    held = []
    for seed in (0, 1):
        data = _data(validation=200, seed=seed, subset=500)
        val = which(data.test_loader.dataset)
        bank = which(data.bank_loader.dataset)
        train = which(data.train_loader.dataset.dataset)  # PerImageViews of the training images
        assert len(val) == 200 and len(bank) == 500 and not val & bank and not val & train
        labels = dataset_labels(all_train)[sorted(val)]
        assert np.bincount(labels).tolist() == [20] * 10
        held.append(val)
    assert held[0] == held[1]
    with pytest.raises(ValueError, match="train_split"):
        TrainConfig(dataset="stl10", data_dir="x", train_split="unlabeled", validation=100).validate()


def test_the_runs_view_settings_replace_the_data_sets_recipe():
    from pyro_vje.data import DATASET_INFO
    from pyro_vje.training.loaders import batched_augment, run_dataset_info

    plain = TrainConfig(dataset="fashion-mnist", data_dir="x").validate()
    assert run_dataset_info(plain) is DATASET_INFO["fashion-mnist"]
    config = TrainConfig(
        dataset="fashion-mnist", data_dir="x", crop_min_scale=0.5, blur=True, color_jitter=0.0
    )
    views = run_dataset_info(config.validate()).views
    assert views.crop_scale == (0.5, 1.0) and views.blur and views.jitter_p == 0.0
    augment = batched_augment(run_dataset_info(config), 28)
    assert augment.crop_scale == (0.5, 1.0) and augment.blur and augment.flip_p == 0.5
    cifar = run_dataset_info(TrainConfig(dataset="cifar10", data_dir="x", color_jitter=0.2).validate()).views
    assert cifar.jitter == (0.2, 0.2, 0.2, 0.1) and cifar.jitter_p == 0.8  # hue keeps MoCo v2's
    with pytest.raises(ValueError, match="own augmentation recipe"):
        run_dataset_info(TrainConfig(crop_min_scale=0.5).validate())  # digits
    with pytest.raises(ValueError, match="crop_min_scale"):
        TrainConfig(crop_min_scale=0.0).validate()
