"""Does a trained run's uncertainty mean something? ``pyro-vje uncertainty RUN`` (issue 25).

For ``limit`` class-balanced test images of the run's data set, every uncertainty scalar of
:mod:`pyro_vje.uncertainty` (the posterior's and the free proxies) is measured four ways:

* **severity** — under each corruption of :mod:`pyro_vje.data.corruptions` at severities 0..5:
  the scalar's mean per severity, and Spearman's rho between scalar and severity over all
  (image, severity) pairs; ``spearman`` is its mean over the corruptions;
* **crops** — ``crop_more_uncertain``: the fraction of images whose random crop (a square of
  ``crop_area`` of the image's area, 10-50 % by default, resized back) scores higher than
  the full image (Kirchhof et al. 2023; the URL benchmark's crop test);
* **R-AUROC** — on the clean images, AUROC of the scalar for "the nearest bank neighbour (cosine
  on z) has the wrong label" (the URL benchmark's main metric);
* **AURC** — the area under the risk-coverage curve of the run's kNN classifier (k =
  ``knn_k``, cosine, temperature-weighted) when the most uncertain images are rejected first.

Views (for ``view_nll`` and ``view_spread``) are random resized crops of at least the training
recipe's ``crop_min_scale`` of the area (0.2 when unset), flipped where the data set allows,
drawn from a seeded generator: the same views for every scalar. For a posterior method the
per-dimension mean variance under each corruption is kept too (``per_dim_variance``:
is the uncertainty anisotropic?). Writes ``uncertainty.json``, ``uncertainty.md`` and
``figures/`` into ``out`` (default: ``RUN/uncertainty``).
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision import transforms as T
from torchvision.transforms import functional as TF

from ..data import dataset_info, dataset_labels, narrow, subset_indices
from ..data.corruptions import CORRUPTIONS, check_corruptions, corrupt
from ..data.datasets import build_dataset
from ..data.ood_sets import ood_transform
from ..evaluation.features import extract_features
from ..evaluation.knn import knn_predict
from ..evaluation.uncertainty_metrics import aurc, fraction_higher, r_auroc, risk_coverage, spearman
from ..progress import progress_bar
from ..runs import atomic_write_json, check_out_path, json_safe, load_run
from ..training.distributed import resolve_device
from ..training.loaders import build_eval_sets, test_split_name, validation_indices
from ..uncertainty import uncertainty_scalars

__all__ = ["UncertaintySettings", "markdown_table", "reading", "run_uncertainty"]

#: the scalars computed from the posterior (the rest are the free proxies every encoder has)
_POSTERIOR = ("entropy", "mean_variance", "view_nll", "inverse_kappa")


@dataclasses.dataclass(frozen=True)
class UncertaintySettings:
    """What ``pyro-vje uncertainty`` measures on (defaults: the CLI's)."""

    corruptions: tuple[str, ...] = CORRUPTIONS
    severities: tuple[int, ...] = (1, 2, 3, 4, 5)
    limit: int = 1000  # test images (class-balanced)
    bank_size: int = 10000  # training images for kNN, the nearest neighbour and knn_distance
    views: int = 4  # random views per image (view_spread; the first also gives view_nll)
    crop_area: tuple[float, float] = (0.1, 0.5)
    knn_k: int = 5  # the knn_distance proxy's neighbours
    seed: int = 0
    batch_size: int = 256

    def __post_init__(self) -> None:
        object.__setattr__(self, "corruptions", check_corruptions(self.corruptions))
        bad = [s for s in self.severities if not isinstance(s, int) or not 1 <= s <= 5]
        if bad or not self.severities:
            raise ValueError(f"severities must be integers 1..5, got {list(self.severities) or 'none'}")
        object.__setattr__(self, "severities", tuple(sorted(set(self.severities))))
        for name in ("limit", "bank_size", "knn_k", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.views < 2:
            raise ValueError(f"views must be >= 2 (view_spread compares views), got {self.views}")
        lo, hi = self.crop_area
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"crop_area must satisfy 0 < low <= high <= 1, got {self.crop_area}")


def _unit_images(config, info, size: int, limit: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``limit`` class-balanced evaluation images as float ``(N, C, H, W)`` in [0, 1], and their
    labels: from the test split, or from the held-out training images of a ``validation`` run
    (what its evaluation read: a study on a validation run never touches the test split)."""
    to_unit = T.Compose(ood_transform(info, size).transforms[:-1])  # everything but Normalize
    split = "train" if config.validation is not None else test_split_name(config.dataset)
    common = {"root": config.data_dir, "download": config.download, "skip_unreadable": config.skip_unreadable}
    labels = np.asarray(dataset_labels(build_dataset(config.dataset, split, transform=None, **common)))
    pool = (
        validation_indices(labels, config.validation)
        if config.validation is not None
        else np.arange(len(labels))
    )
    picked = subset_indices(labels[pool], min(limit, len(pool)), seed, balanced=True)
    ds = build_dataset(config.dataset, split, transform=to_unit, indices=pool[picked], **common)
    xs, ys = zip(*(ds[i] for i in range(len(ds))))
    return torch.stack([torch.as_tensor(x, dtype=torch.float32) for x in xs]), torch.as_tensor(ys).long()


def _crop(x: torch.Tensor, area: float, ratio: float, g: torch.Generator, flip: bool) -> torch.Tensor:
    """A crop of ``area`` of ``x``'s area with aspect ``ratio`` at a random place, resized back."""
    _, h, w = x.shape
    ch = max(1, min(h, round(math.sqrt(area * h * w / ratio))))
    cw = max(1, min(w, round(math.sqrt(area * h * w * ratio))))
    top = int(torch.randint(0, h - ch + 1, (1,), generator=g))
    left = int(torch.randint(0, w - cw + 1, (1,), generator=g))
    out = TF.resized_crop(x, top, left, ch, cw, [h, w], antialias=True)
    return TF.hflip(out) if flip else out


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g))


def _views(x: torch.Tensor, n: int, min_area: float, flips: bool, g: torch.Generator) -> list[torch.Tensor]:
    """``n`` random resized crops (area in [min_area, 1], aspect in [3/4, 4/3], log-uniform) of each image."""
    out = []
    for _ in range(n):
        views = []
        for image in x:
            area = _uniform(g, min_area, 1.0)
            ratio = math.exp(_uniform(g, math.log(3 / 4), math.log(4 / 3)))
            flip = flips and bool(torch.rand((), generator=g) < 0.5)
            views.append(_crop(image, area, ratio, g, flip))
        out.append(torch.stack(views))
    return out


class _Encoder:
    """Features of unit images: Normalize, then ``method.features`` in batches, on the CPU."""

    def __init__(self, method, info, device, batch_size: int):
        self.method, self.device, self.batch_size = method, device, batch_size
        self.normalize = T.Normalize(info.mean, info.std)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        parts: dict[str, list[torch.Tensor]] = {}
        for chunk in x.split(self.batch_size):
            feats = self.method.features(self.normalize(chunk).to(self.device))
            for key, value in feats.items():
                parts.setdefault(key, []).append(value.float().cpu())
        return {key: torch.cat(values) for key, values in parts.items()}


def _measure(encode, x, bank, views: int, min_area: float, flips: bool, g, model, knn_k) -> dict[str, Any]:
    """Features of ``x`` and of ``views`` random views of it, and every uncertainty scalar."""
    feats = encode(x)
    view_feats = [encode(v) for v in _views(x, views, min_area, flips, g)]
    scalars = uncertainty_scalars(feats, bank, view_feats, model=model, k=knn_k)
    return {"features": feats, "scalars": {k: v.numpy() for k, v in scalars.items()}}


def run_uncertainty(
    run: str | os.PathLike,
    *,
    out: str | os.PathLike | None = None,
    settings: UncertaintySettings | None = None,
    checkpoint: str = "last",
    data_dir: str | None = None,
    device: str = "auto",
    progress: bool = False,
    figures: bool = True,
) -> dict[str, Any]:
    """Measure every uncertainty scalar of ``run`` (see the module doc); return and write the report."""
    settings = settings or UncertaintySettings()
    dev = resolve_device(device)
    config, method = load_run(run, checkpoint, dev)
    if data_dir is not None:
        config = dataclasses.replace(config, data_dir=data_dir)
    out_dir = check_out_path(out if out is not None else Path(run) / "uncertainty")
    info = dataset_info(config.dataset, image_size=config.image_size, count_classes=False)
    size = config.image_size or info.image_size
    g = torch.Generator().manual_seed(settings.seed)
    x, labels = _unit_images(config, info, size, settings.limit, settings.seed)
    bank_set, _, num_classes = build_eval_sets(config)
    bank_labels = dataset_labels(bank_set)
    keep = subset_indices(bank_labels, min(settings.bank_size, len(bank_labels)), settings.seed + 1)
    loader = torch.utils.data.DataLoader(narrow(bank_set, keep), batch_size=settings.batch_size)
    bank = extract_features(method, loader, dev, progress=progress, desc="bank")
    method.eval()
    encode = _Encoder(method, info, dev, settings.batch_size)
    min_area = config.crop_min_scale or 0.2
    flips = bool(info.flips)
    model = method if hasattr(method, "likelihood") else None
    measure = {"bank": bank, "views": settings.views, "min_area": min_area, "flips": flips, "g": g}
    conditions = [(c, s) for c in settings.corruptions for s in settings.severities]
    bar = progress_bar(total=len(conditions) + 2, enabled=progress, desc="uncertainty", unit="condition")
    clean = _measure(encode, x, model=model, knn_k=settings.knn_k, **measure)
    bar.update()
    crops = torch.stack([_crop(image, _uniform(g, *settings.crop_area), 1.0, g, False) for image in x])
    cropped = _measure(encode, crops, model=model, knn_k=settings.knn_k, **measure)
    bar.update()
    corrupted: dict[str, dict[int, dict[str, Any]]] = {}
    for name, severity in conditions:
        xc = torch.stack([corrupt(image, name, severity, generator=g) for image in x])
        corrupted.setdefault(name, {})[severity] = _measure(
            encode, xc, model=model, knn_k=settings.knn_k, **measure
        )
        bar.update()
    bar.close()
    report = _report(config, settings, clean, cropped, corrupted, bank, labels, num_classes, run, checkpoint)
    _write(out_dir, report, figures)
    return report


def _knn_errors(
    bank, test_z, labels, num_classes: int, k: int, temperature: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per test image: does the run's kNN classifier err; is the nearest neighbour's label wrong."""
    pred = knn_predict(
        bank["z"], bank["labels"], test_z, num_classes, k=min(k, len(bank["z"])), temperature=temperature
    )
    nearest = knn_predict(bank["z"], bank["labels"], test_z, num_classes, k=1, temperature=temperature)
    return (pred != labels).numpy(), (nearest != labels).numpy()


def _report(config, settings, clean, cropped, corrupted, bank, labels, num_classes, run, checkpoint) -> dict:
    errors, nn_wrong = _knn_errors(
        bank, clean["features"]["z"], labels, num_classes, config.knn_k, config.knn_temperature
    )
    scalars: dict[str, dict[str, Any]] = {}
    curves: dict[str, Any] = {}
    for name, values in clean["scalars"].items():
        per_corruption, means = {}, {}
        for corruption, by_severity in corrupted.items():
            levels = [0, *settings.severities]
            columns = [values] + [by_severity[s]["scalars"][name] for s in settings.severities]
            severity = np.concatenate([np.full(len(values), lvl) for lvl in levels])
            per_corruption[corruption] = spearman(np.concatenate(columns), severity)
            means[corruption] = [float(np.mean(c)) for c in columns]
        rhos = [r for r in per_corruption.values() if not math.isnan(r)]
        coverage, risk = risk_coverage(values, errors)
        curves[name] = risk
        scalars[name] = {
            "kind": "posterior" if name in _POSTERIOR else "free proxy",
            "spearman": float(np.mean(rhos)) if rhos else float("nan"),
            "crop_more_uncertain": fraction_higher(cropped["scalars"][name], values),
            "r_auroc": r_auroc(values, nn_wrong),
            "aurc": aurc(values, errors),
            "spearman_per_corruption": per_corruption,
            "severity_means": means,
        }
    report: dict[str, Any] = {
        "run": str(run),
        "checkpoint": checkpoint,
        "method": config.method,
        "dataset": config.dataset,
        "settings": dataclasses.asdict(settings),
        "n_test": len(labels),
        "bank_size": len(bank["z"]),
        "knn_error": float(errors.mean()),
        "nearest_neighbour_error": float(nn_wrong.mean()),
        "aurc_oracle": aurc(errors.astype(float), errors),  # the errors rejected first: the floor
        "aurc_random": float(errors.mean()),
        "scalars": scalars,
        "risk_coverage": {"coverage": coverage.tolist(), "risk": {k: v.tolist() for k, v in curves.items()}},
    }
    if "scale" in clean["features"]:
        report["per_dim_variance"] = {
            "clean": clean["features"]["scale"].square().mean(0).tolist(),
            **{
                c: {str(s): by[s]["features"]["scale"].square().mean(0).tolist() for s in settings.severities}
                for c, by in corrupted.items()
            },
        }
    return report


def markdown_table(report: dict[str, Any]) -> str:
    """One row per scalar: Spearman with severity, crop test, R-AUROC, AURC."""
    lines = [
        f"Uncertainty of {report['method']} on {report['dataset']} ({report['n_test']} test images; "
        f"kNN error {report['knn_error']:.3f}, "
        f"nearest neighbour wrong {report['nearest_neighbour_error']:.3f}; "
        f"AURC oracle {report['aurc_oracle']:.3f}, random {report['aurc_random']:.3f})",
        "",
        "| scalar | kind | Spearman rho with severity | crop more uncertain | R-AUROC | AURC |",
        "|---|---|---|---|---|---|",
    ]
    for name, m in report["scalars"].items():
        lines.append(
            f"| {name} | {m['kind']} | {m['spearman']:.3f} | {m['crop_more_uncertain']:.3f} | "
            f"{m['r_auroc']:.3f} | {m['aurc']:.4f} |"
        )
    return "\n".join(lines) + "\n"


def reading(report: dict[str, Any]) -> str:
    """One line: the best posterior scalar against the best free proxy, per metric."""
    scalars = report["scalars"]
    post = [n for n, m in scalars.items() if m["kind"] == "posterior"]
    free = [n for n, m in scalars.items() if m["kind"] != "posterior"]
    if not post:
        return "reading: this method has no posterior; the free proxies above are all it offers."
    parts = []
    for metric in ("spearman", "crop_more_uncertain", "r_auroc", "aurc"):
        sign = -1.0 if metric == "aurc" else 1.0  # AURC: lower is better

        def goodness(n: str, metric: str = metric, sign: float = sign) -> float:
            v = scalars[n][metric]
            return -math.inf if math.isnan(v) else sign * v

        p, f = max(post, key=goodness), max(free, key=goodness)
        verdict = "above" if goodness(p) > goodness(f) else "not above"
        parts.append(f"{metric} {p} {scalars[p][metric]:.3f} vs {f} {scalars[f][metric]:.3f} ({verdict})")
    return "reading: the best posterior scalar against the best free proxy: " + "; ".join(parts) + "."


def _write(out_dir: Path, report: dict[str, Any], figures: bool) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(json_safe(report), out_dir / "uncertainty.json")
    (out_dir / "uncertainty.md").write_text(markdown_table(report) + "\n" + reading(report) + "\n")
    if figures:
        from .uncertainty_plots import plot_per_dim_variance, plot_risk_coverage, plot_severity_curves

        plot_severity_curves(report, out_dir / "figures" / "severity.png")
        plot_risk_coverage(report, out_dir / "figures" / "risk_coverage.png")
        if "per_dim_variance" in report:
            plot_per_dim_variance(report, out_dir / "figures" / "per_dim_variance.png")
