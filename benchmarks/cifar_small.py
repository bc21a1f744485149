"""A CPU-sized real-data run: VJE with the small CNN on an 8,000-image CIFAR-10 subset.

Trains through the same trainer as ``pyro-vje train`` and prints weighted kNN accuracy
(k=30, T=0.1) of VJE's z and mu after each evaluation, next to two baselines measured
on the same split that need no training: raw normalized pixels and the randomly
initialized encoder. The shared data README notes that a few epochs of self-supervised
training on a CPU do not beat random features at this scale, so the question this
script answers is how many epochs it takes.

    python benchmarks/cifar_small.py                                  # ../shared/data/cifar10, 30 epochs
    python benchmarks/cifar_small.py --epochs 5 --json out.json --data-dir DIR

Writes the run directory (metrics, figures, checkpoints) under --out and, with --json,
the table as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pyro_vje.runs import read_metrics
from pyro_vje.training import TrainConfig, resolve_device, train

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import provenance  # noqa: E402  (benchmarks/provenance.py)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cifar10"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA), help="CIFAR-10 ImageFolder tree")
    parser.add_argument("--subset", type=int, default=8000, help="class-balanced training images")
    parser.add_argument("--eval-subset", type=int, default=2000, help="class-balanced test images")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.05, help="for batch 256 (the paper's)")
    parser.add_argument("--df", type=float, default=3.0)
    parser.add_argument("--beta", type=float, default=1.0)
    parser.add_argument("--num-workers", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default="runs/bench-cifar-small", help="run directory (must not exist)")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if not Path(args.data_dir).is_dir():
        parser.error(f"--data-dir {args.data_dir!r} not found (a CIFAR-10 ImageFolder tree)")

    config = TrainConfig(
        dataset="cifar10",
        data_dir=args.data_dir,
        subset=args.subset,
        eval_subset=args.eval_subset,
        cache=True,
        arch="small_cnn",
        hidden=128,
        df=args.df,
        beta=args.beta,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup_epochs=min(2, args.epochs - 1),
        eval_every=args.eval_every,
        num_workers=args.num_workers,
        device=args.device,
        out=args.out,
        progress=not args.no_progress,
        tensorboard=False,
    )
    results = train(config)
    rows = [r for r in read_metrics(Path(args.out) / "metrics.jsonl") if "knn_z" in r]
    print(
        f"\nCIFAR-10 subset: {args.subset} train / {args.eval_subset} test images, small CNN, "
        "weighted kNN k=30"
    )
    print(f"  raw pixels (normalized)        {results['knn_raw_pixels']:.4f}")
    print(f"  random-init encoder z          {results['knn_z_random_init']:.4f}")
    print(f"  {'epoch':>5} {'VJE z':>8} {'VJE mu':>8} {'var mean':>9} {'z rank':>7} {'s/epoch':>8}")
    for r in rows:
        print(
            f"  {r['epoch']:>5} {r['knn_z']:>8.4f} {r['knn_mu']:>8.4f} {r['var_mean']:>9.3f} "
            f"{r['z_rank']:>7.1f} {r['epoch_seconds']:>8.1f}"
        )
    out = {
        "command": "python benchmarks/cifar_small.py " + " ".join(argv if argv is not None else []),
        **provenance(resolve_device(config.device)),
        "knn_raw_pixels": results["knn_raw_pixels"],
        "knn_z_random_init": results["knn_z_random_init"],
        "curve": [
            {k: r[k] for k in ("epoch", "knn_z", "knn_mu", "var_mean", "var_cv", "z_rank", "loss")}
            for r in rows
        ],
        "train_seconds": results["train_seconds"],
        "config": config.to_dict(),
    }
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
