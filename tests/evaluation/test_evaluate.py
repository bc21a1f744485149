"""evaluate_features: which representations it reports."""

import torch

from pyro_vje.evaluation.evaluate import evaluate_features


def _split(n, generator):
    labels = torch.arange(n) % 4
    centers = torch.eye(8)[:4] * 10.0
    h = centers[labels] + torch.randn(n, 8, generator=generator)  # separable
    z = torch.randn(n, 8, generator=generator)  # unrelated to the labels
    return {"z": z, "h": h, "labels": labels}


def test_the_backbone_output_h_is_evaluated_when_present():
    g = torch.Generator().manual_seed(0)
    bank, test = _split(200, g), _split(100, g)
    out = evaluate_features(bank, test, 4, knn_k=5, probe="fast")
    assert out["knn_h"] == 1.0 and out["linear_h"] == 1.0
    assert out["knn_z"] < 0.5 and out["linear_z"] < 0.5  # chance is 0.25
    assert "knn_mu" not in out
    without = evaluate_features({"z": bank["z"], "labels": bank["labels"]}, test, 4, knn_k=5)
    assert "knn_h" not in without and without["knn_z"] == out["knn_z"]
