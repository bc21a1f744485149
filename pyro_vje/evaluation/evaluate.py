"""Evaluation of a trained method on frozen features (paper Section 5.2, Tables 2, 5-7)."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn
from torch.utils.data import DataLoader

from .diagnostics import embedding_diagnostics
from .features import extract_features
from .knn import knn_evaluate
from .linear import LinearProbeConfig, linear_probe


def evaluate_features(
    bank: dict[str, torch.Tensor],
    test: dict[str, torch.Tensor],
    num_classes: int,
    *,
    knn_k: int = 30,
    knn_temperature: float = 0.1,
    probe: str = "none",
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> dict[str, float]:
    """kNN (and optionally a linear probe) for ``z``, ``mu`` and ``h``, plus the diagnostics.

    ``bank``/``test`` are :func:`extract_features` outputs. Keys: ``knn_z``,
    ``knn_mu`` (top-1; ``*_top5`` too for more than 10 classes), ``knn_h`` where the features
    have ``h`` (the backbone under a projection head), ``linear_z``, ``linear_mu`` (and
    ``linear_h``) when ``probe`` is ``"fast"`` or ``"full"`` (100 epochs, the paper), and
    :func:`~pyro_vje.evaluation.embedding_diagnostics` on the test split.
    """
    if probe not in ("none", "fast", "full"):
        raise ValueError(f"unknown linear probe {probe!r}; choose from none, fast, full")
    out: dict[str, float] = {}
    keys = [k for k in ("z", "mu", "h") if k in bank]
    if len(torch.unique(bank["labels"])) < 2:  # one-class training: kNN classification is undefined
        keys = []
    for key in keys:  # on the accelerator when there is one
        res = knn_evaluate(
            bank[key].to(device),
            bank["labels"].to(device),
            test[key].to(device),
            test["labels"].to(device),
            num_classes,
            knn_k,
            knn_temperature,
        )
        out[f"knn_{key}"] = res["top1"]
        if "top5" in res and num_classes > 10:
            out[f"knn_{key}_top5"] = res["top5"]
    variances = test["scale"].square() if "scale" in test else None
    out.update(embedding_diagnostics(test["z"], test.get("mu"), variances))
    if probe != "none":
        probe_cfg = LinearProbeConfig.fast() if probe == "fast" else LinearProbeConfig()
        probe_cfg = dataclasses.replace(probe_cfg, device=str(device), seed=seed)
        for key in keys:
            res = linear_probe(
                bank[key],
                bank["labels"],
                test[key],
                test["labels"],
                num_classes,
                probe_cfg,
                progress=progress,
            )
            out[f"linear_{key}"] = res["top1"]
            if "top5" in res and num_classes > 10:
                out[f"linear_{key}_top5"] = res["top5"]
    return out


def evaluate_method(
    method: nn.Module,
    bank_loader: DataLoader,
    test_loader: DataLoader,
    num_classes: int,
    device: torch.device,
    *,
    amp: str = "none",
    channels_last: bool = False,
    progress: bool = False,
    **kwargs,
) -> dict[str, float]:
    """Extract features of both splits with ``method.features`` and run :func:`evaluate_features`."""
    common = {"amp": amp, "channels_last": channels_last, "progress": progress}
    bank = extract_features(method, bank_loader, device, desc="train features", **common)
    test = extract_features(method, test_loader, device, desc="test features", **common)
    return evaluate_features(bank, test, num_classes, device=device, progress=progress, **kwargs)
