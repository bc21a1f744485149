"""The supervised reference: its loss against a float64 log-softmax written here, its errors, and
one training step through the trainer's path (``pyro-vje train --method supervised``)."""

import numpy as np
import pytest
import torch

from pyro_vje.methods import Supervised, SupervisedOptions
from pyro_vje.runs import read_metrics
from pyro_vje.training import TrainConfig, train


def _cross_entropy64(logits: np.ndarray, labels: np.ndarray) -> float:
    shifted = logits - logits.max(1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    return float(-log_p[np.arange(len(labels)), labels].mean())


def test_loss_is_the_mean_cross_entropy_of_both_views(encoder, views):
    method = Supervised(encoder, SupervisedOptions(num_classes=10)).eval()  # eval: BatchNorm as a map
    labels = torch.arange(12) % 10
    loss, terms = method.training_loss(*views, labels)
    with torch.no_grad():
        logits = [method.classifier(method.encoder(x)).double().numpy() for x in views]
    expected = (_cross_entropy64(logits[0], labels.numpy()) + _cross_entropy64(logits[1], labels.numpy())) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert 0.0 <= terms["train_accuracy"].item() <= 1.0


def test_bad_labels_are_named(encoder, views):
    method = Supervised(encoder, SupervisedOptions(num_classes=3))
    with pytest.raises(ValueError, match="needs the labels"):
        method.training_loss(*views)
    with pytest.raises(ValueError, match=r"num_classes"):
        method.training_loss(*views, torch.arange(12) % 10)
    with pytest.raises(ValueError, match="shape"):
        method.training_loss(*views, torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="label_smoothing"):
        SupervisedOptions(label_smoothing=1.0).validate()


def test_the_trainer_passes_the_labels_and_it_learns(tmp_path):
    """Through train(): the labels reach the loss (its training accuracy climbs above chance)."""
    config = TrainConfig(
        method="supervised",
        epochs=3,
        max_steps_per_epoch=10,
        batch_size=64,
        lr=0.2,
        warmup_epochs=0,
        eval_every=3,
        progress=False,
        figures=False,
        tensorboard=False,
        baselines=False,
        device="cpu",
        out=str(tmp_path / "run"),
    )
    result = train(config)
    rows = [r for r in read_metrics(tmp_path / "run/metrics.jsonl") if "train_accuracy" in r]
    assert rows and rows[-1]["train_accuracy"] > 0.3  # 10 classes: chance is 0.1
    assert result["knn_z"] > 0.5
