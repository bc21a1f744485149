"""Linear probe on frozen, precomputed features (paper Section 5.2, Tables 1, 2, 5, 6).

The paper trains "a linear classifier on frozen backbone features for 100 epochs
using the same optimizer configuration [SGD, momentum 0.9, cosine decay],
excluding the warm-up phase". :func:`linear_probe` does that on features already
computed and held in memory: one ``nn.Linear`` trained with cross-entropy, SGD
with momentum and a per-step cosine learning-rate decay to 0, no warm-up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from ..progress import progress_bar
from .knn import _check_common, _check_labels

__all__ = ["LinearProbeConfig", "linear_probe"]

#: Below this standard deviation a feature counts as constant and is only centred.
_STD_FLOOR = 1e-12


@dataclass
class LinearProbeConfig:
    """Hyper-parameters of :func:`linear_probe`.

    :param epochs: passes over the training features (paper: 100).
    :param batch_size: mini-batch size (the last, smaller batch of an epoch is kept).
    :param lr: base learning rate *for batch size 256*; the rate used is
        ``lr * batch_size / 256`` (linear scaling), decayed to 0 by a per-step cosine.
        0.1 was chosen by a sweep on standardized features (``docs/evaluation.md``)
        and assumes ``standardize=True``.
    :param momentum: SGD momentum (paper: 0.9).
    :param weight_decay: L2 penalty on the classifier (weights and bias).
    :param standardize: standardize every feature with the *training* mean and standard
        deviation (constant features are only centred), so that one learning rate works
        whatever the scale of the features (raw pixels, ``z``, ``mu``).
    :param seed: seeds the order of the mini-batches; the classifier starts at zero, so the
        result is a deterministic function of the inputs and the config.
    :param device: where the classifier is trained: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or
        ``"auto"`` (CUDA when available). Features stay where they are; batches are moved.
    """

    epochs: int = 100
    batch_size: int = 256
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 0.0
    standardize: bool = True
    seed: int = 0
    device: str = "cpu"

    @classmethod
    def fast(cls, **overrides) -> LinearProbeConfig:
        """A quick preset: 15 epochs instead of 100 (other fields default, ``overrides`` win).

        On the benchmarks in ``docs/evaluation.md`` it is within about a point of the
        100-epoch probe; use it for monitoring during training, not for reported numbers.
        """
        return replace(cls(epochs=15), **overrides)

    def validate(self) -> None:
        """Raise ``ValueError`` if a field is out of range."""
        if not (isinstance(self.epochs, int) and self.epochs >= 1):
            raise ValueError(f"epochs must be an int >= 1, got {self.epochs!r}")
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise ValueError(f"batch_size must be an int >= 1, got {self.batch_size!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@torch.no_grad()
def _mean_std(features: torch.Tensor, chunk: int = 65536) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and population std in float64, two passes over row chunks
    (no float64 copy of the whole matrix)."""
    total = torch.zeros(features.shape[1], dtype=torch.float64, device=features.device)
    for start in range(0, len(features), chunk):
        total += features[start : start + chunk].double().sum(0)
    mean = total / len(features)
    squares = torch.zeros_like(mean)
    for start in range(0, len(features), chunk):
        squares += ((features[start : start + chunk].double() - mean) ** 2).sum(0)
    return mean, (squares / len(features)).sqrt()


@torch.no_grad()
def _topk_correct(
    model: nn.Module,
    features: torch.Tensor,
    labels: torch.Tensor,
    prepare,
    device: torch.device,
    ks: tuple[int, ...],
    chunk: int = 4096,
) -> list[int]:
    """Number of rows whose label is among the ``k`` largest logits, for each ``k``."""
    correct = [0] * len(ks)
    for start in range(0, len(features), chunk):
        logits = model(prepare(features[start : start + chunk]))
        target = labels[start : start + chunk].to(device)
        ranked = logits.topk(max(ks), dim=1).indices
        for i, k in enumerate(ks):
            correct[i] += int((ranked[:, :k] == target[:, None]).any(dim=1).sum())
    return correct


def linear_probe(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    num_classes: int,
    config: LinearProbeConfig | None = None,
    progress: bool = False,
) -> dict[str, float]:
    """Train a linear classifier on frozen features and report its accuracy.

    :param train_features: ``(N, D)`` training features (any floating dtype, any device).
    :param train_labels: ``(N,)`` integer labels in ``[0, num_classes)``.
    :param test_features: ``(M, D)`` test features.
    :param test_labels: ``(M,)`` integer labels.
    :param num_classes: number of classes (outputs of the classifier).
    :param config: hyper-parameters, :class:`LinearProbeConfig` (default: the paper's 100
        epochs); ``LinearProbeConfig.fast()`` for a quick run.
    :param progress: show a progress bar over epochs.
    :returns: ``{"top1", "top5" (when num_classes >= 5), "train_top1", "epochs"}``;
        accuracies are fractions in ``[0, 1]``, ``train_top1`` is measured after training.
    :raises ValueError: on bad shapes, labels out of range, NaN/inf features, an empty test
        set or an invalid config.
    """
    cfg = config if config is not None else LinearProbeConfig()
    cfg.validate()
    train_features, train_labels, test_features = _check_common(
        train_features, train_labels, test_features, num_classes
    )
    test_labels = _check_labels(test_labels, len(test_features), num_classes, "test_labels", "test_features")
    if len(test_features) == 0:
        raise ValueError("test_features is empty")
    device = _device(cfg.device)
    dim = train_features.shape[1]

    train_labels = train_labels.to(train_features.device)
    if cfg.standardize:
        mean, std = _mean_std(train_features)
        std = torch.where(std > _STD_FLOOR, std, torch.ones_like(std))
        mean, inv_std = mean.float().to(device), (1.0 / std).float().to(device)
    else:
        mean, inv_std = torch.zeros(dim, device=device), torch.ones(dim, device=device)

    def prepare(batch: torch.Tensor) -> torch.Tensor:
        return (batch.to(device, non_blocking=True).float() - mean) * inv_std

    # a convex problem: start at zero (skip_init leaves the global RNG untouched)
    model = torch.nn.utils.skip_init(nn.Linear, dim, num_classes, device=device)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
    lr = cfg.lr * cfg.batch_size / 256
    optimizer = torch.optim.SGD(
        model.parameters(), lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    n = len(train_features)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    generator = torch.Generator().manual_seed(cfg.seed)
    step = 0
    bar = progress_bar(range(cfg.epochs), enabled=progress, desc="linear probe", unit="epoch")
    for _epoch in bar:
        model.train()
        order = torch.randperm(n, generator=generator).to(train_features.device)
        running = 0.0
        for b in range(steps_per_epoch):
            idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            for group in optimizer.param_groups:  # cosine decay per step, no warm-up
                group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * step / total))
            with torch.enable_grad():  # also when called under torch.no_grad()
                loss = F.cross_entropy(model(prepare(train_features[idx])), train_labels[idx].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            running += float(loss.detach()) if progress else 0.0
            step += 1
        if progress:
            bar.set_postfix(loss=f"{running / steps_per_epoch:.4f}")

    model.eval()
    ks = (1, 5) if num_classes >= 5 else (1,)
    test_correct = _topk_correct(model, test_features, test_labels, prepare, device, ks)
    (train_correct,) = _topk_correct(model, train_features, train_labels, prepare, device, (1,))
    results = {"top1": test_correct[0] / len(test_features)}
    if num_classes >= 5:
        results["top5"] = test_correct[1] / len(test_features)
    results["train_top1"] = train_correct / n
    results["epochs"] = float(cfg.epochs)
    return results
