"""The pyro-vje command line: train (the README's main job, shortened), evaluate, embed."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from pyro_vje.cli import build_parser, main
from pyro_vje.networks import build_encoder

FAST = ["--epochs", "2", "--max-steps-per-epoch", "3", "--no-progress", "--no-tensorboard", "--no-figures"]
FAST += ["--warmup-epochs", "1"]  # a warm-up >= epochs is warned about (issue 26)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", *FAST, "--out", str(out), "--json", str(out.parent / "r.json")]) == 0
    return out


def test_train_on_digits_prints_the_comparison(run_dir, capsys):
    results = json.loads((run_dir.parent / "r.json").read_text())
    for key in ("knn_raw_pixels", "knn_z_random_init", "knn_z", "knn_mu", "var_mean", "z_rank"):
        assert key in results
    assert results["knn_raw_pixels"] > 0.9 and results["epochs"] == 2
    assert json.loads((run_dir / "config.json").read_text())["dataset"] == "digits"


def test_train_resume_continues_with_the_saved_config(run_dir, capsys):
    # the run is complete: resuming trains nothing and prints its stored results
    assert main(["train", "--resume", "--out", str(run_dir), "--no-progress"]) == 0
    printed = capsys.readouterr()
    assert "VJE z" in printed.out
    assert "already finished (2 epochs): nothing to train" in printed.err  # on the terminal (issue 26)
    assert main(["train", "--resume", "--out", str(run_dir), "--lr", "0.3", "--no-progress"]) == 2
    assert "different config" in capsys.readouterr().err


def test_evaluate_and_embed(run_dir, tmp_path, capsys):
    out_json = tmp_path / "eval.json"
    args = ["evaluate", str(run_dir), "--linear-probe", "fast", "--no-progress", "--json", str(out_json)]
    assert main(args) == 0
    res = json.loads(out_json.read_text())
    assert 0.5 < res["linear_z"] <= 1 and 0 <= res["knn_mu"] <= 1
    npz, weights = tmp_path / "f.npz", tmp_path / "b.pt"
    args = ["embed", str(run_dir), "-o", str(npz), "--backbone", str(weights), "--no-progress"]
    assert main(args) == 0
    data = np.load(npz)
    assert data["z"].shape == (450, 128) and data["mu"].shape == data["scale"].shape == (450, 128)
    assert (data["scale"] > 0).all() and data["labels"].shape == (450,)
    assert json.loads(str(data["meta"]))["split"] == "test"
    encoder = build_encoder("small_cnn", in_channels=1)
    encoder.load_state_dict(torch.load(weights, weights_only=True)["encoder"])  # strict


def test_errors_are_clear(tmp_path, capsys):
    assert main(["train", "--epochs", "1", "--device", "cuda:7", "--no-progress"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err
    assert main(["train", "--arch", "vgg", "--no-progress"]) == 2
    assert "unknown arch 'vgg'" in capsys.readouterr().err
    assert main(["train", "--dataset", "cifar10", "--data-dir", str(tmp_path / "nope"), "--no-progress"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["train", "--resume", "--no-progress"]) == 2
    assert "--resume needs --out" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "not a finished pyro-vje run" in capsys.readouterr().err
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "f").write_text("")
    assert main(["train", "--out", str(tmp_path / "x"), "--no-progress"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_every_config_field_has_a_flag_with_help():
    text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    for flag in ("--df", "--beta", "--data-dir", "--subset", "--resume", "--config", "--no-tensorboard"):
        assert flag in text


def test_module_entry_point_help():
    res = subprocess.run(
        [sys.executable, "-m", "pyro_vje", "train", "--help"], capture_output=True, text=True
    )
    assert res.returncode == 0 and "digits" in res.stdout
    res = subprocess.run([sys.executable, "-m", "pyro_vje", "--help"], capture_output=True, text=True)
    assert all(cmd in res.stdout for cmd in ("train", "evaluate", "embed"))


def test_a_registered_methods_options_become_flags_with_their_help():
    from dataclasses import dataclass

    from pyro_vje.methods import METHODS, MethodEntry, MethodOptions, register_method, setting

    @dataclass
    class ToyOptions(MethodOptions):
        temperature: float = setting(0.5, "toy temperature")

    register_method("toy", MethodEntry(ToyOptions, lambda encoder, options: None, "Toy", "a toy"))
    try:
        text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
        assert "toy options:" in text and "--temperature TEMPERATURE" in text
        assert "toy temperature (default: 0.5)" in text
        assert "self-supervised method: vje, simsiam," in " ".join(text.split()) and "toy" in text
    finally:
        METHODS.pop("toy")


# ------------------------------------------------------------------ issue 10
def test_a_data_folder_with_the_embedded_digits_is_an_error(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data-dir", str(tmp_path), "--out", str(out), *FAST]) == 2
    err = capsys.readouterr().err
    assert "--data-dir" in err and "--dataset" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_out_pointing_at_a_file_is_one_error_line(tmp_path, capsys):
    (tmp_path / "f").write_text("")
    assert main(["train", "--out", str(tmp_path / "f"), *FAST]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a directory" in err and len(err.strip().splitlines()) == 1
    assert main(["one-class", "--out", str(tmp_path / "f"), *FAST]) == 2
    assert "is a file, not a directory" in capsys.readouterr().err


def test_ctrl_c_prints_the_resume_command_and_exits_130(tmp_path, monkeypatch, capsys):
    from pyro_vje.training import Trainer

    real = Trainer._train_epoch

    def interrupted_in_epoch_2(self):
        if self.epoch == 1:
            raise KeyboardInterrupt
        return real(self)

    monkeypatch.setattr(Trainer, "_train_epoch", interrupted_in_epoch_2)
    out = tmp_path / "run"
    try:
        code = main(["train", "--out", str(out), *FAST])
    except KeyboardInterrupt:  # would otherwise stop the whole test session
        pytest.fail("main() let KeyboardInterrupt through")
    assert code == 130
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert str(out / "last.pt") in err and f"pyro-vje train --resume --out {out}" in err


def test_ctrl_c_from_a_real_sigint_exits_130_without_a_traceback(tmp_path):
    import os
    import signal
    import time

    out = tmp_path / "run"
    args = ["train", "--out", str(out), "--epochs", "200", "--no-progress", "--no-tensorboard"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "pyro_vje", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a shell without job control starts background jobs with SIGINT ignored, and Python
        # keeps an inherited SIG_IGN: give the child the default, as a terminal would
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.time() + 240
        while not (out / "last.pt").exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:  # never leave a training process behind
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and f"--resume --out {out}" in err
    assert not (out / ".lock").exists() and os.path.isfile(out / "last.pt")


def test_embed_help_says_it_embeds_the_test_split_by_default():
    text = build_parser()._subparsers._group_actions[0].choices["embed"].format_help()
    assert "test split by default" in " ".join(text.split())


def test_compare_refuses_an_unknown_variant_with_a_clear_error(capsys):
    assert main(["compare", "--methods", "simclr", "--epochs", "1"]) == 2
    assert "unknown variant 'simclr'" in capsys.readouterr().err


def test_compare_takes_the_methods_from_methods_not_method(capsys):
    assert main(["compare", "--method", "vje", "--epochs", "1"]) == 2
    assert "--methods" in capsys.readouterr().err


# ------------------------------------------------------------------ issue 26
def test_compare_out_is_the_comparisons_folder(tmp_path, monkeypatch, capsys):
    import pyro_vje.protocols.compare as compare_module

    seen = {}

    def fake_compare(base, variants, out, **kwargs):
        seen["out"], seen["base"] = out, base
        out.mkdir(parents=True)
        for name in ("compare.md", "compare.json"):
            (out / name).write_text("")
        return {"failed": []}

    monkeypatch.setattr(compare_module, "compare", fake_compare)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "elsewhere" / "compare"
    assert main(["compare", "--methods", "vje", "--epochs", "1", "--out", str(out)]) == 0
    assert seen["out"] == out and "out" not in seen["base"] and not (tmp_path / "runs").exists()
    assert seen["base"]["linear_probe"] == "fast"
    args = ["compare", "--methods", "vje", "--out", str(out), "--compare-out", str(tmp_path / "b")]
    assert main(args) == 2
    assert "--out" in capsys.readouterr().err


def test_evaluate_checkpoint_best_without_best_pt_is_refused(run_dir, tmp_path, capsys):
    import shutil

    interrupted = tmp_path / "interrupted"
    shutil.copytree(run_dir, interrupted)
    (interrupted / "best.pt").unlink()
    args = ["evaluate", str(interrupted), "--checkpoint", "best", "--linear-probe", "none", "--no-progress"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no best.pt" in err and "--checkpoint last" in err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/sys and /proc are Linux's")
@pytest.mark.parametrize("out", ["/sys/x/run", "/proc/x/run"])
def test_an_out_that_cannot_be_written_is_one_line_naming_out(out, capsys):
    assert main(["train", "--out", out, *FAST, "--no-baselines"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"--out {out}: cannot write /" in err and "choose another --out" in err


def test_a_bad_flag_value_is_one_line_not_the_usage(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["train", "--epochs", "abc"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--epochs" in err and "'abc'" in err
    assert "pyro-vje train --help" in err


def test_embed_a_subset(run_dir, tmp_path, capsys):
    npz = tmp_path / "f.npz"
    assert main(["embed", str(run_dir), "-o", str(npz), "--subset", "50", "--no-progress"]) == 0
    data = np.load(npz)
    assert data["z"].shape == (50, 128)
    assert np.bincount(data["labels"]).tolist() == [5] * 10  # class-balanced
    assert json.loads(str(data["meta"]))["subset"] == 50


def test_evaluate_explains_each_diagnostic(run_dir, capsys):
    assert main(["evaluate", str(run_dir), "--linear-probe", "none", "--no-progress"]) == 0
    lines = {line.split(":")[0].strip(): line for line in capsys.readouterr().out.splitlines()}
    assert "about 1 healthy, 0 collapsed" in lines["z_norm_std_rel"]
    assert "dimensions in use" in lines["mu_rank"]


def test_a_warm_up_as_long_as_the_run_is_warned_about_and_recorded(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--out", str(out), "--epochs", "2", "--warmup-epochs", "7", "--max-steps-per-epoch", "2"]
    args += ["--no-progress", "--no-tensorboard", "--no-figures", "--no-baselines"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "warmup_epochs 7 >= epochs 2" in err and "--warmup-epochs" in err
    results = json.loads((out / "results.json").read_text())
    assert results["peak_lr"] == pytest.approx(0.01)  # 0.02 x 128 / 256
    assert results["lr_reached"] == pytest.approx(0.01 * 4 / 14)  # 4 of 14 warm-up steps
