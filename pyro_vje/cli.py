"""The ``pyro-vje`` command line (also ``python -m pyro_vje``): train, evaluate, embed.

``pyro-vje train`` with no arguments trains VJE with the small CNN on
scikit-learn's digits (no download, about two minutes on a CPU). A config file
(``--config configs/cifar10_resnet18.yaml``) sets the paper's protocols;
any flag overrides it. Under torchrun: ``torchrun --nproc_per_node=4 -m pyro_vje train ...``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import sys
import typing
from pathlib import Path
from typing import Any

from .config import (
    GROUPS,
    TrainConfig,
    config_from_dict,
    known_keys,
    load_config_file,
)
from .methods.registry import METHODS

# Light imports only (no torch): ``pyro-vje --help`` must answer at once. Each command
# imports what it needs when it runs.
from .protocols.presets import (
    COMPARE_DEFAULT,
    COMPARE_PRESETS,
    LIKELIHOOD_ONLY_SETTINGS,
    PAPER_BETAS,
    PAPER_DFS,
    one_class_preset,
)


def _float(text: str) -> float:
    return float(text)  # accepts "inf"


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag or value is one line (train's usage alone is 45 lines)."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _config_settings() -> dict[str, list[tuple[dataclasses.Field, Any]]]:
    """Every flat config key as (field, type hint), by CLI section, in the order of the fields.

    The shared settings come from :class:`TrainConfig`, each method's own options from
    its :class:`~pyro_vje.methods.MethodOptions` in :data:`~pyro_vje.methods.METHODS` (a key two methods
    share gets one flag).
    """
    sections: dict[str, list[tuple[dataclasses.Field, Any]]] = {group: [] for group in GROUPS}
    seen: set[str] = set()

    def add(cls: type, group_of) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name in seen or f.name == "options":
                continue
            seen.add(f.name)
            sections.setdefault(group_of(f), []).append((f, hints[f.name]))

    add(TrainConfig, lambda f: f.metadata["group"])
    for name, entry in METHODS.items():
        add(entry.options, lambda f, options=entry.options, name=name: options.group or f"{name} options")
    return sections


def _add_config_flags(parser: argparse.ArgumentParser, defaults: dict[str, Any] | None = None) -> None:
    """One flag per config key, with the help text of its field (``metadata["help"]``).

    ``defaults`` (a preset, a config file) replace the fields' defaults in the help
    text, so that ``--help`` shows the values a run would start from.
    """
    defaults = defaults or {}
    for title, settings in _config_settings().items():
        group = parser.add_argument_group(title)
        for f, hint in settings:
            flag = "--" + f.name.replace("_", "-")
            value = defaults.get(f.name, f.default)
            shown = "inf" if isinstance(value, float) and math.isinf(value) else value
            help_text = f.metadata["help"]
            if f.name == "method":  # the registry's names, never a list written here
                help_text += ": " + ", ".join(METHODS)
            if value is not None or not _SAYS_ITS_DEFAULT.search(help_text):
                help_text += f" (default: {shown})"
            kind = ([a for a in typing.get_args(hint) if a is not type(None)] or [hint])[0]
            if kind is bool:
                group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
            else:
                convert = {int: int, float: _float, str: str}[kind]
                group.add_argument(flag, type=convert, default=None, metavar=f.name.upper(), help=help_text)


#: a help text that already says what an unset value means ("(default: the data set's)",
#: "(unset: 512 for small_cnn, ...)"): no "(default: None)" after it.
_SAYS_ITS_DEFAULT = re.compile(r"\((default|unset)\b")
#: what ``compare`` changes in the shared defaults (its --help shows them).
COMPARE_DEFAULTS: dict[str, Any] = {"linear_probe": "fast"}


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    keys = {f.name for settings in _config_settings().values() for f, _ in settings}
    return {k: v for k, v in vars(args).items() if k in keys and v is not None}


def _train_config(args: argparse.Namespace) -> TrainConfig:
    values: dict[str, Any] = {}
    if args.resume:
        if not args.out:
            raise ValueError("--resume needs --out RUN_DIR (the run to continue)")
        from .runs import read_run_config

        values.update(read_run_config(args.out))
    elif args.config:
        values.update(load_config_file(args.config))
    values.update(_overrides(args))
    return config_from_dict(values).validate()


def _protocol_values(values: dict[str, Any], flags: dict[str, Any]) -> dict[str, Any]:
    """Defaults <- the one-class preset (paper's, or the data set's own) <- --config <- flags.

    For another ``--method`` a preset's VJE settings (beta, nu, the inference network) and the
    encoder recipe chosen for VJE's likelihood (``LIKELIHOOD_ONLY_SETTINGS``: a frozen encoder
    without normalization) are left out: the preset's budget, architecture and views hold for
    every method, which trains its whole encoder."""
    dataset = flags.get("dataset", values.get("dataset", TrainConfig.dataset))
    method = flags.get("method", values.get("method", TrainConfig.method))
    likelihood = method in METHODS and METHODS[method].likelihood
    known = set(known_keys(method)) - (set() if likelihood else set(LIKELIHOOD_ONLY_SETTINGS))
    preset = {k: v for k, v in one_class_preset(dataset).items() if k in known}
    merged = {**preset, **values, **flags}
    merged.pop("normal_class", None)
    merged.setdefault("eval_every", merged.get("epochs", TrainConfig.epochs))
    return merged


def _protocol_config(args: argparse.Namespace) -> TrainConfig:
    values = load_config_file(args.config) if args.config else {}
    return config_from_dict(_protocol_values(values, _overrides(args))).validate()


def _help_defaults(command: str, argv: list[str]) -> dict[str, Any]:
    """For ``--help``: the settings ``command`` would start from (its preset, ``--config``'s file)."""

    def flag(name: str) -> str | None:
        for i, arg in enumerate(argv):
            if arg == name and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
        return None

    values: dict[str, Any] = {}
    if flag("--config"):
        try:
            values = load_config_file(flag("--config"))
        except (OSError, ValueError):  # the run itself reports a bad file
            values = {}
    if command in ("one-class", "sweep"):
        flags = {"dataset": flag("--dataset")} if flag("--dataset") else {}
        values = _protocol_values(values, flags)
    return values


def _int_list(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected class indices like 0,1,2; got {text!r}") from None


def _float_list(text: str) -> list[float]:
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 0.5,1,2; got {text!r}") from None


def _protocol_out(args: argparse.Namespace, kind: str, config: TrainConfig) -> Path:
    from datetime import datetime

    if args.out:
        return Path(args.out)
    return Path("runs") / f"{kind}-{config.dataset}-{config.arch}-{datetime.now():%Y%m%d-%H%M%S}"


def _cmd_one_class(args: argparse.Namespace) -> int:
    from .protocols.one_class import run_one_class

    config = _protocol_config(args)
    out = _protocol_out(args, "one-class", config)
    results = run_one_class(
        config,
        out,
        args.classes,
        posterior_samples=args.posterior_samples,
        tta_views=args.tta,
        bn_stats=args.bn_stats,
        score_epochs=args.score_epochs or (),
    )
    print((out / "results.md").read_text())
    if args.score_epochs:
        print((out / "results_epochs.md").read_text())
    print(f"results: {out / 'results.json'}; figures: {out / 'figures'}")
    return 0 if results else 2


def _cmd_sweep(args: argparse.Namespace) -> int:
    from .protocols.sweep import run_sweep

    config = _protocol_config(args)
    out = _protocol_out(args, "sweep", config)
    run_sweep(
        config,
        out,
        args.betas,
        args.dfs,
        args.classes,
        posterior_samples=args.posterior_samples,
        tta_views=args.tta,
    )
    print((out / "sweep.md").read_text())
    print(f"results: {out / 'sweep.json'}; figures: {out / 'figures'}")
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from .protocols.ood_detection import markdown_table, reading, run_ood

    results = run_ood(
        args.run,
        args.ood,
        out=args.out,
        checkpoint=args.checkpoint,
        data_dir=args.data_dir,
        ood_root=args.ood_root,
        download=args.download,
        limit=args.limit,
        posterior_samples=args.posterior_samples,
        tta_views=args.tta,
        device=args.device,
        bank_size=args.bank_size,
        bn_stats=args.bn_stats,
        progress=not args.no_progress,
        skip_unreadable=args.skip_unreadable or None,
    )
    print(markdown_table(results))
    print(reading(results))
    return 0


def _severity_list(text: str) -> list[int]:
    """``1-5``, ``3`` or ``1,3,5`` as a list of severities."""
    try:
        if "-" in text:
            lo, hi = (int(t) for t in text.split("-", 1))
            return list(range(lo, hi + 1))
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected severities like 1-5 or 1,3,5; got {text!r}") from None


def _add_uncertainty_parser(sub, run_args) -> None:
    un = sub.add_parser(
        "uncertainty",
        help="does the run's uncertainty rise where its embedding is less reliable? (severity, crops, "
        "R-AUROC, AURC)",
        description="Measure every uncertainty scalar of a finished run (the posterior's: entropy, mean "
        "variance, the cross-view NLL; and free proxies every method has: 1/||z||, kNN distance, the spread "
        "over random views) against corruption severity (Spearman rho), random crops (how often a crop is "
        "more uncertain), the nearest neighbour's label (R-AUROC) and selective kNN classification (AURC). "
        "Writes uncertainty.json, uncertainty.md and figures/ into RUN/uncertainty or --out.",
    )
    run_args(un)
    un.add_argument(
        "--corruptions",
        default="all",
        help="comma-separated corruptions: gaussian_noise, gaussian_blur, contrast, jpeg_compression, "
        "pixelate (CIFAR-10-C's severities; default: all)",
    )
    un.add_argument(
        "--severities", type=_severity_list, default=[1, 2, 3, 4, 5], help="e.g. 1-5 (default) or 1,3,5"
    )
    un.add_argument("--limit", type=int, default=1000, metavar="N", help="class-balanced test images (1000)")
    un.add_argument(
        "--bank-size", type=int, default=10000, metavar="N", help="training images of the kNN bank (10000)"
    )
    un.add_argument("--views", type=int, default=4, metavar="T", help="random views per image (4)")
    un.add_argument("--seed", type=int, default=0, help="seed of the subsets, views, crops and noise")
    un.add_argument("--out", metavar="DIR", help="write here instead of RUN/uncertainty")
    un.set_defaults(func=_cmd_uncertainty)


def _cmd_uncertainty(args: argparse.Namespace) -> int:
    from .protocols.uncertainty import UncertaintySettings, markdown_table, reading, run_uncertainty

    settings = UncertaintySettings(
        corruptions=UncertaintySettings.corruptions if args.corruptions == "all" else args.corruptions,
        severities=tuple(args.severities),
        limit=args.limit,
        bank_size=args.bank_size,
        views=args.views,
        seed=args.seed,
    )
    report = run_uncertainty(
        args.run,
        out=args.out,
        settings=settings,
        checkpoint=args.checkpoint,
        data_dir=args.data_dir,
        device=args.device,
        progress=not args.no_progress,
    )
    print(markdown_table(report))
    print(reading(report))
    return 0


def _cmd_check_data(args: argparse.Namespace) -> int:
    from .data.unreadable import image_paths, scan_images

    unreadable = 0
    for root in args.folders:
        checked, bad = scan_images(image_paths(root))
        for path, reason in bad:
            print(f"{path}: {reason}")
        print(f"{root}: checked {checked} image files, {f'{len(bad)} unreadable' if bad else 'all readable'}")
        unreadable += len(bad)
    if unreadable:
        print("leave them out of a run with --skip-unreadable (skip_unreadable: true), or delete them")
    return 1 if unreadable else 0


def _print_results(results: dict[str, Any], method: str = "vje", dataset: str = "digits") -> None:
    name = METHODS[method].title if method in METHODS else method
    rows = [
        ("knn_raw_pixels", "raw pixels (no training)"),
        ("knn_z_random_init", "random-init encoder z"),
        ("knn_z", f"{name} z"),
        ("knn_mu", f"{name} mu"),
        ("linear_z", f"{name} z, linear probe"),
        ("linear_mu", f"{name} mu, linear probe"),
    ]
    print("\naccuracy (top-1) on the evaluation split:")
    for key, label in rows:
        if key in results:
            print(f"  {label:<28}{results[key]:.4f}")
    if "var_mean" in results:
        print(
            f"posterior sigma^2: mean {results['var_mean']:.3f}, "
            f"CV across dimensions {results['var_cv']:.3f}; "
            f"effective rank z {results.get('z_rank', float('nan')):.1f}, "
            f"mu {results.get('mu_rank', float('nan')):.1f}"
        )
    if "train_seconds" in results:
        print(
            f"trained {results['epochs']} epochs in {results['train_seconds']:.1f} s; "
            f"run: {results['run_dir']}"
        )
    reading = _reading(results, dataset)
    if reading:
        print(reading)


def _reading(results: dict[str, Any], dataset: str = "digits") -> str | None:
    """One line on what the numbers above mean for a run on ``dataset`` (docs/training.md,
    "Reading the output")."""
    from .data.datasets import DATASET_INFO

    z, mu = results.get("knn_z"), results.get("knn_mu")
    if z is None or mu is None:
        return None
    parts = []
    random_init = results.get("knn_z_random_init")
    if random_init is not None:
        above = [name for name, value in (("z", z), ("mu", mu)) if value > random_init]
        if len(above) == 2:
            parts.append("z and mu beat the random-init encoder, so training learned")
        elif above:
            parts.append(f"only {above[0]} beats the random-init encoder: train longer (--epochs)")
        else:
            parts.append("z and mu are not above the random-init encoder yet: train longer (--epochs)")
    raw = results.get("knn_raw_pixels")
    if raw is not None and raw >= max(z, mu):
        reading = DATASET_INFO[dataset].raw_pixels_reading if dataset in DATASET_INFO else None
        if reading:
            parts.append(reading)
        else:
            parts.append(
                f"raw pixels still beat z and mu: on {dataset} a trained encoder should pass them, "
                "train longer (--epochs)"
            )
    if "var_cv" in results:
        parts.append("sigma^2 CV = spread of posterior variances across dimensions")
    if "z_rank" in results:
        parts.append("effective rank = dimensions in use (small: collapse)")
    return "reading: " + "; ".join(parts) + "."


def _cmd_train(args: argparse.Namespace) -> int:
    from .training import train

    config = _train_config(args)
    results = train(config, resume=args.resume)
    if results:  # rank 0
        _print_results(results, config.method, config.dataset)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=2, default=str)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from torch.utils.data import DataLoader

    from .runs import load_run
    from .training import evaluate_method, resolve_device
    from .training.loaders import build_eval_sets

    device = resolve_device(args.device)
    config, method = load_run(args.run, args.checkpoint, device)
    updates = {
        k: v for k, v in (("data_dir", args.data_dir), ("eval_subset", args.eval_subset)) if v is not None
    }
    config = dataclasses.replace(config, **updates)
    bank_set, test_set, num_classes = build_eval_sets(config)
    loaders = [DataLoader(ds, batch_size=256, num_workers=args.num_workers) for ds in (bank_set, test_set)]
    results = evaluate_method(
        method,
        *loaders,
        num_classes,
        device,
        progress=not args.no_progress,
        knn_k=config.knn_k,
        knn_temperature=config.knn_temperature,
        probe=args.linear_probe,
        seed=config.seed,
    )
    _print_results(results, config.method, config.dataset)
    from .evaluation.diagnostics import DIAGNOSTIC_MEANINGS

    print("diagnostics:")
    for key, value in results.items():
        if key not in ("knn_z", "knn_mu", "linear_z", "linear_mu"):
            meaning = DIAGNOSTIC_MEANINGS.get(key, "")
            print(f"  {key}: {value:.4f}" + (f"  ({meaning})" if meaning else ""))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


def _cmd_embed(args: argparse.Namespace) -> int:
    from .runs import embed_dataset, export_backbone, load_run, save_npz
    from .training import resolve_device

    device = resolve_device(args.device)
    config, method = load_run(args.run, args.checkpoint, device)
    if args.backbone:
        print(f"backbone weights -> {export_backbone(method, config, args.backbone)}")
    if args.output:
        arrays = embed_dataset(
            method,
            config,
            args.split,
            dataset=args.dataset,
            data_dir=args.data_dir,
            download=args.download,
            device=device,
            num_workers=args.num_workers,
            progress=not args.no_progress,
            subset=args.subset,
        )
        meta = {
            "run": str(args.run),
            "split": args.split,
            "subset": args.subset,
            "dataset": args.dataset or config.dataset,
            "config": config.to_dict(),
        }
        path = save_npz(arrays, args.output, meta)
        shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in arrays.items())
        print(f"features -> {path} ({shapes})")
    if not (args.backbone or args.output):
        raise ValueError("nothing to do: give --output FEATURES.npz and/or --backbone WEIGHTS.pt")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from .protocols.compare import Variant, compare, parse_variant

    base: dict[str, Any] = {}
    if args.config:
        base.update(load_config_file(args.config))
    base.update(_overrides(args))
    if "method" in base:
        raise ValueError("compare: name the methods with --methods / --variant, not --method")
    base.pop("out", None)  # each variant's run directory is compare's choice
    if args.out and args.compare_out and Path(args.out) != Path(args.compare_out):
        raise ValueError(
            f"compare: --out {args.out} and --compare-out {args.compare_out} disagree; "
            "give one (both name the comparison's folder)"
        )
    for key, value in COMPARE_DEFAULTS.items():
        base.setdefault(key, value)
    variants: list[Variant] = [parse_variant(name) for name in args.methods.split(",") if name.strip()]
    variants += [parse_variant(spec) for spec in args.variant or []]
    dataset = base.get("dataset", TrainConfig.dataset)
    out = Path(args.compare_out or args.out or f"runs/compare-{dataset}")
    classes = _int_list(args.one_class_classes)
    report = compare(base, variants, out, one_class_classes=classes, isolate=not args.no_isolate)
    print((out / "compare.md").read_text())
    print(f"wrote {out / 'compare.json'}, {out / 'compare.md'}, {out / 'compare_knn.png'}")
    if report["failed"]:
        names = ", ".join(report["failed"])
        count = len(report["failed"])
        print(f"compare: {count} variant(s) failed: {names} (see compare.md)", file=sys.stderr)
        return 1
    return 0


def _run_args(q: argparse.ArgumentParser) -> None:
    """What every command on a finished run takes: the run, its checkpoint, data, device."""
    q.add_argument("run", help="run directory (or a checkpoint file)")
    q.add_argument(
        "--checkpoint",
        default="last",
        choices=("best", "last"),
        help="last (the final weights, what the paper reports) or best (highest kNN of z on the "
        "evaluation split during training: a monitoring aid, biased as a test figure)",
    )
    q.add_argument("--data-dir", help="data folder (default: the run's)")
    q.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    q.add_argument("--num-workers", type=int, default=0, help="data-loading processes")
    q.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _scoring_args(p: argparse.ArgumentParser) -> None:
    """The likelihood's extra scores (VJE): posterior samples and test-time augmentation."""
    p.add_argument(
        "--posterior-samples",
        type=int,
        default=0,
        metavar="K",
        help="also score joint NLL averaged over K posterior samples (default: posterior mean only)",
    )
    p.add_argument(
        "--tta",
        type=int,
        default=0,
        metavar="K",
        help="also score the cross-view NLL averaged over K augmented view pairs",
    )


def _protocol_args(p: argparse.ArgumentParser, shown: dict[str, Any] | None) -> None:
    """What one-class and sweep share: a config file, the classes, the scores, every train flag."""
    p.add_argument("--config", metavar="FILE", help="YAML or JSON config file (flags override it)")
    p.add_argument("--classes", type=_int_list, metavar="0,1,...", help="normal classes (default: all)")
    _scoring_args(p)
    _add_config_flags(p, shown)


def _add_train_parser(sub, shown: dict[str, Any] | None) -> None:
    """``pyro-vje train``: one flag per setting of the config and of every method's options."""
    p = sub.add_parser(
        "train",
        help="train a model (default: VJE on the embedded digits, about two minutes on a CPU)",
        description=(
            "Train a self-supervised model and report kNN accuracy of z and mu next to raw pixels and "
            "the randomly initialized encoder. With no arguments: VJE with a small CNN on scikit-learn's "
            "digits. Paper settings: --config configs/cifar10_resnet18.yaml --data-dir DIR. Every run "
            "writes a directory (--out) with config.json, metrics.csv/jsonl, TensorBoard events, figures, "
            "last.pt/best.pt; --resume --out DIR continues it exactly."
        ),
    )
    p.add_argument("--config", metavar="FILE", help="YAML or JSON config file (flags override it)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    p.add_argument("--json", metavar="PATH", help="also write the final results as JSON to PATH")
    _add_config_flags(p, shown)
    p.set_defaults(func=_cmd_train)


def _add_run_parsers(sub) -> None:
    """``evaluate`` and ``embed``: commands on a finished run."""
    q = sub.add_parser(
        "evaluate",
        help="kNN and linear-probe accuracy of a trained run",
        description="Weighted kNN (k and temperature from the run) and optionally a linear probe on frozen "
        "features z and mu, plus posterior statistics and collapse diagnostics.",
    )
    _run_args(q)
    q.add_argument(
        "--linear-probe",
        default="fast",
        choices=("none", "fast", "full"),
        help="linear probe: fast, full (100 epochs, the paper) or none",
    )
    q.add_argument("--eval-subset", type=int, help="class-balanced subset of the test split")
    q.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    q.set_defaults(func=_cmd_evaluate)

    e = sub.add_parser(
        "embed",
        help="write features (z, posterior mu and scale) of a data set to .npz, or export the backbone",
        description="Encode every image of a split (the test split by default; --split train for the "
        "training images) without augmentation and write z, mu, scale and labels to an .npz file; "
        "--backbone writes the encoder's weights alone.",
    )
    _run_args(e)
    e.add_argument("--output", "-o", metavar="FEATURES.npz", help="where to write the features")
    e.add_argument("--split", default="test", help="split to embed: train, test, ... (default: test)")
    e.add_argument("--dataset", help="another data set to embed (default: the run's)")
    e.add_argument(
        "--subset",
        type=int,
        metavar="N",
        help="embed a class-balanced subset of N images of the split, seeded with the run's seed "
        "(default: every image; all 10,000 CIFAR-10 test images take minutes on a CPU)",
    )
    e.add_argument("--download", action="store_true", help="let torchvision download --dataset")
    e.add_argument("--backbone", metavar="WEIGHTS.pt", help="write the encoder's state_dict here")
    e.set_defaults(func=_cmd_embed)


def _add_protocol_parsers(sub, shown: dict[str, Any] | None) -> None:
    """``one-class`` and ``sweep``: protocols that train a model per normal class."""
    oc = sub.add_parser(
        "one-class",
        help="one-class anomaly detection: a model per normal class, AUROC per score (paper Table 3)",
        description="Train one model per normal class on that class's training images, score the whole "
        "test split with every likelihood / posterior score and a kNN-distance baseline on raw pixels, and "
        "report per-class AUROC, mean and std (results.json, results.md, figures/). Defaults: the paper's "
        "one-class settings (batch 64, lr 5e-6, beta 1, nu 0.5, 800 epochs); with --dataset digits (the "
        "default) a CPU-sized variant (1,500 epochs = 3,000 steps a class, beta 0.1). Rerun the same command "
        "to resume.",
    )
    _protocol_args(oc, shown)
    oc.add_argument(
        "--bn-stats",
        choices=("clean", "train"),
        default="clean",
        help="BatchNorm statistics of the scored model: re-estimated on the normal class's clean "
        "training images (default, docs/scoring.md) or kept from training (augmented views)",
    )
    oc.add_argument(
        "--score-epochs",
        type=_int_list,
        metavar="E1,E2,...",
        help="also score after these epochs: AUROC against training length (results_epochs.md)",
    )
    oc.set_defaults(func=_cmd_one_class)

    sw = sub.add_parser(
        "sweep",
        help="the beta x nu grid of the one-class protocol, with the heatmap of Figure 4",
        description="Run the one-class protocol for every (beta, nu) cell; write sweep.json, sweep.md, "
        "heatmaps and the correlation of AUROC with posterior entropy / variance across cells.",
    )
    sw.add_argument(
        "--betas",
        type=_float_list,
        default=list(PAPER_BETAS),
        metavar="B1,B2,...",
        help="KL weights (default: the paper's 0,0.5,0.75,1,1.25,1.5,2)",
    )
    sw.add_argument(
        "--dfs",
        type=_float_list,
        default=list(PAPER_DFS),
        metavar="NU1,NU2,...",
        help="degrees of freedom (default: the paper's 0.25,0.5,1,2,3,5,10,20)",
    )
    _protocol_args(sw, shown)
    sw.set_defaults(func=_cmd_sweep)


def _add_score_parser(sub, command: str | None) -> None:
    """``pyro-vje score``: out-of-distribution detection with a finished run."""
    if command in (None, "score"):  # the only help text that needs the data modules (torch)
        from .data.ood_sets import OOD_CHOICES
    else:
        OOD_CHOICES = "see pyro-vje score --help"

    sc = sub.add_parser(
        "score",
        help="out-of-distribution detection: a trained run's test split vs other data (AUROC, AUPR, FPR95)",
        description="Score the run's in-distribution test split and each --ood set with every score and "
        f"report AUROC, AUPR and FPR at 95% TPR. OOD sets: {OOD_CHOICES}",
    )
    _run_args(sc)
    sc.add_argument(
        "--ood",
        action="append",
        required=True,
        metavar="SPEC",
        help="an out-of-distribution set (repeatable), e.g. cifar100, svhn, imagefolder:DIR, "
        "gaussian_noise, uniform_noise, blur, invert",
    )
    sc.add_argument("--ood-root", help="folder of the OOD data set (torchvision files or image folders)")
    sc.add_argument("--download", action="store_true", help="let torchvision download the OOD data set")
    sc.add_argument("--limit", type=int, metavar="N", help="score at most N images of each set")
    sc.add_argument(
        "--bank-size",
        type=int,
        default=2000,
        metavar="N",
        help="clean training images for the class scores, the kNN baselines and the BatchNorm "
        "re-estimation (default 2000)",
    )
    sc.add_argument(
        "--bn-stats",
        choices=("clean", "train"),
        default="clean",
        help="BatchNorm statistics: re-estimated on the clean bank (default) or the checkpoint's",
    )
    sc.add_argument(
        "--skip-unreadable",
        action="store_true",
        help="leave out image files PIL cannot read, in the run's data and the OOD sets (default: the run's "
        "setting; otherwise one stops the scoring with an error naming it)",
    )
    sc.add_argument("--out", metavar="DIR", help="write ood.json, ood.md, scores.npz and figures here")
    _scoring_args(sc)
    sc.set_defaults(func=_cmd_score)


def _add_check_data_parser(sub) -> None:
    """``pyro-vje check-data``: the unreadable image files of folders."""
    cd = sub.add_parser(
        "check-data",
        help="list the image files of a folder tree that cannot be read (before a long run)",
        description="Open every image file under each FOLDER with PIL and verify it (headers and compressed "
        "data, no pixel decoding): prints each unreadable file with the reason and a count; exit status 1 "
        "when any is unreadable. A run leaves them out with --skip-unreadable.",
    )
    cd.add_argument(
        "folders", nargs="+", metavar="FOLDER", help="an ImageFolder tree, or any folder of images"
    )
    cd.set_defaults(func=_cmd_check_data)


def _add_compare_parser(sub) -> None:
    """``pyro-vje compare``: methods and ablations under one budget."""
    cp = sub.add_parser(
        "compare",
        help="several methods / VJE ablations under one identical budget: compare.json, compare.md, a figure",
        description=(
            "Train every variant with the same seed, data, split, augmentation stream, epochs and batch "
            "(one loader worker at least, so the augmentations do not depend on the method), then write "
            "compare.json, compare.md (kNN of z and mu, linear probe, one-class AUROC on a class subset, "
            "seconds per epoch, peak memory) and compare_knn.png (kNN against epoch with the raw-pixel and "
            "random-init baselines). Rerun the same command to resume: finished variants with an "
            "identical config are reused, a changed config is refused. A variant that fails is listed in "
            "compare.md, the others still run, and the command exits with status 1. Shared flags apply to "
            "every variant."
        ),
    )
    cp.add_argument(
        "--methods",
        default=",".join(COMPARE_DEFAULT),
        metavar="V1,V2,...",
        help=f"variants by name: {', '.join(COMPARE_PRESETS)} (default: {','.join(COMPARE_DEFAULT)})",
    )
    cp.add_argument(
        "--variant",
        action="append",
        metavar="SPEC",
        help="an extra variant NAME:key=value key=value (repeatable), e.g. 'vje-df1:method=vje df=1'",
    )
    cp.add_argument(
        "--one-class-classes",
        default="0,1,2",
        metavar="C1,C2,...",
        help="class subset of the one-class AUROC (empty: skip it; default 0,1,2)",
    )
    cp.add_argument(
        "--compare-out",
        metavar="DIR",
        help="comparison directory, also given as --out (default: runs/compare-<dataset>)",
    )
    cp.add_argument(
        "--no-isolate", action="store_true", help="run the variants in this process (no per-run peak memory)"
    )
    cp.add_argument("--config", metavar="FILE", help="YAML or JSON config of the shared settings")
    _add_config_flags(cp, COMPARE_DEFAULTS)
    for action in cp._actions:
        if action.dest == "out":  # train's --out; here the comparison's folder
            action.help = "comparison directory, as --compare-out (each variant runs in <DIR>/runs/<variant>)"
    cp.set_defaults(func=_cmd_compare)


def build_parser(command: str | None = None, argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The ``pyro-vje`` parser. ``command``: the subcommand that will run (its help text is
    the full one; the others skip what would import torch); ``argv``: for ``--help``'s defaults."""
    argv = argv or []
    shown = _help_defaults(command, argv) if command and {"-h", "--help"} & set(argv) else {}
    parser = _Parser(
        prog="pyro-vje",
        description="Variational Joint Embedding in Pyro: train, evaluate and embed.",
        epilog="Run 'pyro-vje COMMAND --help' for a command's options.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    _add_train_parser(sub, shown if command == "train" else None)
    _add_run_parsers(sub)
    _add_protocol_parsers(sub, shown if command in ("one-class", "sweep") else None)
    _add_score_parser(sub, command)
    _add_uncertainty_parser(sub, _run_args)
    _add_check_data_parser(sub)
    _add_compare_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and not argv[0].startswith("-") else ""
    parser = build_parser(command, argv)
    args = parser.parse_args(argv)
    from .methods.build import module_local_params

    try:
        with module_local_params():  # every command: a method's parameters stay in the method
            return args.func(args)
    except (ValueError, TypeError, FloatingPointError) as err:
        print(f"pyro-vje {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        problem = _out_problem(args, err)
        if problem is None and not isinstance(err, (FileNotFoundError, FileExistsError)):
            raise
        print(f"pyro-vje {args.command}: error: {problem or err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        print(f"pyro-vje {args.command}: {_interrupted(args, err)}", file=sys.stderr)
        return 130


def _out_problem(args: argparse.Namespace, err: OSError) -> str | None:
    """One line for an OS error on the folder the command writes (``--out``, ``--compare-out``):
    the flag, the path that failed and why (``PermissionError`` on /sys, ENOENT on /proc, ...)."""
    if err.filename is None:
        return None
    failed = os.path.abspath(os.fsdecode(err.filename))
    for dest in ("out", "compare_out"):
        value = getattr(args, dest, None)
        if not value:
            continue
        out = os.path.abspath(value)
        if failed == out or out.startswith(failed + os.sep) or failed.startswith(out + os.sep):
            reason = err.strerror or type(err).__name__
            flag = "--" + dest.replace("_", "-")
            failed = os.fsdecode(err.filename)
            return f"{flag} {value}: cannot write {failed} ({reason}); choose another {flag}"
    return None


def _interrupted(args: argparse.Namespace, err: KeyboardInterrupt) -> str:
    """One line for Ctrl-C: where the last checkpoint is and the command that continues."""
    checkpoint = getattr(err, "checkpoint", None)
    run_dir = getattr(err, "run_dir", None)
    if run_dir is None:
        return "interrupted (no run directory was written to yet)"
    if args.command != "train":
        return f"interrupted in {run_dir}; rerun the same {args.command} command to resume it"
    if checkpoint is None:
        return f"interrupted before the first checkpoint of {run_dir}; rerun the same command to restart it"
    return (
        f"interrupted; the last checkpoint is {checkpoint} (epoch {err.epoch}); "
        f"continue with: pyro-vje train --resume --out {run_dir}"
    )


if __name__ == "__main__":
    sys.exit(main())
