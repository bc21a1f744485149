"""build_run_data: which backend makes the views (augment_backend), and that either keeps the
order of DistributedSampler and exact resume."""

import numpy as np
import pytest
import torch
from PIL import Image

from pyro_vje.data.tensor_loader import TwoViewTensorLoader
from pyro_vje.training import TrainConfig, train
from pyro_vje.training.distributed import DistInfo
from pyro_vje.training.loaders import build_run_data
from pyro_vje.training.logger import read_metrics
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
