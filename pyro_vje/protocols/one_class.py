"""The one-class anomaly-detection protocol (paper Section 5.3, Tables 3-4).

For each normal class c: train a model on the training images of class c only
(``TrainConfig.normal_class``), score the whole test split, and measure AUROC for
separating class c (inliers) from the other classes (outliers), for every score of
:mod:`pyro_vje.score` and for a baseline that needs no training (kNN cosine distance to
the class's training images in raw pixels) and the same kNN distance on VJE's z.

Each class runs in ``<out>/class-<c>/`` (a normal run directory: config, metrics,
checkpoints) and ends with ``scores.npz``; a class with ``scores.npz`` is skipped,
a class with ``last.pt`` but no scores is resumed, so ``pyro-vje one-class`` can be
interrupted and rerun, or run for a few classes at a time. Either needs the class's
``config.json`` to match the config now (as ``train --resume``,
:func:`~pyro_vje.runs.config_differences`): a rerun with another setting
is refused, naming the settings that differ. ``<out>/results.json``,
``results.md`` and ``figures/`` summarize every finished class.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from .. import score as scoring
from ..config import TrainConfig
from ..data import TwoViews, build_dataset, dataset_classes, dataset_labels, train_transform
from ..evaluation.batchnorm import reestimate_batchnorm
from ..evaluation.feature_scores import FEATURE_SCORES, feature_scores
from ..evaluation.features import extract_features
from ..evaluation.knn import knn_distance
from ..evaluation.metrics import auroc
from ..methods.registry import method_entry
from ..model import VJE
from ..runs import atomic_write, atomic_write_json, check_out_path, config_differences, json_safe
from ..training.loaders import RunData, build_eval_sets, test_split_name
from ..training.trainer import Trainer
from .presets import BN_STATS, CIFAR_CPU_ONE_CLASS, DIGITS_ONE_CLASS, PAPER_ONE_CLASS

log = logging.getLogger("pyro_vje")


def scores_against_bank(
    model: torch.nn.Module,
    loader: DataLoader,
    bank: dict[str, torch.Tensor],
    device: torch.device,
    *,
    knn_k: int = 5,
    posterior_samples: int = 0,
    tta_loader: DataLoader | None = None,
    tta_views: int = 0,
    seed: int = 0,
    progress: bool = False,
) -> tuple[dict[str, np.ndarray], dict[str, torch.Tensor]]:
    """Every score of ``loader``'s images from one encoder pass, and their features (with pixels):
    for VJE the likelihood and posterior scores and the class scores against ``bank``; for every
    method the training-free raw-pixel kNN and the feature-space baselines against ``bank``
    (what the one-class and OOD protocols both report)."""
    if isinstance(model, VJE):
        scores, feats = scoring.score_split(
            model,
            loader,
            device=device,
            posterior_samples=posterior_samples,
            tta_loader=tta_loader,
            tta_views=tta_views,
            seed=seed,
            keep_pixels=True,
            progress=progress,
        )
        scores.update({k: v.numpy() for k, v in scoring.class_scores(model, feats, bank).items()})
    else:
        scores = {}
        feats = extract_features(model, loader, device, keep_pixels=True, progress=progress)
    # kNN distance on raw pixels (no training), then the feature-space baselines on z (and mu)
    scores["knn_raw_pixels"] = knn_distance(bank["pixels"], feats["pixels"], knn_k).numpy()
    scores.update({k: v.numpy() for k, v in feature_scores(bank, feats, k=knn_k).items()})
    return scores, feats


def score_class(
    model: torch.nn.Module,
    data: RunData,
    device: torch.device,
    *,
    bn_stats: str = "clean",
    posterior_samples: int = 0,
    tta_loader: DataLoader | None = None,
    tta_views: int = 0,
    seed: int = 0,
    knn_k: int = 5,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Every score of the test split for a model trained on one class.

    For VJE: the likelihood and posterior scores (:func:`pyro_vje.score.score_split`) and the
    class scores against the class's training images (:func:`pyro_vje.score.class_scores`).
    For every method: the feature-space baselines against those images
    (:func:`~pyro_vje.evaluation.feature_scores.feature_scores`: kNN distance, Mahalanobis,
    1/norm on z, and on mu for VJE) and the training-free kNN distance on raw pixels. With
    ``bn_stats="clean"`` the BatchNorm statistics are first re-estimated on the class's clean
    training images (``data.bank_loader``)."""
    if bn_stats not in BN_STATS:
        raise ValueError(f"bn_stats must be one of {BN_STATS}, got {bn_stats!r}")
    if bn_stats == "clean":
        reestimate_batchnorm(model, data.bank_loader, device=device, forward=model.encoder)
    model.eval()
    bank = extract_features(model, data.bank_loader, device, keep_pixels=True)
    scores, test = scores_against_bank(
        model,
        data.test_loader,
        bank,
        device,
        knn_k=knn_k,
        posterior_samples=posterior_samples,
        tta_loader=tta_loader,
        tta_views=tta_views,
        seed=seed,
        progress=progress,
    )
    arrays = {f"score_{k}": v for k, v in scores.items()}
    arrays["labels"] = test["labels"].numpy()
    if "scale" in test:
        arrays["variances"] = test["scale"].square().numpy().astype(np.float32)
    return arrays


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    atomic_write(path, lambda f: np.savez(f, **arrays))


def run_class(
    config: TrainConfig,
    normal_class: int,
    out_dir: Path,
    *,
    posterior_samples: int = 0,
    tta_views: int = 0,
    knn_k: int = 5,
    bn_stats: str = "clean",
    score_epochs: Sequence[int] = (),
) -> dict[str, Any]:
    """Train (or resume) and score one normal class; return its ``scores.npz`` contents.

    ``score_epochs``: also score the model after these epochs (on a copy, the same way),
    into ``scores-epoch<E>.npz``: AUROC against training length from one run (epochs
    already passed when a class is resumed are not scored again)."""
    class_dir = out_dir / f"class-{normal_class}"
    done = class_dir / "scores.npz"
    cfg = dataclasses.replace(config, normal_class=normal_class, out=str(class_dir), baselines=False)
    resume = (class_dir / "last.pt").is_file()
    if resume or done.is_file():  # reuse a class only if it was trained with this very config
        detail = config_differences(class_dir, cfg)
        if detail:
            raise ValueError(
                f"{class_dir} was trained with another config ({detail}): rerun with its settings "
                "to reuse it, or choose another --out"
            )
    if done.is_file():
        with np.load(done) as data:
            return {k: data[k] for k in data.files}
    if bn_stats not in BN_STATS:
        raise ValueError(f"bn_stats must be one of {BN_STATS}, got {bn_stats!r}")
    trainer = Trainer(cfg, resume=resume)
    extra = {"normal_class": np.array(normal_class)}

    def on_epoch_end(tr: Trainer, row: dict[str, Any]) -> None:
        if tr.epoch in score_epochs and tr.epoch < cfg.epochs:
            snapshot = copy.deepcopy(tr.method)
            arrays = score_class(snapshot, tr.data, tr.device, bn_stats=bn_stats, seed=cfg.seed, knn_k=knn_k)
            _save_npz(class_dir / f"scores-epoch{tr.epoch}.npz", {**arrays, **extra})
            tr.method.train()

    trainer.fit(on_epoch_end=on_epoch_end if score_epochs else None)
    model = trainer.method.eval()
    device, data = trainer.device, trainer.data  # the trainer's bank and test loaders, reused
    tta_loader = None
    if tta_views > 0:  # the test images again, as view pairs of the training augmentation
        views = TwoViews(train_transform(data.info, data.image_size, color=cfg.augment != "crop"))
        tta_loader = DataLoader(build_eval_sets(cfg, transform=views)[1], batch_size=256, num_workers=0)
    arrays = score_class(
        model,
        data,
        device,
        bn_stats=bn_stats,
        posterior_samples=posterior_samples,
        tta_loader=tta_loader,
        tta_views=tta_views,
        seed=cfg.seed,
        knn_k=knn_k,
        progress=cfg.progress,
    )
    arrays.update(extra)
    if cfg.epochs in score_epochs:
        _save_npz(class_dir / f"scores-epoch{cfg.epochs}.npz", arrays)
    _save_npz(done, arrays)
    return arrays


def class_aurocs(arrays: dict[str, np.ndarray]) -> dict[str, float]:
    """AUROC of every score for one class's ``scores.npz`` (inliers = the normal class)."""
    inlier = arrays["labels"] == int(arrays["normal_class"])
    if inlier.all() or not inlier.any():
        raise ValueError("the test split needs both inliers and outliers to measure AUROC")
    out = {}
    for key, values in arrays.items():
        if key.startswith("score_"):
            out[key[len("score_") :]] = auroc(values[inlier], values[~inlier])
    return out


def summarize(per_class: dict[str, dict[str, float]]) -> dict[str, dict[str, Any]]:
    """``{score: {"per_class": {class: auroc}, "mean": m, "std": s}}`` (population std over classes)."""
    names = list(next(iter(per_class.values())))
    results = {}
    for name in names:
        values = {c: per_class[c][name] for c in per_class}
        arr = np.array(list(values.values()))
        results[name] = {"per_class": values, "mean": float(arr.mean()), "std": float(arr.std())}
    return results


#: the score the one-class table reports for VJE (docs/scoring.md says why: chosen on the
#: validation split, where the sigma normalizer that ``joint`` and ``mixture`` carry inverts as
#: training goes on); every other score is listed too
REPORTED_SCORE = "residual"
#: what a method without a likelihood reports: kNN distance on its z, the standard way to use a
#: deterministic self-supervised model for anomaly detection
REPORTED_FEATURE_SCORE = "knn_z"
#: the training-free baseline printed next to every score
BASELINE_SCORE = "knn_raw_pixels"
#: the baselines a reported likelihood score is held against: raw pixels and the feature-space
#: scores of the same model (:mod:`pyro_vje.evaluation.feature_scores`)
BASELINE_SCORES = (BASELINE_SCORE,) + tuple(f"{s}_{f}" for f in ("z", "mu") for s in FEATURE_SCORES)


def reported_score(results: dict[str, Any]) -> str:
    """The score a table reports: :data:`REPORTED_SCORE` where the model has a likelihood,
    :data:`REPORTED_FEATURE_SCORE` otherwise."""
    return REPORTED_SCORE if REPORTED_SCORE in results else REPORTED_FEATURE_SCORE


def strongest_baseline(results: dict[str, Any], exclude: str | None = None) -> str | None:
    """The :data:`BASELINE_SCORES` entry of ``results`` (``{score: {"mean": m, ...}}``) with the
    highest mean AUROC, other than ``exclude``; None if there is none."""
    names = [n for n in BASELINE_SCORES if n in results and n != exclude]
    return max(names, key=lambda n: results[n]["mean"]) if names else None


def markdown_table(results: dict[str, dict[str, Any]], reported: str | None = None) -> str:
    """Table 3's layout: one row per score, one column per class, then mean ± std, and next to
    each score the training-free raw-pixel kNN baseline and the strongest baseline
    (:func:`strongest_baseline`): how many classes the score beats each on and its mean
    difference. The reported score's row (default :func:`reported_score`) is marked."""
    reported = reported_score(results) if reported is None else reported
    classes = list(next(iter(results.values()))["per_class"])
    head = "| score | " + " | ".join(classes) + " | mean ± std |"
    rule = "|---" * (len(classes) + 2) + "|"
    against = []
    if BASELINE_SCORE in results:
        against.append((BASELINE_SCORE, "raw-pixel kNN"))
    best = strongest_baseline(results, exclude=reported)
    if best is not None and best != BASELINE_SCORE:
        against.append((best, f"strongest baseline {best}"))
    for _, label in against:
        head += f" vs {label} (classes above, mean diff.) |"
        rule += "---|"
    rows = []
    for name, r in results.items():
        label = f"**{name}** (reported)" if name == reported else name
        row = f"| {label} | " + " | ".join(f"{r['per_class'][c]:.3f}" for c in classes)
        row += f" | {r['mean']:.3f} ± {r['std']:.3f} |"
        for key, _ in against:
            base = results[key]
            above = sum(r["per_class"][c] > base["per_class"][c] for c in classes)
            row += f" {above}/{len(classes)}, {r['mean'] - base['mean']:+.3f} |"
        rows.append(row)
    return "\n".join([head, rule, *rows]) + "\n"


def reading(results: dict[str, dict[str, Any]]) -> str:
    """One line under the table: the reported score's mean AUROC against the strongest baseline."""
    reported = reported_score(results)
    best = strongest_baseline(results, exclude=reported)
    if reported not in results or best is None:
        return ""
    mine, base = results[reported]["mean"], results[best]["mean"]
    verdict = "beats it" if mine > base else "does not beat it"
    return (
        f"reading: the reported score {reported} (mean AUROC {mine:.3f}) against the strongest "
        f"baseline {best} ({base:.3f}): {verdict}."
    )


def checked_classes(config: TrainConfig, classes: Sequence[int] | None) -> tuple[list[int], list[str]]:
    """``classes`` (default: all) checked against the test split, and every class's name.

    Reads the test split's file list and labels only (no transform, no image cache);
    raises ``ValueError`` naming the classes out of range.
    """
    test_set = build_dataset(
        config.dataset, test_split_name(config.dataset), root=config.data_dir, download=config.download
    )
    num_classes = int(dataset_labels(test_set).max()) + 1
    try:
        names = dataset_classes(test_set)
    except Exception:  # noqa: BLE001 - any data set without class names
        names = [str(i) for i in range(num_classes)]
    classes = list(range(num_classes)) if classes is None else list(classes)
    bad = [c for c in classes if not 0 <= c < num_classes]
    if bad:
        raise ValueError(f"classes {bad} out of range: {config.dataset} has classes 0..{num_classes - 1}")
    return classes, names


def run_one_class(
    config: TrainConfig,
    out: str | os.PathLike,
    classes: Sequence[int] | None = None,
    *,
    posterior_samples: int = 0,
    tta_views: int = 0,
    bn_stats: str = "clean",
    score_epochs: Sequence[int] = (),
    figures: bool = True,
) -> dict[str, dict[str, Any]]:
    """The protocol for ``classes`` (default: all); returns and writes the summary.

    ``bn_stats`` (:data:`BN_STATS`): which BatchNorm statistics the scores use;
    ``score_epochs``: also score each class after these epochs and write the AUROCs against
    the epoch to ``results_epochs.json`` / ``results_epochs.md``."""
    if not method_entry(config.method).likelihood and (posterior_samples > 0 or tta_views > 0):
        raise ValueError(
            f"posterior_samples and tta_views score VJE's likelihood; method {config.method!r} has "
            "none (its one-class scores are the feature-space ones)"
        )
    classes, names = checked_classes(config, classes)  # before any folder is made
    bad_epochs = [e for e in score_epochs if not 1 <= e <= config.epochs]
    if bad_epochs:
        raise ValueError(f"score_epochs {bad_epochs} out of range: training runs epochs 1..{config.epochs}")
    out_dir = check_out_path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    per_class, arrays_by_class = {}, {}
    for c in classes:
        log.info("one-class: class %d (%s)", c, names[c])
        arrays = run_class(
            config,
            c,
            out_dir,
            posterior_samples=posterior_samples,
            tta_views=tta_views,
            bn_stats=bn_stats,
            score_epochs=score_epochs,
        )
        arrays_by_class[names[c]] = arrays
        per_class[names[c]] = class_aurocs(arrays)
        _write_summary(out_dir, per_class)  # after every class: an interrupted protocol keeps its results
        if score_epochs:
            _write_epochs(out_dir, {names[k]: k for k in classes[: classes.index(c) + 1]}, score_epochs)
    results = _write_summary(out_dir, per_class)
    if figures:
        _figures(out_dir, results, arrays_by_class)
    return results


def _write_summary(out_dir: Path, per_class: dict[str, dict[str, float]]) -> dict[str, dict[str, Any]]:
    results = summarize(per_class)
    atomic_write_json(json_safe(results), out_dir / "results.json")
    (out_dir / "results.md").write_text(
        "One-class AUROC (inlier = the class trained on; higher score = more anomalous; "
        f"reported score: {reported_score(results)})\n\n"
        + markdown_table(results)
        + "\n"
        + reading(results)
        + "\n"
    )
    return results


def _write_epochs(out_dir: Path, classes: dict[str, int], epochs: Sequence[int]) -> dict[str, Any]:
    """AUROC of every score against the epoch, from each class's ``scores-epoch<E>.npz``."""
    by_epoch: dict[str, Any] = {}
    for epoch in sorted(epochs):
        per_class = {}
        for name, c in classes.items():
            path = out_dir / f"class-{c}" / f"scores-epoch{epoch}.npz"
            if path.is_file():
                with np.load(path) as data:
                    per_class[name] = class_aurocs({k: data[k] for k in data.files})
        if per_class:
            by_epoch[str(epoch)] = summarize(per_class)
    atomic_write_json(json_safe(by_epoch), out_dir / "results_epochs.json")
    lines = ["One-class AUROC against the training epoch (mean ± std over the classes scored)\n"]
    for epoch, results in by_epoch.items():
        lines += [f"\n## after epoch {epoch}\n", markdown_table(results)]
    (out_dir / "results_epochs.md").write_text("".join(lines))
    return by_epoch


def _figures(out_dir: Path, results: dict, arrays_by_class: dict[str, dict[str, np.ndarray]]) -> None:
    from .plots import (
        plot_per_class_auroc,
        plot_roc_curves,
        plot_score_histograms,
        plot_variance_histograms,
    )

    fig_dir = out_dir / "figures"
    plot_per_class_auroc({k: v["per_class"] for k, v in results.items()}, fig_dir / "per_class_auroc.png")
    for name in results:
        curves = {}
        for cls, arrays in arrays_by_class.items():
            inlier = arrays["labels"] == int(arrays["normal_class"])
            values = arrays[f"score_{name}"]
            curves[cls] = (values[inlier], values[~inlier])
        plot_roc_curves(curves, fig_dir / f"roc_{name}.png", title=f"one-class ROC, score: {name}")
    for cls, arrays in arrays_by_class.items():
        inlier = arrays["labels"] == int(arrays["normal_class"])
        hist = {
            key[len("score_") :]: (v[inlier], v[~inlier])
            for key, v in arrays.items()
            if key.startswith("score_")
        }
        plot_score_histograms(
            hist, fig_dir / f"histograms_{cls}.png", in_label="inliers", out_label="outliers"
        )
        if "variances" not in arrays:  # a method without a posterior
            continue
        var = arrays["variances"]
        plot_variance_histograms(
            {"inliers": var[inlier], "outliers": var[~inlier]}, fig_dir / f"variance_{cls}.png"
        )


def mean_posterior_stats(out_dir: str | os.PathLike, classes: Sequence[int]) -> dict[str, float]:
    """Mean posterior entropy and variance sum over the test inputs, averaged over classes."""
    ent, var = [], []
    for c in classes:
        with np.load(Path(out_dir) / f"class-{c}" / "scores.npz") as data:
            ent.append(float(data["score_entropy"].mean()))
            var.append(float(data["score_variance"].mean()))
    return {"entropy": float(np.mean(ent)), "variance": float(np.mean(var))}


__all__ = [  # noqa: RUF022
    "BASELINE_SCORE",
    "BASELINE_SCORES",
    "BN_STATS",
    "CIFAR_CPU_ONE_CLASS",
    "DIGITS_ONE_CLASS",
    "PAPER_ONE_CLASS",
    "REPORTED_FEATURE_SCORE",
    "REPORTED_SCORE",
    "checked_classes",
    "class_aurocs",
    "markdown_table",
    "mean_posterior_stats",
    "reading",
    "reported_score",
    "run_class",
    "run_one_class",
    "score_class",
    "scores_against_bank",
    "strongest_baseline",
    "summarize",
]
