"""The trainer on digits: run directory, exact resume, non-finite losses, run-dir safety."""

import dataclasses
import json
import math
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

from pyro_vje.runs import read_metrics
from pyro_vje.training import NonFiniteLossError, TrainConfig, config_from_dict, load_config_file, train


def tiny(tmp_path, **kw) -> TrainConfig:
    base = dict(
        epochs=3,
        batch_size=32,
        max_steps_per_epoch=4,
        eval_every=1,
        progress=False,
        figures=False,
        tensorboard=False,
        device="cpu",
        out=str(tmp_path / "run"),
        hidden=16,
    )
    base.update(kw)
    return TrainConfig(**base)


class Interrupt(Exception):
    pass


def stop_after(epoch):
    def callback(trainer, row):
        if trainer.epoch == epoch:
            raise Interrupt

    return callback


def test_run_directory_contents(tmp_path):
    cfg = tiny(tmp_path, figures=True, tensorboard=True, epochs=2)
    results = train(cfg)
    run = tmp_path / "run"
    for name in (
        "config.json",
        "metrics.csv",
        "metrics.jsonl",
        "last.pt",
        "best.pt",
        "backbone.pt",
        "results.json",
        "train.log",
        "figures/training_curves.png",
    ):
        assert (run / name).is_file(), name
    assert list((run / "tb").glob("events.out.tfevents.*"))
    assert json.loads((run / "config.json").read_text())["epochs"] == 2
    rows = read_metrics(run / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2]
    for key in (
        "loss",
        "dir",
        "rad",
        "kl",
        "lr",
        "knn_z",
        "knn_mu",
        "var_mean",
        "var_cv",
        "z_rank",
        "mu_rank",
        "z_norm_std",
        "epoch_seconds",
    ):
        assert key in rows[-1], key
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "knn_mu" in header and len((run / "metrics.csv").read_text().splitlines()) == 3
    # the logged terms add up to the loss: loss = dir + rad + beta * kl, up to Monte-Carlo noise
    last = rows[-1]
    assert abs(last["dir"] + last["rad"] + last["kl"] - last["loss"]) < 0.2 * abs(last["loss"]) + 5
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["epoch"] == 2 and state["step"] == 8
    backbone = torch.load(run / "backbone.pt", weights_only=True)
    assert set(backbone["encoder"]) == {
        k[len("encoder.") :] for k in state["model"] if k.startswith("encoder.")
    }
    for key in ("knn_raw_pixels", "knn_z_random_init", "knn_z", "knn_mu"):
        assert 0 <= results[key] <= 1
    assert results["knn_raw_pixels"] > 0.9


def test_resume_reproduces_the_uninterrupted_run_exactly(tmp_path):
    full = train(tiny(tmp_path / "a"))
    cfg = tiny(tmp_path / "b")
    with pytest.raises(Interrupt):
        train(cfg, on_epoch_end=stop_after(1))
    assert torch.load(tmp_path / "b" / "run" / "last.pt", weights_only=True)["epoch"] == 1
    resumed = train(cfg, resume=True)
    rows_a = read_metrics(tmp_path / "a" / "run" / "metrics.jsonl")
    rows_b = read_metrics(tmp_path / "b" / "run" / "metrics.jsonl")
    assert [r["epoch"] for r in rows_b] == [1, 2, 3]
    for ra, rb in zip(rows_a, rows_b):
        for key in ("loss", "dir", "rad", "kl", "knn_z", "knn_mu", "var_mean"):
            assert ra[key] == rb[key], (ra["epoch"], key)
    assert full["knn_z"] == resumed["knn_z"]
    sa = torch.load(tmp_path / "a" / "run" / "last.pt", weights_only=True)["model"]
    sb = torch.load(tmp_path / "b" / "run" / "last.pt", weights_only=True)["model"]
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def test_resume_drops_rows_written_after_the_checkpoint(tmp_path):
    cfg = tiny(tmp_path, epochs=2)
    with pytest.raises(Interrupt):
        train(cfg, on_epoch_end=stop_after(1))
    run = tmp_path / "run"
    with (run / "metrics.jsonl").open("a") as f:  # as if the process died between log and checkpoint
        f.write(json.dumps({"epoch": 2, "step": 8, "loss": 123.0}) + "\n")
    train(cfg, resume=True)
    rows = read_metrics(run / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2] and rows[1]["loss"] != 123.0


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    def poison(trainer, row):
        with torch.no_grad():
            next(trainer.method.inference_net.parameters()).fill_(float("nan"))

    cfg = tiny(tmp_path)
    with pytest.raises(NonFiniteLossError, match="non-finite.*last good checkpoint"):
        train(cfg, on_epoch_end=poison)
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_run_directory_is_never_overwritten_and_resume_checks_the_config(tmp_path):
    cfg = tiny(tmp_path, epochs=1)
    train(cfg)
    with pytest.raises(FileExistsError, match="--resume"):
        train(cfg)
    with pytest.raises(ValueError, match="different config.*lr"):
        train(dataclasses.replace(cfg, lr=0.5), resume=True)
    with pytest.raises(FileNotFoundError, match="last.pt"):
        train(tiny(tmp_path / "other"), resume=True)


def test_infinite_df_and_zero_beta_train(tmp_path):
    results = train(tiny(tmp_path, epochs=1, df=math.inf, beta=0.0))
    assert math.isfinite(results["loss"])


def test_batch_larger_than_the_data_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="fewer than one global batch"):
        train(tiny(tmp_path, subset=20, batch_size=32))


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


# tests/fixtures/make_resume_fixture.py wrote each at its commit: 3 epochs, stopped after 2;
# a1d9cf2 is main before issue 11's redesign of training/, 8b441cf main before issue 22's
@pytest.mark.parametrize("commit", ["a1d9cf2", "8b441cf"])
def test_a_run_written_by_the_code_before_the_redesign_still_resumes(tmp_path, commit):
    with tarfile.open(FIXTURES / f"run_{commit}.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    run = tmp_path / "run"
    expected = json.loads((run / "expected_epoch3.json").read_text())
    recorded = json.loads((run / "config.json").read_text())  # with the derived peak_lr since it existed
    saved = load_config_file(run / "config.json")
    cfg = config_from_dict({**saved, "out": str(run)})
    results = train(cfg, resume=True)
    state = torch.load(run / "last.pt", weights_only=True)
    assert (state["epoch"], state["step"]) == (3, 6)
    rows = read_metrics(run / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2, 3] and rows[-1]["step"] == 6
    assert len((run / "metrics.csv").read_text().splitlines()) == 4
    on_disk = json.loads((run / "results.json").read_text())
    assert on_disk["epochs"] == results["epochs"] == 3
    # the resumed epoch 3 follows the old code's uninterrupted 3-epoch run
    for key in ("loss", "dir", "rad", "kl"):
        assert rows[-1][key] == pytest.approx(expected["row"][key], rel=1e-4, abs=1e-4), key
    assert json.loads((run / "config.json").read_text()) == recorded  # the resume keeps the record


def test_the_trainer_runs_in_module_local_params_mode_whoever_calls_it(tmp_path):
    import pyro

    from pyro_vje.training import Trainer

    seen = []
    assert pyro.settings.get("module_local_params") is False
    trainer = Trainer(tiny(tmp_path, epochs=1, baselines=False))
    trainer.fit(on_epoch_end=lambda t, row: seen.append(pyro.settings.get("module_local_params")))
    assert seen == [True] and pyro.settings.get("module_local_params") is False
    assert not list(pyro.get_param_store().keys())


# ------------------------------------------------------------------ issue 10
def test_resuming_a_finished_run_changes_nothing(tmp_path, caplog):
    cfg = tiny(tmp_path, epochs=2)
    results = train(cfg)
    run = tmp_path / "run"
    files = ("results.json", "metrics.jsonl", "metrics.csv", "last.pt", "best.pt", "backbone.pt")
    before = {name: (run / name).read_bytes() for name in files}
    with caplog.at_level("INFO", logger="pyro_vje"):
        again = train(cfg, resume=True)
    assert {name: (run / name).read_bytes() for name in files} == before
    assert again == json.loads(before["results.json"]) and again["loss"] == results["loss"]
    assert "already finished" in caplog.text


def test_two_trainers_on_one_run_directory_are_refused_and_the_lock_is_released(tmp_path):
    from pyro_vje.training import Trainer

    cfg = tiny(tmp_path, epochs=2)
    with pytest.raises(Interrupt):
        train(cfg, on_epoch_end=stop_after(1))
    run = tmp_path / "run"
    assert not (run / ".lock").exists()  # released on the error
    first = Trainer(cfg, resume=True)
    assert json.loads((run / ".lock").read_text())["pid"] == os.getpid()
    # a second process resuming the same run is refused while the first holds it
    code = (
        "from pyro_vje.training import train, config_from_dict;"
        "from pyro_vje.runs import read_run_config;"
        f"train(config_from_dict(read_run_config({str(run)!r})), resume=True)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "in use by process" in proc.stderr, proc.stderr[-2000:]
    first.fit()
    assert not (run / ".lock").exists()
    assert [r["epoch"] for r in read_metrics(run / "metrics.jsonl")] == [1, 2]


def test_a_run_that_failed_in_its_first_epoch_restarts_without_resume(tmp_path):
    def fail(trainer, row):
        raise Interrupt

    cfg = tiny(tmp_path, epochs=1, baselines=False)
    with pytest.raises(Interrupt):  # in the first epoch, before last.pt: simulate by deleting it
        train(cfg, on_epoch_end=fail)
    run = tmp_path / "run"
    (run / "last.pt").unlink()
    (run / "best.pt").unlink()
    with pytest.raises(FileNotFoundError, match="no checkpoint.*without --resume"):
        train(cfg, resume=True)
    results = train(cfg)  # restarts in place
    assert results["epochs"] == 1
    assert [r["epoch"] for r in read_metrics(run / "metrics.jsonl")] == [1]
    assert (run / "last.pt").is_file()
    # a finished or checkpointed run is still never overwritten, and the error names the way out
    with pytest.raises(FileExistsError, match="--resume"):
        train(cfg)


def test_corrupt_last_checkpoint_on_resume_says_what_to_do(tmp_path):
    cfg = tiny(tmp_path, epochs=2)
    with pytest.raises(Interrupt):
        train(cfg, on_epoch_end=stop_after(1))
    run = tmp_path / "run"
    (run / "last.pt").write_bytes(os.urandom(1000))
    with pytest.raises(ValueError, match=r"corrupt.*--checkpoint best.*another --out"):
        train(cfg, resume=True)


def test_best_checkpoint_has_no_optimizer_and_still_loads(tmp_path):
    from pyro_vje.runs import load_run

    cfg = tiny(tmp_path, epochs=1)
    train(cfg)
    run = tmp_path / "run"
    best = torch.load(run / "best.pt", weights_only=True)
    last = torch.load(run / "last.pt", weights_only=True)
    assert "optimizer" not in best and "optimizer" in last
    assert (run / "best.pt").stat().st_size < 0.75 * (run / "last.pt").stat().st_size
    _, method = load_run(run, "best")
    for key, value in method.state_dict().items():
        assert torch.equal(value, best["model"][key]), key


def test_effective_peak_lr_is_recorded_and_config_json_still_loads(tmp_path):
    from pyro_vje.runs import read_run_config

    cfg = tiny(tmp_path, epochs=1, lr=0.04, batch_size=32)
    results = train(cfg)
    peak = 0.04 * 32 / 256  # the linear scaling rule, written out
    assert results["peak_lr"] == pytest.approx(peak)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["peak_lr"] == pytest.approx(peak) and saved["lr"] == 0.04
    assert "peak_lr" not in read_run_config(tmp_path / "run")  # a derived value, not a setting
    assert "peak_lr" not in load_config_file(tmp_path / "run" / "config.json")
    config_from_dict(read_run_config(tmp_path / "run"))


def test_keyboard_interrupt_names_the_checkpoint_and_the_resume_command(tmp_path):
    from pyro_vje.training import TrainingInterrupted

    def ctrl_c(trainer, row):
        if trainer.epoch == 2:
            raise KeyboardInterrupt

    cfg = tiny(tmp_path)
    with pytest.raises(TrainingInterrupted) as err:
        train(cfg, on_epoch_end=ctrl_c)
    assert isinstance(err.value, KeyboardInterrupt)
    assert err.value.checkpoint == tmp_path / "run" / "last.pt" and err.value.epoch == 2
    assert not (tmp_path / "run" / ".lock").exists()


def test_freeze_encoder_trains_everything_but_the_encoder(tmp_path):
    from pyro_vje.training.trainer import Trainer

    trainer = Trainer(tiny(tmp_path, epochs=1, freeze_encoder=True))
    before = {k: v.clone() for k, v in trainer.method.state_dict().items()}
    trainer.fit()
    after = trainer.method.state_dict()
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    weights = [k for k in before if k.startswith("encoder.") and not k.endswith(buffers)]
    assert weights and all(torch.equal(before[k], after[k]) for k in weights)
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("inference_net."))
    # BatchNorm's running statistics still follow the training batches
    assert any(not torch.equal(before[k], after[k]) for k in before if k.endswith("running_mean"))
    assert json.loads((tmp_path / "run" / "config.json").read_text())["freeze_encoder"] is True
