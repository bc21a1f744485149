"""``pyro-vje compare``: several methods or variants under one identical budget (issue 8).

Every variant is one training run of the shared trainer with the same base
settings — seed, data set and split, augmentation stream, epochs, batch,
schedule — and only its own overrides on top (its method and that method's
options, or a VJE ablation). Each run lives in ``<out>/runs/<variant>/``; the
comparison writes

* ``compare.json``: the base settings, every variant's config, results and curves;
* ``compare.md``: one table (kNN of z and mu, linear probe, one-class AUROC on a
  named class subset, posterior variance mean/CV where there is one, seconds per
  epoch, peak memory) and the raw-pixel and random-init baselines;
* ``compare_knn.png``: kNN accuracy of z against epoch, one line per variant,
  with the two baselines as horizontal lines.

Same augmentation stream: with ``num_workers = 0`` the augmentations draw from
the global torch RNG, which the methods also draw from (posterior samples,
different initializations of their heads), so two methods would see different
views. The comparison therefore runs at least one loader worker, whose seeds are
a function of (seed, epoch) only (:meth:`~pyro_vje.training.loaders.RunData.set_epoch`).

Rerunning the same command resumes: a finished variant whose config is identical
is reused, an interrupted one continues from its ``last.pt``; a variant whose
config differs is refused, naming the differing fields.

One-class AUROC (frozen features): for each class ``c`` of the named subset, the
test images are scored by their mean cosine distance to the ``k`` nearest training
images of class ``c`` (:func:`~pyro_vje.evaluation.knn_distance`), inliers being the
test images of class ``c``; the table reports the mean AUROC over the subset. This
reads the representation learned on all classes; the paper's protocol (Section
5.3, ``pyro-vje one-class``) trains one model per class instead.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import platform
import resource
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from ..config import TrainConfig, config_from_dict, option_names
from ..evaluation import auroc, extract_features, flatten_pixels, knn_distance
from ..methods.registry import METHODS
from ..runs import atomic_write_json, atomic_write_text, config_differences, read_metrics
from .presets import COMPARE_PRESETS

__all__ = ["PRESETS", "Variant", "compare", "markdown_report", "parse_variant", "plot_knn_curves"]

ENTRY = "compare_entry.json"

PRESETS = COMPARE_PRESETS  # the named variants (protocols/presets.py, read by the CLI without torch)


@dataclass(frozen=True)
class Variant:
    """One run of a comparison: a name (its run directory) and its config overrides."""

    name: str
    overrides: dict[str, Any] = field(default_factory=dict)


def parse_variant(spec: str) -> Variant:
    """``"NAME"`` (a :data:`PRESETS` name) or ``"NAME:key=value key=value ..."``.

    Values are read as YAML scalars (``df=inf`` stays the string ``"inf"``, which the
    config turns into infinity; ``terms=dir,kl`` is a string). A name of
    :data:`PRESETS` with overrides starts from the preset.
    """
    import yaml

    name, _, rest = spec.partition(":")
    name = name.strip()
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"variant {spec!r}: needs a name usable as a directory (no '/')")
    overrides = dict(PRESETS.get(name, {}))
    for pair in rest.split():
        key, eq, value = pair.partition("=")
        if not eq or not key:
            raise ValueError(f"variant {spec!r}: expected key=value pairs after ':', got {pair!r}")
        overrides[key.strip().replace("-", "_")] = yaml.safe_load(value)
    if not rest.strip() and name not in PRESETS:
        raise ValueError(
            f"unknown variant {name!r}: name one of {', '.join(PRESETS)} or give its settings as "
            f"'{name}:method=... key=value'"
        )
    if "method" not in overrides:
        raise ValueError(f"variant {spec!r}: say which method it trains (method=...)")
    return Variant(name, overrides)


def _variant_config(base: dict[str, Any], variant: Variant, out: Path) -> TrainConfig:
    """``base`` + the variant's overrides. A base key that is another method's option (``df`` for
    the baselines, ``proj_dim`` for VJE) does not apply to this variant and is left out."""
    if "method" not in variant.overrides:
        raise ValueError(f"variant {variant.name!r}: its overrides must name the method (method=...)")
    method = variant.overrides["method"]
    others = {name for m in METHODS if m != method for name in option_names(m)}
    own = set(option_names(method))
    shared = {k: v for k, v in base.items() if k in own or k not in others}
    values = {**shared, **variant.overrides, "out": str(out / "runs" / variant.name)}
    values["num_workers"] = max(1, int(values.get("num_workers", 0) or 0))  # module docstring
    values.setdefault("baselines", True)
    try:
        return config_from_dict(values).validate()
    except ValueError as err:
        raise ValueError(f"variant {variant.name!r}: {err}") from err


# ------------------------------------------------------------------ one variant
def _one_class_aurocs(
    bank: dict[str, torch.Tensor], test: dict[str, torch.Tensor], classes: Sequence[int], k: int
) -> dict[str, float]:
    """Mean (and per-class) one-class AUROC of the representations ``z`` and ``mu`` (or of the one
    feature key given, e.g. raw pixels), see the module docstring."""
    out: dict[str, float] = {}
    keys = [k_ for k_ in ("z", "mu", "h") if k_ in bank] or [k_ for k_ in bank if k_ != "labels"]
    for key in keys:
        values = []
        for c in classes:
            members = bank[key][bank["labels"] == c]
            if len(members) == 0:
                raise ValueError(f"one-class AUROC: class {c} has no training images in the bank")
            score = knn_distance(members, test[key], k).numpy()
            inlier = (test["labels"] == c).numpy()
            value = auroc(score[inlier], score[~inlier])
            out[f"one_class_{key}_class{c}"] = value
            values.append(value)
        out[f"one_class_{key}"] = float(sum(values) / len(values))
    return out


def _peak_memory_mib(device: torch.device) -> tuple[float, str]:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "CUDA max allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process peak RSS"


def run_variant(config_values: dict[str, Any], resume: bool, classes: Sequence[int], knn_k: int) -> dict:
    """Train one variant (or continue it) and measure what the comparison reports; write its entry."""
    from ..training.trainer import Trainer

    config = config_from_dict(config_values).validate()
    start = time.time()
    trainer = Trainer(config, resume=resume)
    if trainer.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(trainer.device)
    extra: dict[str, float] = {}
    loaders = (trainer.data.bank_loader, trainer.data.test_loader)
    if classes and not resume:  # the random-init encoder, before any step
        feats = [extract_features(trainer.method, loader, trainer.device) for loader in loaders]
        z_only = [{"z": f["z"], "labels": f["labels"]} for f in feats]
        extra["one_class_z_random_init"] = _one_class_aurocs(*z_only, classes, knn_k)["one_class_z"]
    results = trainer.fit()
    if classes:
        feats = [extract_features(trainer.method, loader, trainer.device) for loader in loaders]
        extra.update(_one_class_aurocs(*feats, classes, knn_k))
        pixels = [flatten_pixels(loader) for loader in loaders]
        raw = [{"pixels": x, "labels": y} for x, y in pixels]
        extra["one_class_raw_pixels"] = _one_class_aurocs(*raw, classes, knn_k)["one_class_pixels"]
    rows = read_metrics(trainer.run_dir / "metrics.jsonl")
    seconds = [r["epoch_seconds"] for r in rows if isinstance(r.get("epoch_seconds"), (int, float))]
    memory, memory_kind = _peak_memory_mib(trainer.device)
    entry = {
        "config": config.to_dict(),
        "results": {k: v for k, v in results.items() if isinstance(v, (int, float, str))},
        "curve": [
            {k: r[k] for k in ("epoch", "knn_z", "knn_mu", "knn_h") if k in r} for r in rows if "knn_z" in r
        ],
        "seconds_per_epoch": sum(seconds) / len(seconds) if seconds else float("nan"),
        "peak_memory_mib": memory,
        "peak_memory_kind": memory_kind,
        "wall_seconds": time.time() - start,
        **extra,
    }
    atomic_write_json(entry, trainer.run_dir / ENTRY)
    return entry


def _child(config_values: dict[str, Any], resume: bool, classes: list[int], knn_k: int, error_path: str):
    # a spawned process inherits "spawn" as its default start method: the run's loader workers
    # would re-import torch at every epoch; fork them, as in a process started from a shell
    mp.set_start_method("fork", force=True)
    try:
        run_variant(config_values, resume, classes, knn_k)
    except BaseException as err:  # reported by the parent
        import traceback

        Path(error_path).write_text(f"{type(err).__name__}: {err}\n\n{traceback.format_exc()}")
        raise


def _run_isolated(config_values: dict[str, Any], resume: bool, classes: Sequence[int], knn_k: int) -> dict:
    """:func:`run_variant` in a fresh process (its own peak memory; nothing leaks between methods).

    A plain (non-daemonic) process, so that the run's data loader can start its workers.
    """
    run_dir = Path(config_values["out"])
    error_path = run_dir.parent / f".{run_dir.name}.error"
    error_path.parent.mkdir(parents=True, exist_ok=True)
    error_path.unlink(missing_ok=True)
    process = mp.get_context("spawn").Process(
        target=_child, args=(config_values, resume, list(classes), knn_k, str(error_path))
    )
    process.start()
    process.join()
    if process.exitcode != 0 or not (run_dir / ENTRY).is_file():
        detail = error_path.read_text() if error_path.is_file() else f"exit code {process.exitcode}"
        raise RuntimeError(f"compare: the run in {run_dir} failed: {detail}")
    return json.loads((run_dir / ENTRY).read_text())


# ------------------------------------------------------------------- the whole
def compare(
    base: dict[str, Any],
    variants: Sequence[Variant],
    out: str | Path,
    *,
    one_class_classes: Sequence[int] = (0, 1, 2),
    isolate: bool = True,
    log=print,
) -> dict[str, Any]:
    """Run ``variants`` under the flat settings ``base`` into ``out``; write the report; return it.

    :param base: flat config keys shared by every variant (``epochs``, ``dataset``, ``seed``, ...).
    :param variants: the runs; names must be unique.
    :param one_class_classes: the named class subset of the one-class AUROC (empty: skip it).
    :param isolate: run each variant in its own process (peak memory per method).
    """
    out = Path(out)
    names = [v.name for v in variants]
    if len(set(names)) != len(names) or not names:
        raise ValueError(f"compare: variant names must be unique and non-empty, got {names}")
    if "out" in base or "method" in base:
        raise ValueError(
            "compare: 'out' and 'method' belong to the comparison and its variants, not the base"
        )
    configs = {v.name: _variant_config(base, v, out) for v in variants}  # every config valid before any run
    entries: dict[str, dict] = {}
    failed: dict[str, str] = {}
    for variant in variants:
        config = configs[variant.name]
        run_dir = Path(config.out)
        now = config.to_dict()
        entry_path = run_dir / ENTRY
        resume = False
        if (run_dir / "config.json").is_file():
            detail = config_differences(run_dir, config)  # "auto" settings resolved as the run did
            if detail:
                raise ValueError(
                    f"compare: {run_dir} was run with a different config ({detail}); "
                    "use another --out or remove that run"
                )
            if entry_path.is_file():
                log(f"[compare] {variant.name}: finished with the same config, reused")
                entries[variant.name] = json.loads(entry_path.read_text())
                continue
            if (run_dir / "last.pt").is_file():
                resume = True
                log(f"[compare] {variant.name}: continuing from {run_dir / 'last.pt'}")
            else:  # created, never checkpointed: start it again
                shutil.rmtree(run_dir)
        log(f"[compare] {variant.name}: training {config.method} for {config.epochs} epochs")
        runner = _run_isolated if isolate else run_variant
        try:
            entries[variant.name] = runner(now, resume, list(one_class_classes), config.knn_k)
        except Exception as err:  # one variant's failure (e.g. a non-finite loss) does not stop the rest
            failed[variant.name] = _failure_line(err)
            log(f"[compare] {variant.name}: FAILED ({failed[variant.name]}); going on with the others")
    report = {
        "base": {k: ("inf" if isinstance(v, float) and math.isinf(v) else v) for k, v in base.items()},
        "variants": {v.name: {**v.overrides} for v in variants},
        "entries": entries,
        "failed": failed,
        "baselines": _baselines(entries),
        "one_class_classes": list(one_class_classes),
        "machine": _machine(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(_json_ready(report), out / "compare.json")
    atomic_write_text(markdown_report(report), out / "compare.md")
    plot_knn_curves(report, out / "compare_knn.png")
    return report


def _failure_line(err: BaseException) -> str:
    """The first line of a variant's error (a child's error carries its traceback below it)."""
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]


def _machine() -> str:
    """CPU model and core count, and the GPU if there is one (for the report's header)."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{os.cpu_count()}-core {model}, torch threads {torch.get_num_threads()}"
    if torch.cuda.is_available():
        text += f", GPU {torch.cuda.get_device_name(0)}"
    return text


def _json_ready(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {k: _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_ready(v) for v in obj]
    return obj


def _baselines(entries: dict[str, dict]) -> dict[str, float]:
    """The training-free baselines, from the first variant that measured them.

    Every variant measures the same ones (same data, seed and encoder initialization);
    ``random_init_spread`` is the largest difference between variants (0 when identical).
    """
    out: dict[str, float] = {}
    for key, source in (
        ("knn_raw_pixels", "results"),
        ("knn_z_random_init", "results"),
        ("one_class_raw_pixels", None),
        ("one_class_z_random_init", None),
    ):
        values = [
            (e["results"] if source else e).get(key)
            for e in entries.values()
            if (e["results"] if source else e).get(key) is not None
        ]
        if values:
            out[key] = values[0]
            if key == "knn_z_random_init":
                out["random_init_spread"] = max(values) - min(values)
    return out


# --------------------------------------------------------------------- reports
def _fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return f"{value:.{digits}f}"
    return "–"


def markdown_report(report: dict[str, Any]) -> str:
    """``compare.md``: one row per variant, then the baselines and the shared settings."""
    base = report["baselines"]
    raw, init = base.get("knn_raw_pixels"), base.get("knn_z_random_init")
    classes = ",".join(map(str, report["one_class_classes"])) or "none"
    lines = [
        "# Comparison at one budget",
        "",
        f"{report['date']}, {report['machine']}. Shared settings: "
        + ", ".join(f"{k}={v}" for k, v in sorted(report["base"].items())),
        "",
        f"| variant | method | kNN z | kNN mu | kNN h | z − raw pixels | z − random init | linear z "
        f"| linear mu | linear h | one-class AUROC z (classes {classes}) | one-class mu | Var mean "
        f"| Var CV | s/epoch | peak MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, e in report["entries"].items():
        r = e["results"]
        knn = r.get("knn_z")
        lines.append(
            "| "
            + " | ".join(
                [
                    name,
                    e["config"]["method"],
                    _fmt(knn),
                    _fmt(r.get("knn_mu")),
                    _fmt(r.get("knn_h")),
                    _fmt(knn - raw if knn is not None and raw is not None else None, 4),
                    _fmt(knn - init if knn is not None and init is not None else None, 4),
                    _fmt(r.get("linear_z")),
                    _fmt(r.get("linear_mu")),
                    _fmt(r.get("linear_h")),
                    _fmt(e.get("one_class_z")),
                    _fmt(e.get("one_class_mu")),
                    _fmt(r.get("var_mean"), 3),
                    _fmt(r.get("var_cv"), 3),
                    _fmt(e.get("seconds_per_epoch"), 2),
                    _fmt(e.get("peak_memory_mib"), 0),
                ]
            )
            + " |"
        )
    failed = report.get("failed") or {}
    if failed:
        lines += ["", "Failed variants (no row above; rerun the same command to retry them):", ""]
        lines += [f"* {name}: {message}" for name, message in failed.items()]
    kinds = {e.get("peak_memory_kind") for e in report["entries"].values()}
    lines += [
        "",
        "Training-free baselines (same data and split; the random-init encoder is the shared "
        "initialization of every variant's backbone):",
        "",
        f"* kNN, raw pixels: {_fmt(raw)}",
        f"* kNN, random-init encoder z: {_fmt(init)}"
        + (
            f" (spread across variants {base['random_init_spread']:.4f})"
            if base.get("random_init_spread")
            else ""
        ),
        f"* one-class AUROC, raw pixels: {_fmt(base.get('one_class_raw_pixels'))}",
        f"* one-class AUROC, random-init encoder z: {_fmt(base.get('one_class_z_random_init'))}",
        "",
        f"Peak memory: {', '.join(sorted(k for k in kinds if k))}. One-class AUROC: frozen features, mean "
        "cosine distance to the k nearest training images of the class (docs/methods.md). "
        "z is each method's encoder output; under VJE's projection head (Section 5.2) z is the "
        "head's output and h the backbone's, the features SimSiam and VICReg report as z.",
        "",
    ]
    return "\n".join(lines)


def plot_knn_curves(report: dict[str, Any], path: str | Path) -> None:
    """kNN accuracy of z against epoch, one line per variant, baselines as horizontal lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name, e in report["entries"].items():
        pts = [(p["epoch"], p["knn_z"]) for p in e["curve"] if p.get("knn_z") is not None]
        if pts:
            ax.plot(*zip(*pts), marker="o", markersize=3, label=name)
    for key, label, style in (
        ("knn_raw_pixels", "raw pixels", "--"),
        ("knn_z_random_init", "random-init encoder", ":"),
    ):
        if report["baselines"].get(key) is not None:
            ax.axhline(report["baselines"][key], color="black", linestyle=style, linewidth=1, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("kNN top-1 accuracy of z")
    ax.set_title("kNN against epoch at one budget")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # nothing to label when every variant failed
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
