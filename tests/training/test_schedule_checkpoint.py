"""The learning-rate schedule, atomic checkpoints and RNG capture."""

import os
import pickle
import random

import numpy as np
import pytest
import torch

from pyro_vje.training import lr_at, scaled_lr
from pyro_vje.training.checkpoint import atomic_save, load_checkpoint, rng_state, set_rng_state


def test_warmup_then_cosine_schedule():
    assert lr_at(0, 100, 10, 1.0) == pytest.approx(0.1)
    assert lr_at(9, 100, 10, 1.0) == pytest.approx(1.0)
    assert lr_at(10, 100, 10, 1.0) == pytest.approx(1.0)
    assert lr_at(55, 100, 10, 1.0) == pytest.approx(0.5)
    assert lr_at(99, 100, 10, 1.0) == pytest.approx(0.5 * (1 + np.cos(np.pi * 89 / 90)))
    assert lr_at(5, 100, 0, 2.0) == pytest.approx(1.0 + np.cos(np.pi * 5 / 100))
    assert scaled_lr(0.05, 512) == pytest.approx(0.1)


def test_atomic_save_round_trip_weights_only(tmp_path):
    state = {"w": torch.arange(3.0), "epoch": 2, "nested": {"x": [1, 2.5, None, "s"]}}
    atomic_save(state, tmp_path / "c.pt")
    loaded = torch.load(tmp_path / "c.pt", weights_only=True)
    assert torch.equal(loaded["w"], state["w"]) and loaded["nested"] == state["nested"]
    assert os.listdir(tmp_path) == ["c.pt"]  # no temporary left behind


def test_failed_save_keeps_the_old_file(tmp_path):
    atomic_save({"epoch": 1}, tmp_path / "last.pt")
    with pytest.raises((AttributeError, TypeError, RuntimeError, pickle.PicklingError)):
        atomic_save({"bad": lambda: None}, tmp_path / "last.pt")  # lambdas do not pickle
    assert load_checkpoint(tmp_path / "last.pt") == {"epoch": 1}
    assert os.listdir(tmp_path) == ["last.pt"]


def test_broken_or_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.pt"):
        load_checkpoint(tmp_path / "nothing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="could not be read"):
        load_checkpoint(tmp_path / "junk.pt")


def test_rng_state_round_trip_through_a_weights_only_checkpoint(tmp_path):
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    np.random.normal()  # leaves a cached Gaussian in numpy's legacy state
    atomic_save({"rng": rng_state()}, tmp_path / "r.pt")
    expected = (torch.rand(5), np.random.normal(size=5), [random.random() for _ in range(5)])
    torch.manual_seed(99)
    np.random.seed(99)
    random.seed(99)
    set_rng_state(load_checkpoint(tmp_path / "r.pt")["rng"])
    again = (torch.rand(5), np.random.normal(size=5), [random.random() for _ in range(5)])
    assert torch.equal(expected[0], again[0])
    np.testing.assert_array_equal(expected[1], again[1])
    assert expected[2] == again[2]
