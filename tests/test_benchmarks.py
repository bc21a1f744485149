"""The benchmark scripts run (tiny settings); their figures are recorded in docs/results.md."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CIFAR = ROOT.parent / "shared" / "data" / "cifar10"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("arch", ["small_cnn", "resnet18"])
def test_step_time_benchmark_runs(tmp_path, arch):
    out = tmp_path / "step.json"
    args = ["--batch", "4", "--steps", "2", "--warmup", "1", "--arch", arch, "--json", str(out)]
    if arch == "resnet18":
        args += ["--image-size", "16", "--module-local-params"]
    result = _load("step_time").main(args)
    saved = json.loads(out.read_text())
    assert saved["ratio"] == result["ratio"] > 0 and saved["encoder"] == arch and saved["commit"]


@pytest.mark.skipif(not CIFAR.is_dir(), reason=f"CIFAR-10 image folder not found at {CIFAR}")
def test_cifar_small_benchmark_runs(tmp_path):
    out = tmp_path / "c.json"
    args = [
        "--subset",
        "100",
        "--eval-subset",
        "50",
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--eval-every",
        "1",
        "--num-workers",
        "0",
        "--out",
        str(tmp_path / "run"),
        "--json",
        str(out),
        "--no-progress",
    ]
    result = _load("cifar_small").main(args)
    saved = json.loads(out.read_text())
    assert saved["curve"][0]["epoch"] == 1 and 0 <= saved["knn_z_random_init"] <= 1
    assert result["machine"] == saved["machine"]


@pytest.mark.slow
@pytest.mark.skipif(not CIFAR.is_dir(), reason=f"CIFAR-10 image folder not found at {CIFAR}")
def test_cifar_small_learns_beyond_the_random_encoder(tmp_path):
    """Slow (~10 min on 2 cores; run with -m slow): 20 epochs on 8,000 images beat the random-init CNN."""
    args = ["--epochs", "20", "--eval-every", "20", "--out", str(tmp_path / "run"), "--no-progress"]
    result = _load("cifar_small").main(args)
    assert result["curve"][-1]["knn_z"] > result["knn_z_random_init"] + 0.03


def test_throughput_benchmark_runs(tmp_path):
    out = tmp_path / "throughput.json"
    args = ["--subset", "24", "--batch", "8", "--image-size", "16", "--archs", "small_cnn"]
    args += "--num-workers 0 --steps 1 --aug-steps 1 --objective-steps 1 --warmup 0".split()
    args += ["--variants", "channels_last", "fused", "compile", "--threads", "1", "--json", str(out)]
    result = _load("throughput").main(args)
    saved = json.loads(out.read_text())
    assert [(c["backend"], c["workers"]) for c in saved["configs"]] == [("per_image", 0), ("batched", 0)]
    for row in saved["configs"]:
        assert row["augment_images_per_s"] > 0 and row["train_images_per_s"] > 0
        # (the kernel batches its RSS counters per CPU: the two readings can differ by a few pages)
        assert row["peak_memory_mb"] >= row["memory_at_start_mb"] - 1 > 0
        assert row["epoch_s"] > 50_000 / row["train_images_per_s"]
    assert saved["objective"][0]["ratio"] == result["objective"][0]["ratio"] > 0
    assert saved["variants"][0]["channels_last_speedup"] > 0 and "fused_speedup" in saved["variants"][0]
    assert "compile" in saved["skipped"] and saved["commit"] and saved["device"] == "cpu"


def test_bn_centering_measures_against_numpy():
    """The direction statistic and the Euclidean kNN of benchmarks/bn_centering.py, against numpy."""
    import numpy as np
    import torch

    mod = _load("bn_centering")
    rng = np.random.default_rng(0)
    z = rng.normal(size=(50, 7)) + np.array([3.0, 0, 0, 0, 0, 0, 0])
    u = z / np.linalg.norm(z, axis=1, keepdims=True)
    concentration = mod.direction_concentration
    assert concentration(torch.as_tensor(z)) == pytest.approx(np.linalg.norm(u.mean(0)), rel=1e-12)
    # one direction: 1; antipodal pairs: 0
    assert concentration(torch.ones(4, 3) * torch.arange(1.0, 5.0)[:, None]) == pytest.approx(1.0)
    assert concentration(torch.tensor([[1.0, 2.0], [-1.0, -2.0]])) == pytest.approx(0.0, abs=1e-7)
    bank, query = rng.normal(size=(30, 5)), rng.normal(size=(9, 5))
    dist = np.sqrt(((query[:, None, :] - bank[None, :, :]) ** 2).sum(-1))
    expected = np.sort(dist, axis=1)[:, :3].mean(1)
    got = mod.euclidean_knn(torch.as_tensor(bank), torch.as_tensor(query), 3)
    np.testing.assert_allclose(got, expected, rtol=1e-10)


@pytest.mark.skipif(not CIFAR.is_dir(), reason=f"CIFAR-10 image folder not found at {CIFAR}")
def test_bn_centering_runs_and_class_statistics_spread_the_class(tmp_path):
    """BatchNorm statistics fitted to the class spread its directions (docs/scoring.md, issue 9)."""
    out = tmp_path / "c.json"
    args = ["--data-dir", str(CIFAR), "--classes", "0", "--subset", "200", "--eval-subset", "200"]
    result = _load("bn_centering").main(args + ["--cache-dir", str(tmp_path), "--json", str(out)])
    saved = json.loads(out.read_text())["classes"]["0"]
    assert saved == result["0"]
    assert saved["class_stats"]["R_in"] < saved["init_stats"]["R_in"] - 0.3


def test_frozen_features_knn_aurocs_against_numpy_and_scipy():
    """The kNN AUROCs and the summary of benchmarks/frozen_features.py, against brute force."""
    import numpy as np
    import torch
    from scipy.stats import mannwhitneyu

    mod = _load("frozen_features")
    rng = np.random.default_rng(1)
    shift = np.array([4.0, 0, 0, 0, 0, 0])
    bank = rng.normal(size=(40, 6)) + shift
    x = np.concatenate([rng.normal(size=(15, 6)) + shift, 2.0 * rng.normal(size=(25, 6))])
    got = mod.knn_aurocs(torch.as_tensor(bank), torch.as_tensor(x), np.arange(40) < 15, 3)
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    cos = np.sort(1 - unit(x) @ unit(bank).T, axis=1)[:, :3].mean(1)
    euc = np.sort(np.sqrt(((x[:, None] - bank[None]) ** 2).sum(-1)), axis=1)[:, :3].mean(1)
    for name, s in (("cos", cos), ("euclid", euc)):  # AUROC = P(outlier scores above inlier) (Mann-Whitney)
        u = mannwhitneyu(s[15:], s[:15]).statistic / (15 * 25)
        assert got[name] == pytest.approx(u, abs=1e-9)
    results = {"0": {"a": {"cos": 0.6, "euclid": 0.7}}, "1": {"a": {"cos": 0.4, "euclid": 0.9}}}
    summary = mod.summarize(results)
    assert summary["a_cos"] == pytest.approx({"mean": 0.5, "min": 0.4})
    assert summary["a_euclid"] == pytest.approx({"mean": 0.8, "min": 0.7})


@pytest.mark.skipif(not CIFAR.is_dir(), reason=f"CIFAR-10 image folder not found at {CIFAR}")
def test_frozen_features_runs_on_cifar(tmp_path):
    out = tmp_path / "f.json"
    args = ["--data-dir", str(CIFAR), "--classes", "2", "--subset", "200", "--norms", "group,none"]
    result = _load("frozen_features").main(args + ["--cache-dir", str(tmp_path), "--json", str(out)])
    saved = json.loads(out.read_text())
    assert saved["classes"] == result["classes"] and saved["provenance"]["commit"]
    assert set(saved["classes"]["2"]) == {"raw", "group_32-64-128_seed0", "none_32-64-128_seed0"}
    assert all(0.0 <= v <= 1.0 for r in saved["classes"]["2"].values() for v in r.values())
    with pytest.raises(SystemExit):
        _load("frozen_features").main(["--data-dir", str(CIFAR), "--norms", "layer"])
