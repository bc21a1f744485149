"""Take VJE's one-class anomaly score apart, per class (issue 9).

For each normal class c the study trains a VJE model on part of the *training* images of
class c, keeps the rest of them as validation inliers and training images of the other
classes as validation outliers, and scores validation and test images with every piece
and variant of the likelihood score, at several epochs and under three treatments of
BatchNorm. Settings are chosen on the validation AUROCs; the test AUROCs are what a
protocol would report.

Scores (higher = more anomalous; z = f(x), (mu, sigma) = g(z), D = dim z):

* ``joint``              Eq. 39: -log PolarStudentT(df, mu, sigma).log_prob(z) (same view, s = mu)
* ``dir_residual``       (df + D)/2 log(1 + Q_dir/df), Eq. 24's first term
* ``dir_normalizer``     1/2 sum_d log sigma_d^2, Eq. 24's second term
* ``radial``             -log p_rad(||z|| - ||mu||), Eq. 28
* ``kl``                 KL(N(mu, sigma^2) || N(0, I)), Eq. 34
* ``joint_sphere``       ``joint`` with the directional factor normalized on the sphere:
                         + log Z_dir(sigma_bar), sigma_bar the geometric mean of sigma (exact
                         for isotropic sigma; see :func:`log_z_dir`)
* ``joint_samplesK``     the NLL averaged over K posterior samples s ~ q(s | z)
* ``prior``              -log mean_k p(z | s_k, sigma(z)), s_k ~ N(0, I) (the prior instead of q)
* ``crossviewK``         symmetric cross-view NLL of K augmented pairs (the training terms)
* ``mixture``            -log mean_i p(z | mu_i, sigma_i) over the normal class's training
                         images i (the model's likelihood under the class's aggregate posterior)
* ``*_lr``               the same score minus the same score of the network at initialization
                         (its BN treated alike): a likelihood ratio
* baselines: ``knn_raw`` (kNN cosine distance, raw pixels, k = 5), ``knn_z``, ``gauss_z``
  (-log N(z; mean, cov + 1e-3 I) fitted on the class's training images).

BatchNorm treatments: ``eval`` (running statistics from training, which saw augmented views
only), ``train`` (batch statistics of each scored batch of 256), ``bank`` (running statistics
re-estimated on the clean training images of the normal class, then eval mode).

    OMP_NUM_THREADS=1 python benchmarks/one_class_study.py --dataset digits --classes 0,1,2 \
        --epochs 50,200,400 --out /tmp/study.json
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from pyro_vje import score as scoring
from pyro_vje.data import DATASET_INFO, TwoViews, build_dataset, dataset_labels
from pyro_vje.data.digits import DigitsTwoViews
from pyro_vje.data.subset import balanced_subset_indices
from pyro_vje.data.transforms import moco_v2_transform
from pyro_vje.distributions import PolarStudentT
from pyro_vje.evaluation.knn import knn_distance
from pyro_vje.evaluation.metrics import auroc
from pyro_vje.methods.build import build_backbone, module_local_params
from pyro_vje.model import VJE
from pyro_vje.networks import InferenceNetwork
from pyro_vje.networks.encoders import NORMS
from pyro_vje.training import TrainConfig, lr_at, scaled_lr


# ----------------------------------------------------------------------------- sphere normalizer
def log_z_dir(scale_bar: np.ndarray, df: float, dim: int, grid: int = 20001) -> np.ndarray:
    r"""log of the extrinsic directional density (Eq. 23) integrated over the unit sphere, for an
    isotropic scale ``scale_bar`` (one value per entry).

    With sigma_d = sigma for all d, p_ext(u) depends on u only through t = u . s_hat, since
    ||u - s_hat||^2 = 2 (1 - t) on the sphere. The sphere's surface element in t is
    A_{D-2} (1 - t^2)^{(D-3)/2} dt (A_{D-2} = 2 pi^{(D-1)/2} / Gamma((D-1)/2), the area of
    S^{D-2}); with t = cos(theta):

        Z = A_{D-2} C_{nu,D} sigma^{-D} \int_0^pi (1 + 2 (1 - cos theta)/(nu sigma^2))^{-(nu+D)/2}
            sin(theta)^{D-2} d theta,

    (nu = inf: exp(-(1 - cos theta)/sigma^2)), by the trapezoid rule in log space.
    """
    scale_bar = np.asarray(scale_bar, dtype=np.float64)
    theta = np.linspace(0.0, math.pi, grid)[1:-1]
    step = theta[1] - theta[0]
    one_minus_cos = 2.0 * np.sin(theta / 2) ** 2
    log_sin = (dim - 2) * np.log(np.sin(theta))
    var = scale_bar.reshape(-1, 1) ** 2
    if math.isinf(df):
        log_kernel = -one_minus_cos / var
        log_c = -0.5 * dim * math.log(2 * math.pi)
    else:
        log_kernel = -0.5 * (df + dim) * np.log1p(2.0 * one_minus_cos / (df * var))
        log_c = math.lgamma(0.5 * (df + dim)) - math.lgamma(0.5 * df) - 0.5 * dim * math.log(df * math.pi)
    log_area = math.log(2.0) + 0.5 * (dim - 1) * math.log(math.pi) - math.lgamma(0.5 * (dim - 1))
    vals = log_kernel + log_sin
    top = vals.max(1, keepdims=True)
    log_int = (top + np.log(np.exp(vals - top).sum(1, keepdims=True) * step)).ravel()
    return (log_area + log_c - dim * np.log(scale_bar.ravel()) + log_int).reshape(scale_bar.shape)


def log_z_dir_interp(df: float, dim: int):
    grid = np.linspace(math.log(1e-3), math.log(30.0), 400)
    values = log_z_dir(np.exp(grid), df, dim)
    return lambda log_scale_bar: np.interp(log_scale_bar, grid, values)


# ----------------------------------------------------------------------------- data
def cifar_transform(kind: str, info):
    if kind == "default":
        return moco_v2_transform(info.image_size, info.mean, info.std)
    if kind == "crop":  # MoCo v2 without colour jitter and grayscale
        return T.Compose(
            [
                T.RandomResizedCrop(info.image_size, scale=(0.2, 1.0)),
                T.RandomHorizontalFlip(),
                T.ToTensor(),
                T.Normalize(info.mean, info.std),
            ]
        )
    raise ValueError(f"unknown augment {kind!r}")


def cifar_arrays(root: str, split: str, cache_dir: str) -> tuple[np.ndarray, np.ndarray]:
    """All images of a split as uint8 (N, 32, 32, 3) and labels, decoded once into ``cache_dir``."""
    path = Path(cache_dir) / f"cifar10_{split}.npz"
    if path.is_file():
        with np.load(path) as f:
            return f["images"], f["labels"]
    ds = build_dataset("cifar10", split, root=root, cache=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, images=ds.images, labels=ds.targets)
    return ds.images, ds.targets


class ArrayImages(Dataset):
    """uint8 images (N, H, W, C) as PIL images through ``transform``."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def _normalized(images: np.ndarray, info) -> torch.Tensor:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0  # as ToTensor
    return T.Normalize(info.mean, info.std)(x)


def load_splits(args, c: int) -> dict:
    """fit (training images of c used to train), val_in / val_out (held-out training images of c /
    training images of the other classes), test (the test split or a balanced subset), as
    normalized tensors, plus what the training loop and the cross-view score need."""
    rng = np.random.default_rng(args.seed + 17 * c)
    info = DATASET_INFO[args.dataset]
    if args.dataset == "digits":
        train_plain = build_dataset("digits", "train")
        test_plain = build_dataset("digits", "test")
        train_x, labels = train_plain.images, dataset_labels(train_plain)
        test_x, test_labels = test_plain.images, dataset_labels(test_plain)
    else:
        train_x, labels = cifar_arrays(args.data_dir, "train", args.cache_dir)
        test_x, test_labels = cifar_arrays(args.data_dir, "test", args.cache_dir)
    members = rng.permutation(np.flatnonzero(labels == c))
    others = rng.permutation(np.flatnonzero(labels != c))
    if args.dataset == "digits":
        n_val = int(round(args.val_fraction * len(members)))
        fit_idx, val_in_idx = np.sort(members[n_val:]), np.sort(members[:n_val])
    else:
        fit_idx = np.sort(members[: args.subset])
        val_in_idx = np.sort(members[args.subset : args.subset + args.val_in])
    val_out_idx = np.sort(others[: args.val_out])
    test_idx = (
        np.arange(len(test_labels))
        if args.eval_subset is None
        else balanced_subset_indices(test_labels, args.eval_subset, seed=0)
    )
    if args.dataset == "digits":
        norm = T.Normalize(info.mean, info.std)

        def tensors(x, y, idx):
            return norm(x[idx]), torch.as_tensor(y[idx])
    else:

        def tensors(x, y, idx):
            return _normalized(x[idx], info), torch.as_tensor(y[idx])

    out = {
        "fit": tensors(train_x, labels, fit_idx),
        "val_in": tensors(train_x, labels, val_in_idx),
        "val_out": tensors(train_x, labels, val_out_idx),
        "test": tensors(test_x, test_labels, test_idx),
    }
    if args.dataset == "digits":
        from pyro_vje.data.datasets import DigitsDataset

        out["fit_raw"] = train_x[fit_idx]  # [0, 1], augmented in batches
        out["test_views"] = DigitsDataset(
            test_x[test_idx], torch.as_tensor(test_labels[test_idx]), TwoViews(_digits_view(info))
        )
    else:
        aug = cifar_transform(args.augment, info)
        out["train_set"] = ArrayImages(train_x[fit_idx], labels[fit_idx], TwoViews(aug))
        out["test_views"] = ArrayImages(test_x[test_idx], test_labels[test_idx], TwoViews(aug))
    return out


def _digits_view(info):
    from pyro_vje.data.transforms import digits_transform

    return digits_transform(mean=info.mean, std=info.std)


# ----------------------------------------------------------------------------- model
def build_model(args, channels: int) -> VJE:
    fields = ("dataset", "arch", "hidden", "df", "beta", "norm", "final_relu")
    cfg = TrainConfig(**{name: getattr(args, name) for name in fields})
    size = DATASET_INFO[args.dataset].image_size
    encoder = build_backbone(cfg, channels, size)
    inference = InferenceNetwork(encoder.dim, args.hidden, depth=3, min_var=args.min_var)
    return VJE(encoder, inference, df=args.df, beta=args.beta)


@torch.no_grad()
def encode(model: nn.Module, x: torch.Tensor, bn: str, batch: int = 256) -> dict[str, torch.Tensor]:
    if bn == "train":  # batch statistics; a copy, so the running statistics stay untouched
        model = copy.deepcopy(model).train()
    else:
        model.eval()
    parts = [model.encode(chunk) for chunk in x.split(batch)]
    z, loc, scale = (torch.cat(p) for p in zip(*parts))
    return {"z": z.double(), "loc": loc.double(), "scale": scale.double()}


@torch.no_grad()
def bank_bn(model: nn.Module, bank: torch.Tensor, batch: int = 256) -> nn.Module:
    """A copy of ``model`` whose BatchNorm running statistics are re-estimated (cumulative
    average over the batches) on ``bank``, the clean normal-class images."""
    model = copy.deepcopy(model)
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return model
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for chunk in bank[torch.randperm(len(bank), generator=torch.Generator().manual_seed(0))].split(batch):
        if len(chunk) > 1:
            model.encoder(chunk)
    return model.eval()


# ----------------------------------------------------------------------------- scores
def polar(model: VJE, loc, scale) -> PolarStudentT:
    return PolarStudentT(model.df, loc, scale, model.radial_scale)


def pieces(model: VJE, e: dict, log_z) -> dict[str, np.ndarray]:
    z, loc, scale = e["z"], e["loc"], e["scale"]
    dim, df = z.shape[1], model.df
    lik = polar(model, loc, scale)
    log_dir, log_rad = lik.log_prob_terms(z)
    zh, sh = F.normalize(z, dim=1), F.normalize(loc, dim=1)
    q = ((zh - sh) / scale).pow(2).sum(1)
    residual = 0.5 * q if math.isinf(df) else 0.5 * (df + dim) * torch.log1p(q / df)
    kl = 0.5 * (scale.pow(2) + loc.pow(2) - 1 - scale.pow(2).log()).sum(1)
    log_sbar = scale.log().mean(1).numpy()
    joint = -(log_dir + log_rad).numpy()
    out = {
        "joint": joint,
        "directional": -log_dir.numpy(),
        "dir_residual": residual.numpy(),
        "dir_normalizer": scale.pow(2).log().sum(1).mul(0.5).numpy(),
        "radial": -log_rad.numpy(),
        "kl": kl.numpy(),
        "joint_sphere": joint + log_z(log_sbar),
        "dir_sphere": -log_dir.numpy() + log_z(log_sbar),
        "variance": scale.pow(2).sum(1).numpy(),
    }
    return out


def sampled(model: VJE, e: dict, k: int, seed: int = 0) -> np.ndarray:
    g = torch.Generator().manual_seed(seed)
    eps = torch.randn((k, *e["loc"].shape), generator=g, dtype=torch.float64)
    s = e["loc"] + e["scale"] * eps
    return -polar(model, s, e["scale"]).log_prob(e["z"]).mean(0).numpy()


def under_prior(model: VJE, e: dict, k: int = 64, seed: int = 0) -> np.ndarray:
    g = torch.Generator().manual_seed(seed)
    s = torch.randn((k, *e["loc"].shape), generator=g, dtype=torch.float64)
    lp = polar(model, s, e["scale"]).log_prob(e["z"])
    return -(torch.logsumexp(lp, 0) - math.log(k)).numpy()


def mixture(model: VJE, e: dict, bank: dict, chunk: int = 128) -> np.ndarray:
    """-log mean_i p(z | mu_i, sigma_i) over the bank's posteriors (PolarStudentT)."""
    loc, scale = bank["loc"], bank["scale"]
    n = len(loc)
    out = []
    for zc in e["z"].split(chunk):
        lp = polar(model, loc.unsqueeze(0), scale.unsqueeze(0)).log_prob(zc.unsqueeze(1))  # (c, n)
        out.append(-(torch.logsumexp(lp, 1) - math.log(n)))
    return torch.cat(out).numpy()


def latent_overlap(e: dict, bank: dict, chunk: int = 128) -> np.ndarray:
    """-log mean_i integral q(s | z) q(s | z_i) ds = -log mean_i N(mu; mu_i, sigma^2 + sigma_i^2):
    the test posterior against the class's aggregate posterior, in latent space."""
    loc, var = bank["loc"], bank["scale"].pow(2)
    out = []
    for mc, sc in zip(e["loc"].split(chunk), e["scale"].split(chunk)):
        v = var.unsqueeze(0) + sc.pow(2).unsqueeze(1)  # (c, n, D)
        lp = -0.5 * ((mc.unsqueeze(1) - loc.unsqueeze(0)).pow(2) / v + v.log() + math.log(2 * math.pi)).sum(
            -1
        )
        out.append(-(torch.logsumexp(lp, 1) - math.log(len(loc))))
    return torch.cat(out).numpy()


def gauss_density(bank_z: torch.Tensor, z: torch.Tensor) -> np.ndarray:
    mean = bank_z.mean(0)
    cov = torch.cov((bank_z - mean).T) + 1e-3 * torch.eye(bank_z.shape[1], dtype=bank_z.dtype)
    return -torch.distributions.MultivariateNormal(mean, cov).log_prob(z).numpy()


def auroc_pair(s_in, s_out) -> float:
    return auroc(s_in, s_out)


# ----------------------------------------------------------------------------- train
def train_steps(model: VJE, data: dict, args, checkpoints: list[int], on_checkpoint) -> None:
    batch = args.batch_size
    base = scaled_lr(args.lr, batch)
    groups = [
        {"params": list(model.encoder.parameters()), "mult": args.encoder_lr_mult},
        {"params": list(model.inference_net.parameters()), "mult": 1.0},
    ]
    opt = torch.optim.SGD(groups, lr=base, momentum=0.9, weight_decay=args.weight_decay)
    if args.dataset == "digits":
        raw = data["fit_raw"]
        steps_per_epoch = max(1, len(raw) // batch)
        aug = DigitsTwoViews()
        info = DATASET_INFO["digits"]
        norm = T.Normalize(info.mean, info.std)

        def epoch_batches(epoch):
            g = torch.Generator().manual_seed(args.seed * 1000 + epoch)
            perm = torch.randperm(len(raw), generator=g)
            for i in range(steps_per_epoch):
                x = raw[perm[i * batch : (i + 1) * batch]]
                yield norm(aug(x)), norm(aug(x))
    else:
        loader = DataLoader(
            data["train_set"],
            batch_size=batch,
            shuffle=True,
            drop_last=True,
            num_workers=0,
            generator=torch.Generator().manual_seed(args.seed),
        )
        steps_per_epoch = len(loader)

        def epoch_batches(epoch):
            for (x1, x2), _ in loader:
                yield x1, x2

    total = steps_per_epoch * max(checkpoints)
    warmup = steps_per_epoch * args.warmup_epochs
    step = 0
    torch.manual_seed(args.seed)
    for epoch in range(1, max(checkpoints) + 1):
        model.train()
        for x1, x2 in epoch_batches(epoch):
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total, warmup, base) * group["mult"]
            loss = model.loss(x1, x2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        if epoch in checkpoints:
            on_checkpoint(epoch, step, float(loss.detach()))


# ----------------------------------------------------------------------------- one class
def study_class(args, c: int, log_z) -> dict:
    t0 = time.perf_counter()
    torch.manual_seed(args.seed)
    data = load_splits(args, c)
    channels = DATASET_INFO[args.dataset].channels
    model = build_model(args, channels)
    init = copy.deepcopy(model).eval()
    test_x, test_y = data["test"]
    inlier = (test_y == c).numpy()
    sets = {"val_in": data["val_in"][0], "val_out": data["val_out"][0], "test": test_x}
    fit_x = data["fit"][0]
    raw = {"knn_raw": {k: knn_distance(fit_x.flatten(1), v.flatten(1), 5).numpy() for k, v in sets.items()}}
    result: dict = {"class": c, "n_fit": len(fit_x), "epochs": {}}

    def aurocs(scores: dict[str, dict[str, np.ndarray]]) -> dict:
        out = {}
        for name, s in scores.items():
            out[name] = {
                "val": auroc_pair(s["val_in"], s["val_out"]),
                "test": auroc_pair(s["test"][inlier], s["test"][~inlier]),
            }
        return out

    def evaluate(net: VJE, bn: str, with_extras: bool) -> tuple[dict, dict]:
        if bn == "bank":
            net = bank_bn(net, fit_x)
        bank = encode(net, fit_x, bn)
        scores: dict[str, dict[str, np.ndarray]] = {}
        stats = {}
        for key, x in sets.items():
            e = encode(net, x, bn)
            for name, v in pieces(net, e, log_z).items():
                scores.setdefault(name, {})[key] = v
            scores.setdefault("mixture", {})[key] = mixture(net, e, bank)
            scores.setdefault("knn_z", {})[key] = knn_distance(bank["z"], e["z"], 5).numpy()
            scores.setdefault("knn_mu", {})[key] = knn_distance(bank["loc"], e["loc"], 5).numpy()
            scores.setdefault("latent", {})[key] = latent_overlap(e, bank)
            scores.setdefault("gauss_z", {})[key] = gauss_density(bank["z"], e["z"])
            if with_extras and args.samples > 0:
                scores.setdefault(f"joint_samples{args.samples}", {})[key] = sampled(net, e, args.samples)
                scores.setdefault("prior", {})[key] = under_prior(net, e)
            if key == "test":
                var = e["scale"].pow(2).mean(1).numpy()
                loc_norm = e["loc"].norm(dim=1).numpy()
                noise_norm = (e["scale"].pow(2).sum(1).sqrt()).numpy()
                cos = F.cosine_similarity(e["z"], e["loc"], dim=1).numpy()
                stats = {
                    "mean_var_in": float(var[inlier].mean()),
                    "mean_var_out": float(var[~inlier].mean()),
                    "mu_norm_in": float(loc_norm[inlier].mean()),
                    "sigma_sqrt_d_in": float(noise_norm[inlier].mean()),
                    "cos_z_mu_in": float(cos[inlier].mean()),
                    "cos_z_mu_out": float(cos[~inlier].mean()),
                    "z_norm_in": float(e["z"].norm(dim=1).numpy()[inlier].mean()),
                    "z_norm_out": float(e["z"].norm(dim=1).numpy()[~inlier].mean()),
                }
        return scores, stats

    def on_checkpoint(epoch: int, step: int, loss: float) -> None:
        entry = {"step": step, "loss": loss, "bn": {}}
        for bn in args.bn_modes:
            final = epoch == max(args.epochs)
            scores, stats = evaluate(model, bn, with_extras=final)
            init_scores, _ = evaluate(init, bn, with_extras=False)
            for name in ("joint", "mixture", "joint_sphere"):
                scores[f"{name}_lr"] = {k: scores[name][k] - init_scores[name][k] for k in sets}
            scores["mixture_init"] = init_scores["mixture"]
            scores["knn_z_init"] = init_scores["knn_z"]
            scores.update(raw)
            if final and bn == "eval" and args.views > 0:
                net = model
                tta = scoring.tta_score(
                    net, DataLoader(data["test_views"], batch_size=256), args.views, which=("joint",), seed=0
                )["joint"].numpy()
                scores[f"crossview{args.views}"] = {"test": tta, "val_in": tta[:2], "val_out": tta[:2]}
            entry["bn"][bn] = {"auroc": aurocs(scores), **stats}
            if f"crossview{args.views}" in scores:
                entry["bn"][bn]["auroc"][f"crossview{args.views}"]["val"] = None
        result["epochs"][str(epoch)] = entry
        print(
            f"  class {c} epoch {epoch} step {step} loss {loss:.3f} "
            + " ".join(
                f"{bn}:joint={entry['bn'][bn]['auroc']['joint']['val']:.3f}/"
                f"mix={entry['bn'][bn]['auroc']['mixture']['val']:.3f}"
                for bn in args.bn_modes
            )
            + f" ({time.perf_counter() - t0:.0f}s)",
            flush=True,
        )

    train_steps(model, data, args, sorted(args.epochs), on_checkpoint)
    result["seconds"] = time.perf_counter() - t0
    return result


def summarize(results: list[dict], split: str) -> dict:
    """{epoch: {bn: {score: mean AUROC over classes}}} for ``split``."""
    out: dict = {}
    for r in results:
        for ep, entry in r["epochs"].items():
            for bn, d in entry["bn"].items():
                for name, v in d["auroc"].items():
                    if v[split] is None:
                        continue
                    out.setdefault(ep, {}).setdefault(bn, {}).setdefault(name, []).append(v[split])
    return {
        ep: {bn: {k: (float(np.mean(v)), float(np.min(v))) for k, v in d.items()} for bn, d in e.items()}
        for ep, e in out.items()
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="digits", choices=("digits", "cifar10"))
    p.add_argument("--data-dir", default=None)
    p.add_argument("--classes", default="0,1,2,3,4,5,6,7,8,9")
    p.add_argument(
        "--epochs", default="200", help="checkpoint epochs (comma-separated); trains to the largest"
    )
    p.add_argument("--lr", type=float, default=0.01, help="per 256 images")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--warmup-epochs", type=int, default=2)
    p.add_argument("--weight-decay", type=float, default=5e-6)
    p.add_argument("--df", type=float, default=0.5)
    p.add_argument("--beta", type=float, default=1.0)
    p.add_argument("--arch", default="small_cnn")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--norm", default="batch", choices=NORMS, help="small_cnn norm")
    p.add_argument("--final-relu", action="store_true", help="small_cnn: non-negative z")
    p.add_argument("--encoder-lr-mult", type=float, default=1.0, help="0: a frozen random encoder")
    p.add_argument("--min-var", type=float, default=1e-6)
    p.add_argument("--augment", default="default", choices=("default", "crop"))
    p.add_argument("--subset", type=int, default=1000, help="cifar: training images of the class to fit")
    p.add_argument("--val-in", type=int, default=500)
    p.add_argument("--val-out", type=int, default=1000)
    p.add_argument("--val-fraction", type=float, default=0.3, help="digits: held-out share of the class")
    p.add_argument("--eval-subset", type=int, default=None)
    p.add_argument("--bn-modes", default="eval,train,bank")
    p.add_argument("--samples", type=int, default=8, help="posterior samples for joint_samplesK (0: skip)")
    p.add_argument("--views", type=int, default=0, help="cross-view pairs on the test split at the end")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache-dir", default="/tmp/study/cache", help="decoded CIFAR-10 arrays")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    args.epochs = [int(e) for e in args.epochs.split(",")]
    args.bn_modes = args.bn_modes.split(",")
    torch.set_num_threads(1)
    classes = [int(c) for c in args.classes.split(",")]
    dim = 512 if args.arch == "resnet18" else 128
    log_z = log_z_dir_interp(args.df, dim)
    results = []
    for c in classes:
        results.append(study_class(args, c, log_z))
        summary = {"val": summarize(results, "val"), "test": summarize(results, "test")}
        Path(args.out).write_text(
            json.dumps({"args": vars(args), "classes": results, "summary": summary}, indent=1)
        )
    for split in ("val", "test"):
        print(f"== {split}: mean (min) AUROC over classes {classes}")
        for ep, e in summary[split].items():
            for bn, d in e.items():
                print(
                    f" epoch {ep} bn {bn}: "
                    + ", ".join(f"{k} {m:.3f} ({lo:.2f})" for k, (m, lo) in d.items())
                )


if __name__ == "__main__":
    with module_local_params():
        main()
