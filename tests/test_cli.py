"""The README's main job (pyro-vje train on digits), shortened to two epochs."""

import json
import subprocess
import sys

from pyro_vje.cli import main
from pyro_vje.train import lr_at


def test_train_on_digits_end_to_end(tmp_path, capsys):
    out = tmp_path / "results.json"
    assert main(["train", "--epochs", "2", "--no-progress", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    for label in ("raw pixels", "random-init encoder z", "VJE z", "VJE mu"):
        assert label in printed
    results = json.loads(out.read_text())
    for key in ("knn_raw_pixels", "knn_z_random_init", "knn_z", "knn_mu"):
        assert 0.0 <= results[key] <= 1.0
    assert results["knn_raw_pixels"] > 0.9  # weighted kNN on raw digits pixels is strong
    assert results["var_mean"] > 0 and results["config"]["epochs"] == 2


def test_bad_option_is_a_clear_error(capsys):
    assert main(["train", "--epochs", "1", "--device", "cuda:7", "--no-progress"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err


def test_module_entry_point_help():
    res = subprocess.run(
        [sys.executable, "-m", "pyro_vje", "train", "--help"], capture_output=True, text=True
    )
    assert res.returncode == 0 and "digits" in res.stdout


def test_warmup_then_cosine_schedule():
    assert lr_at(0, 100, 10, 1.0) == 0.1
    assert lr_at(9, 100, 10, 1.0) == 1.0
    assert lr_at(10, 100, 10, 1.0) == 1.0
    assert abs(lr_at(55, 100, 10, 1.0) - 0.5) < 1e-12
    assert lr_at(100, 100, 10, 1.0) < 1e-12
