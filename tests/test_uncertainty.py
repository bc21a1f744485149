"""pyro_vje.uncertainty's scalars against NumPy, and pyro-vje uncertainty end to end on tiny digits runs."""

import json

import numpy as np
import pytest
import torch

from pyro_vje.cli import main
from pyro_vje.uncertainty import uncertainty_scalars, view_spread

TINY = ["--epochs", "1", "--max-steps-per-epoch", "2", "--no-progress", "--no-tensorboard"]


def test_scalars_match_their_numpy_definitions():
    rng = np.random.default_rng(0)
    z, scale = rng.normal(size=(6, 4)), rng.uniform(0.1, 2, size=(6, 4))
    views = [{"z": torch.tensor(z + 0.1 * rng.normal(size=z.shape))} for _ in range(3)]
    bank = {"z": torch.tensor(rng.normal(size=(20, 4)))}
    out = uncertainty_scalars({"z": torch.tensor(z), "scale": torch.tensor(scale)}, bank, views, k=1)
    np.testing.assert_allclose(out["entropy"], np.log(scale**2).sum(1), rtol=1e-5)
    np.testing.assert_allclose(out["mean_variance"], (scale**2).mean(1), rtol=1e-5)
    np.testing.assert_allclose(out["inverse_norm"], 1 / np.linalg.norm(z, axis=1), rtol=1e-5)
    b = bank["z"].numpy()
    cos = (z / np.linalg.norm(z, axis=1, keepdims=True)) @ (b / np.linalg.norm(b, axis=1, keepdims=True)).T
    np.testing.assert_allclose(out["knn_distance"], 1 - cos.max(1), rtol=1e-5, atol=1e-6)
    units = np.stack([v["z"].numpy() / np.linalg.norm(v["z"].numpy(), axis=1, keepdims=True) for v in views])
    want = ((units - units.mean(0)) ** 2).sum(-1).mean(0)
    np.testing.assert_allclose(out["view_spread"], want, rtol=1e-5)
    assert "view_nll" not in out and "inverse_kappa" not in out  # no model, no kappa
    with pytest.raises(ValueError, match="at least 2 views"):
        view_spread(views[:1])


@pytest.mark.parametrize("method", ["vje", "simsiam"])
def test_uncertainty_command_end_to_end(tmp_path, capsys, method):
    run = tmp_path / "run"
    extra = ["--hidden", "16"] if method == "vje" else []
    assert main(["train", "--method", method, "--out", str(run), *TINY, *extra]) == 0
    args = ["uncertainty", str(run), "--limit", "40", "--bank-size", "100", "--severities", "1,5"]
    assert main([*args, "--views", "2", "--no-progress"]) == 0
    report = json.loads((run / "uncertainty" / "uncertainty.json").read_text())
    scalars = report["scalars"]
    posterior = {"entropy", "mean_variance", "view_nll"} if method == "vje" else set()
    assert set(scalars) == posterior | {"inverse_norm", "knn_distance", "view_spread"}
    for m in scalars.values():
        assert set(m) >= {"spearman", "crop_more_uncertain", "r_auroc", "aurc"}
        assert 0 <= m["crop_more_uncertain"] <= 1 and 0 <= m["aurc"] <= 1
        assert set(m["severity_means"]) == {
            "gaussian_noise",
            "gaussian_blur",
            "contrast",
            "jpeg_compression",
            "pixelate",
        }
        assert all(len(v) == 3 for v in m["severity_means"].values())  # severities 0, 1, 5
    assert report["aurc_oracle"] <= min(m["aurc"] for m in scalars.values()) + 1e-12
    figures = {p.name for p in (run / "uncertainty" / "figures").iterdir()}
    assert {"severity.png", "risk_coverage.png"} <= figures
    assert ("per_dim_variance.png" in figures) == (method == "vje")
    printed = capsys.readouterr().out
    assert "| scalar | kind |" in printed and "reading:" in printed
    if method == "simsiam":
        assert "has no posterior" in printed
    assert main([*args[:2], "--corruptions", "frost", "--no-progress"]) == 2
    assert "unknown corruption" in capsys.readouterr().err
    assert main([*args[:2], "--severities", "0-2", "--no-progress"]) == 2
    assert "severities must be integers 1..5" in capsys.readouterr().err


def test_the_uncertainty_help_names_every_corruption(capsys):
    from pyro_vje.data.corruptions import CORRUPTIONS

    with pytest.raises(SystemExit):
        main(["uncertainty", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert all(name in text for name in CORRUPTIONS)  # the help's list is written by hand: no drift


def test_a_validation_run_is_measured_on_its_held_out_images(tmp_path):
    """A run trained with --validation N is measured on its N held-out training images (the split its
    evaluation read), never on the test split."""
    from torchvision import transforms as T

    from pyro_vje.data import dataset_info
    from pyro_vje.protocols.uncertainty import _unit_images
    from pyro_vje.runs import load_run
    from pyro_vje.training.loaders import build_eval_sets

    run = tmp_path / "run"
    assert main(["train", "--validation", "40", "--out", str(run), "--hidden", "16", *TINY]) == 0
    args = ["uncertainty", str(run), "--limit", "100", "--bank-size", "100", "--severities", "5"]
    assert main([*args, "--views", "2", "--corruptions", "contrast", "--no-progress"]) == 0
    assert json.loads((run / "uncertainty" / "uncertainty.json").read_text())["n_test"] == 40
    config, _ = load_run(run)
    info = dataset_info(config.dataset, count_classes=False)
    x, labels = _unit_images(config, info, info.image_size, 100, 0)
    held_out = build_eval_sets(config)[1]  # what the run evaluated on: the held-out images
    want = torch.stack([held_out[i][0] for i in range(len(held_out))])
    got = T.Normalize(info.mean, info.std)(x)
    key = lambda t: t.flatten(1).sum(1).sort().values  # the same images, in any order  # noqa: E731
    torch.testing.assert_close(key(got), key(want))
