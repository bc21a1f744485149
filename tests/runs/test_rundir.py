"""The run directory: atomic writes, checkpoints, RNG capture, config.json and the resume check."""

import json
import os
import pickle
import random
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from pyro_vje.runs import (
    atomic_save,
    atomic_write,
    atomic_write_json,
    atomic_write_text,
    check_run_dir,
    create_run_dir,
    load_checkpoint,
    read_run_config,
)
from pyro_vje.runs.checkpoints import rng_state, set_rng_state
from pyro_vje.training import TrainConfig, config_from_dict


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
    with pytest.raises(ValueError, match="is corrupt"):
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


def test_atomic_write_text_replaces_whole_files_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "r.json"
    atomic_write_text("old\n", path)
    atomic_write_json({"a": 1, "b": [1.5, None]}, path)
    assert json.loads(path.read_text()) == {"a": 1, "b": [1.5, None]}
    assert path.read_text().endswith("\n") and os.listdir(path.parent) == ["r.json"]

    def fails(f):
        f.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, fails)
    assert json.loads(path.read_text())["a"] == 1 and os.listdir(path.parent) == ["r.json"]


FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "run_a1d9cf2.tar.gz"
#: Settings added after the fixture was written, with their defaults (issue 8: VJE's Table 6 ablation).


def test_config_json_keeps_the_flat_layout_of_runs_written_before_the_redesign(tmp_path):
    with tarfile.open(FIXTURE) as tar:
        tar.extractall(tmp_path, filter="data")
    old_text = (tmp_path / "run" / "config.json").read_text()
    saved = read_run_config(tmp_path / "run")
    create_run_dir(tmp_path / "new", config_from_dict(saved))
    new_text = (tmp_path / "new" / "config.json").read_text()
    old, new = json.loads(old_text), json.loads(new_text)
    # settings added since a1d9cf2 appear at their defaults (augment_backend: the resolved
    # backend, recorded so that a resume makes its views as before); the rest is unchanged
    added = [k for k in new if k not in old]
    assert "augment_backend" in added
    defaults = TrainConfig().to_dict()
    assert {k: new[k] for k in added if k != "augment_backend"} == {
        k: defaults[k] for k in added if k != "augment_backend"
    }
    assert [k for k in new if k in old] == list(old)  # same keys in the same order
    assert {k: new[k] for k in old} == old  # and values


def test_check_run_dir_names_the_settings_that_differ_on_resume(tmp_path):
    cfg = TrainConfig(out=str(tmp_path / "run"), hidden=8)
    run_dir, resolved = check_run_dir(cfg, resume=False)
    assert run_dir == tmp_path / "run" and resolved.out == str(run_dir)
    create_run_dir(run_dir, resolved)
    atomic_save({}, run_dir / "last.pt")
    with pytest.raises(FileExistsError, match="--resume"):
        check_run_dir(cfg, resume=False)
    with pytest.raises(ValueError, match="different config.*hidden: run 8 vs now 16"):
        check_run_dir(TrainConfig(out=str(run_dir), hidden=16), resume=True)
    assert check_run_dir(TrainConfig(out=str(run_dir), hidden=8, progress=False), resume=True)[0] == run_dir


# ------------------------------------------------------------------ issue 10
def test_files_of_a_run_get_the_same_permissions_whatever_writes_them(tmp_path):
    # mkstemp creates 0600 files; a run's checkpoints must follow the umask like its logs
    old = os.umask(0o022)
    try:
        atomic_save({"w": torch.zeros(2)}, tmp_path / "last.pt")
        atomic_write_json({"a": 1}, tmp_path / "results.json")
        (tmp_path / "train.log").write_text("x")
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert modes == {"last.pt": 0o644, "results.json": 0o644, "train.log": 0o644}


def test_random_bytes_checkpoint_is_called_corrupt_without_unsafe_advice(tmp_path):
    (tmp_path / "last.pt").write_bytes(os.urandom(4096))
    with pytest.raises(ValueError) as err:
        load_checkpoint(tmp_path / "last.pt")
    assert "corrupt" in str(err.value) and "weights_only" not in str(err.value)
    assert "best" not in str(err.value)  # no best.pt here: nothing to point to
    atomic_save({"model": {}}, tmp_path / "best.pt")
    with pytest.raises(ValueError, match=r"corrupt.*--checkpoint best"):
        load_checkpoint(tmp_path / "last.pt")


def test_out_pointing_at_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "f").write_text("")
    for out in (tmp_path / "f", tmp_path / "f" / "run"):
        for resume in (False, True):
            with pytest.raises(FileExistsError, match="is a file, not a directory"):
                check_run_dir(TrainConfig(out=str(out)), resume=resume)


def test_lock_refuses_a_live_holder_and_takes_over_a_stale_one(tmp_path):
    import socket
    import subprocess
    import sys

    from pyro_vje.runs.lock import RunDirLockedError, lock_run_dir

    lock = lock_run_dir(tmp_path)
    record = json.loads((tmp_path / ".lock").read_text())
    assert record["pid"] == os.getpid() and record["host"] == socket.gethostname()
    lock.release()
    assert not (tmp_path / ".lock").exists()
    # a live other process holds it: refused, naming the pid and the lock file
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / ".lock").write_text(json.dumps({"pid": sleeper.pid, "host": socket.gethostname()}))
        with pytest.raises(RunDirLockedError, match=rf"in use by process {sleeper.pid}.*\.lock"):
            lock_run_dir(tmp_path)
    finally:
        sleeper.kill()
        sleeper.wait()
    # the same pid is now dead: a stale lock, taken over
    lock = lock_run_dir(tmp_path)
    assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()
    lock.release()
    # another host's lock cannot be checked: refused, saying how to remove it
    (tmp_path / ".lock").write_text(json.dumps({"pid": 1, "host": "elsewhere"}))
    with pytest.raises(RunDirLockedError, match="elsewhere.*remove"):
        lock_run_dir(tmp_path)
