"""examples/train_cifar.py: the paper's CIFAR-10 recipe, shrunk to a few images and one step."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CIFAR = ROOT.parent / "shared" / "data" / "cifar10"


def _example():
    spec = importlib.util.spec_from_file_location("train_cifar", ROOT / "examples" / "train_cifar.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_needs_a_data_source(capsys):
    assert _example().main([]) == 2
    assert "--data-dir" in capsys.readouterr().err


@pytest.mark.skipif(not CIFAR.is_dir(), reason=f"CIFAR-10 image folder not found at {CIFAR}")
def test_one_step_of_the_paper_recipe(tmp_path, capsys):
    out = tmp_path / "run"
    args = [
        "--data-dir",
        str(CIFAR),
        "--epochs",
        "1",
        "--subset",
        "64",
        "--eval-subset",
        "50",
        "--batch-size",
        "32",
        "--max-steps-per-epoch",
        "1",
        "--linear-probe",
        "fast",
        "--num-workers",
        "0",
        "--device",
        "cpu",
        "--no-progress",
        "--no-tensorboard",
        "--out",
        str(out),
    ]
    assert _example().main(args) == 0
    printed = capsys.readouterr().out
    assert "VJE z, linear probe" in printed and "VJE mu" in printed
    config = json.loads((out / "config.json").read_text())
    assert (config["arch"], config["dataset"], config["df"], config["beta"]) == (
        "resnet18",
        "cifar10",
        3.0,
        1.0,
    )
    results = json.loads((out / "results.json").read_text())
    assert 0 <= results["linear_z"] <= 1 and 0 <= results["knn_z"] <= 1


@pytest.mark.parametrize(("given", "expected"), [([], "2"), (["--num-workers", "5"], "5")])
def test_workers_default_to_the_cores_available(given, expected, monkeypatch):  # issue 26
    module = _example()
    seen = []
    monkeypatch.setattr(module, "cli_main", lambda argv: seen.append(argv) or 0)
    monkeypatch.setattr(module, "available_cores", lambda: 2)
    assert module.main(["--data-dir", "x", *given]) == 0
    argv = seen[0]
    workers = [argv[i + 1] for i, a in enumerate(argv) if a == "--num-workers"]
    assert workers == [expected]
