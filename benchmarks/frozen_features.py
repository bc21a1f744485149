"""Which frozen random encoder keeps the information a one-class score needs? (issue 9)

The CIFAR-10 CPU one-class preset trains VJE's posterior over a small CNN kept at its
random initialization (docs/scoring.md). This measures, with no training at all, what
such an encoder's embeddings know about each normal class, on the **validation** split
that ``benchmarks/one_class_study.py`` carves from the training data (500 held-out
images of the class against 1,000 of the other classes; the bank is the 1,000 training
images of the class the preset fits). For each class, each normalization (``--norms``),
each width (``--widths``) and each initialization seed it prints the AUROC of the mean
distance to the 5 nearest bank embeddings, cosine (what the directional likelihood
sees) and Euclidean (what also sees the norm), next to the same two kNN scores on raw
pixels; then the mean and the worst class of each.

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/frozen_features.py --data-dir ../shared/data/cifar10 \\
        --norms group,none --widths 32-64-128,64-128-256 --seeds 0,1 --json frozen_features.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bn_centering import knn_aurocs  # noqa: E402
from benchmarks.one_class_study import load_splits  # noqa: E402
from benchmarks.provenance import provenance  # noqa: E402
from pyro_vje.methods.build import module_local_params  # noqa: E402
from pyro_vje.networks.encoders import NORMS, SmallCNN  # noqa: E402


@torch.no_grad()
def embed(net: torch.nn.Module, x: torch.Tensor, batch: int = 250) -> torch.Tensor:
    return torch.cat([net(chunk) for chunk in x.split(batch)]).double()


def measure(args, c: int) -> dict[str, dict[str, float]]:
    data = load_splits(args, c)
    bank = data["fit"][0]
    x = torch.cat([data["val_in"][0], data["val_out"][0]])
    inlier = np.arange(len(x)) < len(data["val_in"][0])
    out = {"raw": knn_aurocs(bank.flatten(1).double(), x.flatten(1).double(), inlier, args.k)}
    for norm in args.norms:
        for widths in args.widths:
            for seed in args.seeds:
                torch.manual_seed(seed)
                net = SmallCNN(3, widths, norm=norm).eval()
                name = f"{norm}_{'-'.join(map(str, widths))}_seed{seed}"
                out[name] = knn_aurocs(embed(net, bank), embed(net, x), inlier, args.k)
    return out


def summarize(results: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """{encoder_metric: {"mean": m, "min": worst class}} over the classes measured."""
    first = next(iter(results.values()))
    out = {}
    for name, metrics in first.items():
        for metric in metrics:
            v = np.array([r[name][metric] for r in results.values()])
            out[f"{name}_{metric}"] = {"mean": float(v.mean()), "min": float(v.min())}
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True, help="CIFAR-10 ImageFolder root")
    p.add_argument("--classes", default="0,1,2,3,4,5,6,7,8,9")
    p.add_argument("--norms", default="group,none", help=f"comma-separated, from {NORMS}")
    p.add_argument("--widths", default="32-64-128", help="comma-separated channel lists, e.g. 32-64-128")
    p.add_argument("--seeds", default="0", help="initialization seeds of the encoder")
    p.add_argument("--subset", type=int, default=1000, help="bank: training images of the class")
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--seed", type=int, default=0, help="the split's seed (as one_class_study.py)")
    p.add_argument("--cache-dir", default="/tmp/study/cache", help="decoded CIFAR-10 arrays")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    args.norms = args.norms.split(",")
    unknown = [n for n in args.norms if n not in NORMS]
    if unknown:
        p.error(f"--norms: unknown {unknown}; choose from {NORMS}")
    args.widths = [tuple(int(w) for w in spec.split("-")) for spec in args.widths.split(",")]
    args.seeds = [int(s) for s in args.seeds.split(",")]
    # what load_splits reads: the study's validation split; the test subset is built but unused here
    args.dataset, args.augment, args.val_in, args.val_out = "cifar10", "crop", 500, 1000
    args.eval_subset = 2000
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    results = {}
    for c in (int(x) for x in args.classes.split(",")):
        results[str(c)] = measure(args, c)
        cells = (f"{n}:{m}={v:.3f}" for n, r in results[str(c)].items() for m, v in r.items())
        print(f"class {c} " + " ".join(cells), flush=True)
    summary = summarize(results)
    for name, s in summary.items():
        print(f"{name:36s} mean {s['mean']:.3f}  worst class {s['min']:.3f}")
    if args.json:
        record = {"args": vars(args), "provenance": provenance(), "seconds": time.perf_counter() - t0}
        Path(args.json).write_text(json.dumps({**record, "classes": results, "summary": summary}, indent=1))
    return {"classes": results, "summary": summary}


if __name__ == "__main__":
    with module_local_params():
        main()
