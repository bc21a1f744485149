"""pyro-vje one-class / sweep / score end to end on digits (tiny settings), and their pieces."""

import json
import os

import numpy as np
import pytest

from pyro_vje.cli import main
from pyro_vje.data import dataset_labels
from pyro_vje.protocols.one_class import markdown_table, summarize
from pyro_vje.protocols.sweep import pearson
from pyro_vje.training import TrainConfig
from pyro_vje.training.distributed import DistInfo
from pyro_vje.training.loaders import build_run_data
from tests.evaluation.test_metrics import hand_auroc

TINY = ["--epochs", "1", "--max-steps-per-epoch", "2", "--no-progress", "--no-tensorboard", "--hidden", "16"]


def test_one_class_training_sees_only_the_normal_class():
    data = build_run_data(TrainConfig(normal_class=3), DistInfo(), per_rank_batch=16, pin_memory=False)
    assert set(dataset_labels(data.train_loader.dataset).tolist()) == {3}
    assert set(dataset_labels(data.bank_loader.dataset).tolist()) == {3}
    assert len(set(dataset_labels(data.test_loader.dataset).tolist())) == 10  # scored on every class


@pytest.fixture(scope="module")
def one_class_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("oc") / "oc"
    assert (
        main(
            [
                "one-class",
                "--classes",
                "0,1",
                "--out",
                str(out),
                "--posterior-samples",
                "2",
                "--tta",
                "1",
                *TINY,
            ]
        )
        == 0
    )
    return out


def test_one_class_results_layout_and_values(one_class_dir):
    results = json.loads((one_class_dir / "results.json").read_text())
    for name in (
        "joint",
        "directional",
        "radial",
        "variance",
        "entropy",
        "joint_samples2",
        "joint_tta1",
        "knn_raw_pixels",
        "knn_z",
    ):
        r = results[name]
        assert set(r["per_class"]) == {"0", "1"}
        assert r["mean"] == pytest.approx(np.mean(list(r["per_class"].values())))
        assert r["std"] == pytest.approx(np.std(list(r["per_class"].values())))
    with np.load(one_class_dir / "class-1" / "scores.npz") as data:
        inlier = data["labels"] == 1
        s = data["score_joint"]
        assert results["joint"]["per_class"]["1"] == pytest.approx(hand_auroc(s[inlier], s[~inlier]))
        assert data["variances"].shape == (len(s), 128)
    assert results["knn_raw_pixels"]["mean"] > 0.9  # digits are easy for raw pixels: the bar to beat
    assert "| joint |" in (one_class_dir / "results.md").read_text()
    for name in ("per_class_auroc.png", "roc_joint.png", "histograms_0.png", "variance_1.png"):
        assert (one_class_dir / "figures" / name).stat().st_size > 1000


def test_one_class_rerun_resumes_without_retraining(one_class_dir, capsys):
    npz = one_class_dir / "class-0" / "scores.npz"
    before = os.stat(npz).st_mtime_ns
    assert main(["one-class", "--classes", "0", "--out", str(one_class_dir), *TINY]) == 0
    assert os.stat(npz).st_mtime_ns == before
    assert set(json.loads((one_class_dir / "results.json").read_text())["joint"]["per_class"]) == {"0"}


def _sweep(out, betas: str, classes: str) -> dict:
    """``pyro-vje sweep`` at the tiny budget over ``betas`` x nu = 0.5; its sweep.json."""
    args = ["sweep", "--betas", betas, "--dfs", "0.5", "--classes", classes, "--out", str(out), *TINY]
    assert main(args) == 0
    return json.loads((out / "sweep.json").read_text())


def test_sweep_grid(tmp_path):
    out = tmp_path / "sweep"
    summary = _sweep(out, "0,1", "0,1")
    assert np.array(summary["mean_auroc"]["joint"]).shape == (2, 1)
    assert np.array(summary["mean_entropy"]).shape == (2, 1)
    assert (out / "figures" / "heatmap_joint.png").is_file() and (
        out / "beta0_df0.5" / "results.json"
    ).is_file()


def test_sweep_of_one_cell_writes_its_summary_without_the_correlation_figures(tmp_path):
    out = tmp_path / "sweep"
    summary = _sweep(out, "1", "0")
    assert np.array(summary["mean_auroc"]["joint"]).shape == (1, 1)
    assert summary["correlation_with_entropy"]["joint"] == "nan"  # one cell: no correlation (JSON-safe nan)
    assert (out / "figures" / "heatmap_joint.png").is_file()
    assert not (out / "figures" / "auroc_vs_entropy.png").exists()


def test_score_cli_with_synthetic_shifts(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), *TINY]) == 0
    out = tmp_path / "ood"
    args = [
        "score",
        str(run),
        "--ood",
        "gaussian_noise",
        "--ood",
        "invert",
        "--limit",
        "100",
        "--out",
        str(out),
        "--no-progress",
        "--posterior-samples",
        "2",
        "--tta",
        "1",
    ]
    assert main(args) == 0
    results = json.loads((out / "ood.json").read_text())
    assert set(results) == {"gaussian_noise", "invert"}
    for metrics in results["invert"].values():
        assert set(metrics) == {"auroc", "aupr_out", "aupr_in", "fpr95"}
        assert all(0 <= v <= 1 for v in metrics.values())
    assert "joint_tta1" in results["invert"] and (out / "figures" / "roc_invert.png").is_file()
    for name in (
        "mixture",
        "aggregate",
        "knn_raw_pixels",
        "knn_z",
        "knn_mu",
        "mahalanobis_z",
        "inverse_norm_z",
    ):
        assert name in results["invert"]
    printed = capsys.readouterr().out
    assert "AUROC - raw-pixel kNN" in printed and "| knn_raw_pixels |" in printed
    assert main(["score", str(run), "--ood", "nonsense", "--no-progress"]) == 2
    assert "nonsense" in capsys.readouterr().err


def test_summary_table_and_pearson():
    results = summarize({"a": {"joint": 0.8, "variance": 0.6}, "b": {"joint": 0.6, "variance": 0.7}})
    assert results["joint"]["mean"] == pytest.approx(0.7) and results["joint"]["std"] == pytest.approx(0.1)
    table = markdown_table(results)
    assert "| joint | 0.800 | 0.600 | 0.700 ± 0.100 |" in table
    assert pearson([1, 2, 3, np.nan], [2, 4, 6.5, 1]) == pytest.approx(
        np.corrcoef([1, 2, 3], [2, 4, 6.5])[0, 1]
    )
    assert np.isnan(pearson([1, 1, 1], [1, 2, 3]))


# ------------------------------------------------------------------ issue 10
def test_one_class_rerun_with_another_setting_is_refused_naming_it(one_class_dir, capsys):
    npz = one_class_dir / "class-0" / "scores.npz"
    before = os.stat(npz).st_mtime_ns
    args = ["one-class", "--classes", "0", "--out", str(one_class_dir), *TINY]
    assert main([*args, "--epochs", "2"]) == 2
    err = capsys.readouterr().err
    assert "class-0" in err and "epochs: run 1 vs now 2" in err and len(err.strip().splitlines()) == 1
    assert os.stat(npz).st_mtime_ns == before


def test_sweep_heatmap_title_names_classes_and_epochs(tmp_path, monkeypatch):
    from pyro_vje.protocols import plots

    titles = []
    real = plots.plot_sweep_heatmap

    def spy(*args, **kwargs):
        titles.append(kwargs["title"])
        return real(*args, **kwargs)

    monkeypatch.setattr(plots, "plot_sweep_heatmap", spy)
    out = tmp_path / "sweep"
    assert main(["sweep", "--betas", "0,1", "--dfs", "0.5", "--classes", "0", "--out", str(out), *TINY]) == 0
    assert titles and all(t.endswith("classes 0, 1 epoch") for t in titles), titles


def test_table_prints_the_raw_pixel_baseline_next_to_each_score():
    results = summarize(
        {
            "a": {"mixture": 0.9, "joint": 0.5, "knn_raw_pixels": 0.8},
            "b": {"mixture": 0.7, "joint": 0.4, "knn_raw_pixels": 0.6},
            "c": {"mixture": 0.65, "joint": 0.9, "knn_raw_pixels": 0.7},
        }
    )
    table = markdown_table(results, reported="mixture")
    # mixture beats the baseline on a and b (0.9 > 0.8, 0.7 > 0.6), not c; means 0.75 vs 0.7
    assert "| **mixture** (reported) | 0.900 | 0.700 | 0.650 | 0.750 ± 0.108 | 2/3, +0.050 |" in table
    assert "| joint | 0.500 | 0.400 | 0.900 | 0.600 ± 0.216 | 1/3, -0.100 |" in table
    assert "vs raw-pixel kNN" not in markdown_table(summarize({"a": {"joint": 0.5}}))


def test_one_class_scores_after_chosen_epochs(tmp_path):
    out = tmp_path / "oc"
    tiny = [a for a in TINY if a not in ("--epochs", "1")]
    args = ["one-class", "--classes", "2", "--epochs", "2", "--score-epochs", "1,2", "--out", str(out), *tiny]
    assert main(args) == 0
    by_epoch = json.loads((out / "results_epochs.json").read_text())
    final = json.loads((out / "results.json").read_text())
    assert set(by_epoch) == {"1", "2"}
    for name in ("mixture", "aggregate", "joint", "knn_raw_pixels"):
        assert by_epoch["2"][name]["per_class"]["2"] == pytest.approx(final[name]["per_class"]["2"])
    with (
        np.load(out / "class-2" / "scores-epoch1.npz") as one,
        np.load(out / "class-2" / "scores.npz") as two,
    ):
        assert not np.allclose(one["score_joint"], two["score_joint"])  # a different model
        np.testing.assert_array_equal(one["score_knn_raw_pixels"], two["score_knn_raw_pixels"])
    assert "after epoch 1" in (out / "results_epochs.md").read_text()
    assert (
        main(["one-class", "--classes", "2", "--score-epochs", "5", "--out", str(tmp_path / "x"), *TINY]) == 2
    )


def test_rescoring_a_finished_run_reproduces_its_aurocs(one_class_dir, tmp_path, capsys):
    """benchmarks/rescore_one_class.py reloads last.pt and the class's loaders: the scores the
    run wrote come back (hand AUROC of scores.npz), and the scores added since are there too."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "rescore_one_class.py"
    spec = importlib.util.spec_from_file_location("rescore_one_class", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "r.json"
    module.main([str(one_class_dir), "--select", "0", "--json", str(out)])
    saved = json.loads(out.read_text())["per_class"]
    for c in ("0", "1"):
        with np.load(one_class_dir / f"class-{c}" / "scores.npz") as data:
            inlier = data["labels"] == int(c)
            for name in ("joint", "mixture", "knn_raw_pixels", "knn_z"):
                s = data[f"score_{name}"]
                assert saved[c][name] == pytest.approx(hand_auroc(s[inlier], s[~inlier]), abs=1e-6)
        assert 0 <= saved[c]["aggregate_gaussian"] <= 1
    text = capsys.readouterr().out
    assert "## selection classes 0" in text and "## reported classes (the rest)" in text


# ------------------------------------------------------------------ issue 26
def test_score_checks_every_ood_name_before_loading_the_model(tmp_path, monkeypatch):
    import pyro_vje.protocols.ood_detection as protocol

    def load_run(*args, **kwargs):
        raise AssertionError("the model was loaded before the OOD names were checked")

    monkeypatch.setattr(protocol, "load_run", load_run)
    with pytest.raises(ValueError, match="unknown OOD data set 'nosuchset'"):
        protocol.run_ood(tmp_path, ["gaussian_noise", "nosuchset"])


def test_score_reading_names_the_score_to_trust_and_its_strongest_baseline():
    from pyro_vje.protocols.ood_detection import reading

    def m(auroc):
        return {"auroc": auroc, "aupr_out": 0.5, "aupr_in": 0.5, "fpr95": 0.5}

    results = {
        "invert": {"residual": m(0.91), "joint": m(0.7), "knn_raw_pixels": m(0.75), "knn_z": m(0.8)},
        "blur": {"residual": m(0.51), "joint": m(0.6), "knn_raw_pixels": m(0.62), "mahalanobis_z": m(0.4)},
    }
    line = reading(results)
    assert line.startswith("reading: ") and "\n" not in line
    assert "read residual" in line and "knn_raw_pixels" in line
    # the strongest baseline per set: knn_z on invert, raw pixels on blur (joint is not a baseline)
    assert "invert: residual 0.910 vs strongest baseline knn_z 0.800 (beats it)" in line
    assert "blur: residual 0.510 vs strongest baseline knn_raw_pixels 0.620 (does not)" in line
    # a method without a likelihood is read by kNN distance on its z
    line = reading({"invert": {"knn_z": m(0.7), "mahalanobis_z": m(0.9), "knn_raw_pixels": m(0.6)}})
    assert "invert: knn_z 0.700 vs strongest baseline mahalanobis_z 0.900 (does not)" in line


def test_table_prints_the_strongest_baseline_next_to_each_score():
    from pyro_vje.protocols.one_class import reading as oc_reading

    results = summarize(
        {
            "a": {"residual": 0.9, "knn_raw_pixels": 0.6, "knn_z": 0.8, "mahalanobis_z": 0.7},
            "b": {"residual": 0.6, "knn_raw_pixels": 0.6, "knn_z": 0.8, "mahalanobis_z": 0.9},
        }
    )
    table = markdown_table(results)  # residual reported; strongest baseline: knn_z (0.8, first of a tie)
    assert "vs strongest baseline knn_z" in table
    assert "| **residual** (reported) | 0.900 | 0.600 | 0.750 ± 0.150 | 1/2, +0.150 | 1/2, -0.050 |" in table
    assert "knn_z (0.800): does not beat it" in oc_reading(results)


def test_one_class_and_score_for_a_method_without_a_likelihood(tmp_path, capsys):
    """SimSiam one-class on digits: the preset's VJE settings are left out, the scores are the
    feature-space ones (knn_z reported), and VJE-only options are refused naming the method."""
    out = tmp_path / "oc"
    args = ["one-class", "--method", "simsiam", "--classes", "0", "--out", str(out)]
    assert main([*args, *[a for a in TINY if a not in ("--hidden", "16")]]) == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results) == {"knn_raw_pixels", "knn_z", "mahalanobis_z", "inverse_norm_z"}
    printed = capsys.readouterr().out
    assert "**knn_z** (reported)" in printed and "reading: the reported score knn_z" in printed
    assert main([*args[:-1], str(tmp_path / "x"), "--tta", "1", *TINY[:-2]]) == 2
    assert "method 'simsiam' has none" in capsys.readouterr().err
    # pyro-vje score on the class's run: feature-space baselines only, and --tta refused
    run = out / "class-0"
    ood = ["score", str(run), "--ood", "invert", "--limit", "60", "--no-progress"]
    assert main([*ood, "--out", str(tmp_path / "ood")]) == 0
    scores = json.loads((tmp_path / "ood" / "ood.json").read_text())["invert"]
    assert set(scores) == {"knn_raw_pixels", "knn_z", "mahalanobis_z", "inverse_norm_z"}
    assert main([*ood, "--tta", "1"]) == 2
    assert "has none" in capsys.readouterr().err


def test_a_fashion_mnist_run_scores_mnist_as_ood(tmp_path, capsys):
    """--ood mnist reads torchvision's MNIST files (IDX files written here) for a Fashion-MNIST run."""
    from tests.data.test_mnist_family import SHARED_FASHION, write_idx

    if not (SHARED_FASHION / "FashionMNIST/raw").is_dir():
        pytest.skip(f"shared Fashion-MNIST folder not found at {SHARED_FASHION}")
    rng = np.random.default_rng(0)
    images = {s: rng.integers(0, 256, (30, 28, 28), dtype=np.uint8) for s in ("train", "test")}
    write_idx(tmp_path / "ood", "MNIST", images, {s: np.arange(30) % 10 for s in images})
    run = tmp_path / "run"
    data = ["--dataset", "fashion-mnist", "--data-dir", str(SHARED_FASHION), "--subset", "256"]
    assert main(["train", *data, "--eval-subset", "100", "--out", str(run), *TINY]) == 0
    out = tmp_path / "ood-out"
    args = ["score", str(run), "--ood", "mnist", "--ood-root", str(tmp_path / "ood"), "--limit", "30"]
    assert main([*args, "--bank-size", "100", "--out", str(out), "--no-progress"]) == 0
    scores = json.loads((out / "ood.json").read_text())["mnist"]
    assert {"residual", "joint", "knn_raw_pixels", "knn_z", "mahalanobis_z", "inverse_norm_z"} <= set(scores)
    assert "mnist: residual" in capsys.readouterr().out
