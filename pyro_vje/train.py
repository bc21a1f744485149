"""A compact VJE training run on the embedded digits data (the README's main job).

``pyro-vje train`` trains VJE (paper Algorithm 4 through the Pyro ELBO) with
:func:`~pyro_vje.networks.small_cnn` on scikit-learn's digits, in about a
minute on a CPU (``device="auto"`` uses a GPU when one is visible), then
reports weighted kNN accuracy of the embeddings ``z`` and of the posterior
means ``mu`` next to two baselines that need no training: raw pixels
and the same encoder at its random initialization.

Optimization follows the paper's Section 5.2 recipe (SGD, momentum 0.9,
weight decay 5e-6, linear warm-up then cosine decay); the learning rate scales
as ``lr * batch / 256``.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import pyro
import torch
from tqdm.auto import tqdm

from .data import DigitsTwoViews, load_digits_split
from .evaluation import knn_accuracy
from .model import VJE
from .networks import InferenceNetwork, small_cnn


@dataclass
class DigitsConfig:
    epochs: int = 60
    batch_size: int = 128
    lr: float = 0.01  # base rate for batch 256, scaled by batch / 256 (digits-specific)
    momentum: float = 0.9
    weight_decay: float = 5e-6
    warmup_epochs: int = 5
    df: float = 3.0
    beta: float = 1.0
    hidden: int = 64
    final_relu: bool = False  # ReLU after the encoder's last block (see SmallCNN)
    knn_k: int = 30
    knn_temperature: float = 0.1
    seed: int = 0
    device: str = "auto"
    progress: bool = True


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"unknown device {name!r} (use auto, cpu, cuda or cuda:N)") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    return device


def lr_at(step: int, total: int, warmup: int, base: float) -> float:
    """Linear warm-up for ``warmup`` steps, then cosine decay to 0."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1.0 + math.cos(math.pi * progress))


@torch.no_grad()
def _features(vje: VJE, images: torch.Tensor, device: torch.device, batch: int = 512):
    """``(z, mu, sigma^2)`` of every image, in eval mode."""
    vje.eval()
    zs, mus, variances = [], [], []
    for start in range(0, len(images), batch):
        z, mu, scale = vje.encode(images[start : start + batch].to(device))
        zs.append(z.float().cpu())
        mus.append(mu.float().cpu())
        variances.append(scale.float().cpu() ** 2)
    return torch.cat(zs), torch.cat(mus), torch.cat(variances)


def posterior_variance_stats(variances: torch.Tensor) -> tuple[float, float]:
    """Table 7's statistics of sigma^2 ``(N, D)``: mean over dimensions of the per-dimension
    average variance, and its coefficient of variation (std / mean) across dimensions."""
    per_dim = variances.mean(0)
    mean = per_dim.mean()
    return float(mean), float(per_dim.std() / mean)


def train_digits(config: DigitsConfig | None = None) -> dict[str, float]:
    """Train VJE on digits and return the kNN accuracies (and the final loss)."""
    cfg = config or DigitsConfig()
    if cfg.epochs < 1 or cfg.batch_size < 2:
        raise ValueError("epochs must be >= 1 and batch_size >= 2")
    device = resolve_device(cfg.device)
    pyro.set_rng_seed(cfg.seed)
    data = load_digits_split(seed=cfg.seed)
    encoder = small_cnn(in_channels=1, final_relu=cfg.final_relu)
    vje = VJE(encoder, InferenceNetwork(encoder.dim, cfg.hidden), df=cfg.df, beta=cfg.beta).to(device)

    def knn(train, test):
        return knn_accuracy(
            train, data.train_labels, test, data.test_labels, data.num_classes, cfg.knn_k, cfg.knn_temperature
        )

    results: dict[str, float] = {
        "knn_raw_pixels": knn(data.train_images.flatten(1), data.test_images.flatten(1)),
    }
    z_train, _, _ = _features(vje, data.train_images, device)
    z_test, _, _ = _features(vje, data.test_images, device)
    results["knn_z_random_init"] = knn(z_train, z_test)

    augment = DigitsTwoViews()
    generator = torch.Generator().manual_seed(cfg.seed)
    base_lr = cfg.lr * cfg.batch_size / 256
    optimizer = torch.optim.SGD(
        vje.parameters(), lr=base_lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    steps_per_epoch = len(data.train_images) // cfg.batch_size
    total, warmup = cfg.epochs * steps_per_epoch, cfg.warmup_epochs * steps_per_epoch
    step, start = 0, time.perf_counter()
    bar = tqdm(range(cfg.epochs), desc="VJE on digits", disable=not cfg.progress, unit="epoch")
    for _epoch in bar:
        vje.train()
        order = torch.randperm(len(data.train_images), generator=generator)
        running = 0.0
        for b in range(steps_per_epoch):
            x = data.train_images[order[b * cfg.batch_size : (b + 1) * cfg.batch_size]]
            x1, x2 = augment.views(x, generator)
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, total, warmup, base_lr)
            loss = vje.loss(x1.to(device), x2.to(device))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss {loss.item()} at step {step}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            running += loss.item()
            step += 1
        bar.set_postfix(loss=f"{running / steps_per_epoch:.3f}")
    results["final_loss"] = running / steps_per_epoch
    results["train_seconds"] = time.perf_counter() - start

    z_train, mu_train, _ = _features(vje, data.train_images, device)
    z_test, mu_test, var_test = _features(vje, data.test_images, device)
    results["knn_z"] = knn(z_train, z_test)
    results["knn_mu"] = knn(mu_train, mu_test)
    results["var_mean"], results["var_cv"] = posterior_variance_stats(var_test)
    # collapse diagnostic: spread of the posterior means across inputs, relative to their norm
    results["mu_spread"] = float(mu_test.std(0).mean() / mu_test.norm(dim=1).mean())
    results["config"] = asdict(cfg)  # type: ignore[assignment]
    return results
