"""Does BatchNorm fitted to the normal class erase the directions a one-class score reads? (issue 9)

For each normal class c, a network at initialization (no training: the question is about
the statistics, not the weights) embeds the class's training images (the bank) and a
class-balanced test subset twice: with BatchNorm's default running statistics (mean 0,
variance 1) and with the statistics re-estimated on the bank, as the one-class protocol's
``--bn-stats clean`` does and as training on the class alone does in training mode. For
each it prints:

* ``R_in`` / ``R_out``: the mean resultant length ||mean_i z_i/||z_i|| || of the test
  inliers' / outliers' directions (1: all embeddings point one way; ~0: spread over the
  sphere);
* ``knn_cos`` / ``knn_euclid``: AUROC of the mean distance to the 5 nearest bank
  embeddings, cosine (what the directional likelihood and the protocol's kNN see) or
  Euclidean (what a direction-free score sees);
* ``knn_raw``: the same cosine kNN on raw pixels (the training-free baseline).

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/bn_centering.py --classes 0,1,3,8 \
        --data-dir ../shared/data/cifar10 --json bn_centering.json
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

from benchmarks.one_class_study import auroc_pair, bank_bn, build_model, encode, load_splits  # noqa: E402
from benchmarks.provenance import provenance  # noqa: E402
from pyro_vje.evaluation.knn import knn_distance  # noqa: E402
from pyro_vje.methods.build import module_local_params  # noqa: E402


def direction_concentration(z: torch.Tensor) -> float:
    """Mean resultant length of the rows' directions."""
    return float(torch.nn.functional.normalize(z, dim=1).mean(0).norm())


def euclidean_knn(bank: torch.Tensor, z: torch.Tensor, k: int) -> np.ndarray:
    return torch.cdist(z, bank).topk(k, largest=False).values.mean(1).numpy()


def knn_aurocs(bank: torch.Tensor, z: torch.Tensor, inlier: np.ndarray, k: int) -> dict[str, float]:
    """AUROC of the cosine and the Euclidean kNN distance of ``z`` to ``bank``; ``inlier`` masks z's rows."""
    cos = knn_distance(bank, z, k).numpy()
    euc = euclidean_knn(bank, z, k)
    return {"cos": auroc_pair(cos[inlier], cos[~inlier]), "euclid": auroc_pair(euc[inlier], euc[~inlier])}


def measure(args, c: int) -> dict[str, dict[str, float]]:
    torch.manual_seed(args.seed)
    data = load_splits(args, c)
    model = build_model(args, 3)
    bank_x = data["fit"][0]
    test_x, test_y = data["test"]
    inlier = (test_y == c).numpy()
    raw = knn_distance(bank_x.flatten(1), test_x.flatten(1), args.k).numpy()
    out = {}
    for mode in ("init_stats", "class_stats"):
        net = bank_bn(model, bank_x) if mode == "class_stats" else model
        bank = encode(net, bank_x, "eval")["z"]
        z = encode(net, test_x, "eval")["z"]
        knn = knn_aurocs(bank, z, inlier, args.k)
        out[mode] = {
            "R_in": direction_concentration(z[inlier]),
            "R_out": direction_concentration(z[~inlier]),
            "knn_cos": knn["cos"],
            "knn_euclid": knn["euclid"],
            "knn_raw": auroc_pair(raw[inlier], raw[~inlier]),
        }
    return out


def main(argv=None) -> dict[str, dict[str, dict[str, float]]]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True, help="CIFAR-10 ImageFolder root")
    p.add_argument("--classes", default="0,1,3,8")
    p.add_argument("--arch", default="small_cnn", choices=("small_cnn", "resnet18"))
    p.add_argument("--subset", type=int, default=1000, help="bank: training images of the class")
    p.add_argument("--eval-subset", type=int, default=2000)
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--final-relu", action="store_true", help="small_cnn: ReLU after the last block")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache-dir", default="/tmp/study/cache", help="decoded CIFAR-10 arrays")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    # what load_splits / build_model read; the validation sets are built but unused here
    args.dataset, args.augment, args.val_in, args.val_out = "cifar10", "crop", 500, 1000
    args.hidden, args.df, args.beta, args.min_var, args.norm = 128, 0.5, 0.1, 1e-6, "batch"
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    results = {}
    for c in (int(x) for x in args.classes.split(",")):
        results[str(c)] = measure(args, c)
        for mode, r in results[str(c)].items():
            print(f"class {c} {mode:11s} " + " ".join(f"{k}={v:.3f}" for k, v in r.items()), flush=True)
    if args.json:
        record = {"args": vars(args), "provenance": provenance(), "seconds": time.perf_counter() - t0}
        Path(args.json).write_text(json.dumps({**record, "classes": results}, indent=1))
    return results


if __name__ == "__main__":
    with module_local_params():
        main()
