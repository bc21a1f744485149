"""Cross-data-set out-of-distribution detection with a trained run (``pyro-vje score``).

In-distribution: the run's own evaluation split. Out-of-distribution: any of
:data:`pyro_vje.data.ood_sets.OOD_CHOICES` — another data set through torchvision (CIFAR-10/100,
Fashion-MNIST, MNIST, SVHN, STL-10, ...), any image folder, or a synthetic shift of the
in-distribution test images that needs no download (Gaussian / uniform noise, blur,
inversion). For every score of :mod:`pyro_vje.score` (VJE runs), the training-free raw-pixel
kNN, and the feature-space baselines of the same model
(:mod:`pyro_vje.evaluation.feature_scores`: kNN distance, Mahalanobis, 1/norm; every method's
run): AUROC, AUPR (out and in as positives) and FPR at 95% TPR.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader, Dataset

from ..data import TwoViews, dataset_info, narrow, subset_indices, train_transform
from ..data.ood_sets import build_ood_dataset, check_ood_spec, ood_train_transform, ood_transform
from ..evaluation.batchnorm import reestimate_batchnorm
from ..evaluation.features import extract_features
from ..evaluation.metrics import ood_metrics
from ..methods.registry import method_entry
from ..runs import atomic_write_json, json_safe, load_run
from ..training.distributed import resolve_device
from ..training.loaders import build_eval_sets
from .one_class import BASELINE_SCORES, REPORTED_FEATURE_SCORE, REPORTED_SCORE, scores_against_bank


def _limit(ds: Dataset | None, n: int | None, seed: int) -> Dataset | None:
    """At most ``n`` images of ``ds`` at random (labels are irrelevant to OOD scoring)."""
    if ds is None:
        return None
    return narrow(ds, subset_indices(np.full(len(ds), -1), n, seed, balanced=False))


def _loader(ds: Dataset | None) -> DataLoader | None:
    return None if ds is None else DataLoader(ds, batch_size=256, shuffle=False)


def _scores(
    model, ds: Dataset, device, bank, *, posterior_samples: int, tta_views: int, tta_set, progress: bool
) -> dict[str, np.ndarray]:
    """Every score of ``ds`` (:func:`~pyro_vje.protocols.one_class.scores_against_bank`, k = 5)."""
    scores, _ = scores_against_bank(
        model,
        _loader(ds),
        bank,
        device,
        posterior_samples=posterior_samples,
        tta_loader=_loader(tta_set),
        tta_views=tta_views,
        progress=progress,
    )
    return scores


def run_ood(
    run: str | os.PathLike,
    ood: Sequence[str],
    *,
    out: str | os.PathLike | None = None,
    checkpoint: str = "last",
    data_dir: str | None = None,
    ood_root: str | None = None,
    download: bool = False,
    limit: int | None = None,
    posterior_samples: int = 0,
    tta_views: int = 0,
    device: str = "auto",
    bank_size: int = 2000,
    bn_stats: str = "clean",
    figures: bool = True,
    progress: bool = False,
    skip_unreadable: bool | None = None,
) -> dict[str, dict[str, dict[str, float]]]:
    """``{ood_spec: {score: {"auroc", "aupr_out", "aupr_in", "fpr95"}}}``; written to ``out``.

    The bank is a seeded random ``bank_size`` of the run's clean (un-augmented) training
    images: the class scores (:func:`pyro_vje.score.class_scores`) and the kNN distances on
    raw pixels (the training-free baseline) and on z use it, and with ``bn_stats="clean"``
    (default) the BatchNorm statistics are re-estimated on it first (docs/scoring.md);
    ``"train"`` keeps the checkpoint's. ``skip_unreadable`` (default: the run's setting) leaves
    out the image files PIL cannot read, in the run's data and in the OOD sets."""
    if not ood:
        raise ValueError("give at least one out-of-distribution set (--ood)")
    for spec in ood:  # before the model is loaded and the in-distribution split scored
        check_ood_spec(spec, root=ood_root)
    dev = resolve_device(device)
    config, vje = load_run(run, checkpoint, dev)
    if not method_entry(config.method).likelihood and (posterior_samples > 0 or tta_views > 0):
        raise ValueError(
            f"posterior samples and --tta score VJE's likelihood; the run's method {config.method!r} has "
            "none (its scores are the feature-space ones)"
        )
    if data_dir is not None:
        config = dataclasses.replace(config, data_dir=data_dir)
    if skip_unreadable is not None:
        config = dataclasses.replace(config, skip_unreadable=bool(skip_unreadable))
    info = dataset_info(config.dataset, image_size=config.image_size, count_classes=False)
    if bn_stats not in ("clean", "train"):
        raise ValueError(f"bn_stats must be 'clean' or 'train', got {bn_stats!r}")
    if bank_size < 1:
        raise ValueError(f"bank_size must be >= 1, got {bank_size}")
    bank_set, test_set, _ = build_eval_sets(config)
    test_set = _limit(test_set, limit, config.seed)
    bank_set = _limit(bank_set, min(bank_size, len(bank_set)), config.seed + 2)
    if bn_stats == "clean":
        reestimate_batchnorm(vje, _loader(bank_set), device=dev, forward=vje.encoder)
    bank = extract_features(vje, _loader(bank_set), dev, keep_pixels=True)
    tta_in = None
    if tta_views > 0:
        tta_in = _limit(
            build_eval_sets(config, transform=TwoViews(train_transform(info)))[1], limit, config.seed
        )
    kwargs = {"posterior_samples": posterior_samples, "tta_views": tta_views, "progress": progress}
    s_in = _scores(vje, test_set, dev, bank, tta_set=tta_in, **kwargs)
    results: dict[str, dict[str, dict[str, float]]] = {}
    all_scores = {}
    for spec in ood:
        common = {
            "in_dataset": config.dataset,
            "root": ood_root,
            "in_root": config.data_dir,
            "download": download,
            "skip_unreadable": config.skip_unreadable,
        }
        ds = _limit(build_ood_dataset(spec, transform=ood_transform(info), **common), limit, config.seed + 1)
        tta_out = None
        if tta_views > 0:
            tta_out = _limit(
                build_ood_dataset(spec, transform=TwoViews(ood_train_transform(info)), **common),
                limit,
                config.seed + 1,
            )
        s_out = _scores(vje, ds, dev, bank, tta_set=tta_out, **kwargs)
        results[spec] = {name: ood_metrics(s_in[name], s_out[name]) for name in s_in}
        all_scores[spec] = s_out
    if out is not None:
        _write(Path(out), results, s_in, all_scores, figures)
    return results


def markdown_table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    """A table per OOD set; next to every score, its AUROC minus the training-free raw-pixel
    kNN baseline's."""
    lines = []
    for spec, per_score in results.items():
        base = per_score.get("knn_raw_pixels")
        lines += [
            f"### in-distribution vs `{spec}`",
            "",
            "| score | AUROC | AUPR-out | AUPR-in | FPR@95%TPR |"
            + (" AUROC - raw-pixel kNN |" if base else ""),
        ]
        lines.append("|---|---|---|---|---|" + ("---|" if base else ""))
        for name, m in per_score.items():
            row = (
                f"| {name} | {m['auroc']:.3f} | {m['aupr_out']:.3f} | {m['aupr_in']:.3f} | {m['fpr95']:.3f} |"
            )
            if base:
                row += f" {m['auroc'] - base['auroc']:+.3f} |"
            lines.append(row)
        lines.append("")
    return "\n".join(lines)


def reading(results: dict[str, dict[str, dict[str, float]]], score: str | None = None) -> str:
    """One line under :func:`markdown_table`: which score to trust (``score``, default the likelihood
    score the one-class tables report, or kNN distance on z for a method without a likelihood) and
    the baselines it must beat, per OOD set: the training-free raw-pixel kNN and the strongest of
    the feature-space baselines on the same model."""
    verdicts = []
    for spec, per_score in results.items():
        mine_name = score or (REPORTED_SCORE if REPORTED_SCORE in per_score else REPORTED_FEATURE_SCORE)
        others = [n for n in BASELINE_SCORES if n in per_score and n != mine_name]
        if mine_name not in per_score or not others:
            continue
        best = max(others, key=lambda n: per_score[n]["auroc"])
        mine, base = per_score[mine_name]["auroc"], per_score[best]["auroc"]
        verdicts.append(
            f"{spec}: {mine_name} {mine:.3f} vs strongest baseline {best} {base:.3f} "
            f"({'beats it' if mine > base else 'does not'})"
        )
    line = (
        "reading: AUROC 0.5 = chance, 1 = perfect separation; read residual (the likelihood score "
        "the one-class tables report, docs/scoring.md; knn_z for a method without a likelihood), and "
        "trust it only where it beats the baselines (knn_raw_pixels needs no training; knn_*, "
        "mahalanobis_*, inverse_norm_* read the same model's features)"
    )
    return line + (": " + "; ".join(verdicts) if verdicts else "") + "."


def _write(out_dir: Path, results, s_in, all_scores, figures: bool) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(json_safe(results), out_dir / "ood.json")
    (out_dir / "ood.md").write_text(markdown_table(results) + "\n" + reading(results) + "\n")
    np.savez(
        out_dir / "scores.npz",
        **{f"in_{k}": v for k, v in s_in.items()},
        **{f"{spec}_{k}": v for spec, s in all_scores.items() for k, v in s.items()},
    )
    if figures:
        from .plots import plot_roc_curves, plot_score_histograms

        for spec, s_out in all_scores.items():
            safe = spec.replace("/", "_").replace(":", "_")
            pairs = {name: (s_in[name], s_out[name]) for name in s_in}
            plot_score_histograms(
                pairs, out_dir / "figures" / f"histograms_{safe}.png", out_label=f"OOD: {spec}"
            )
            plot_roc_curves(
                pairs, out_dir / "figures" / f"roc_{safe}.png", title=f"in-distribution vs {spec}"
            )


__all__ = ["markdown_table", "reading", "run_ood"]
