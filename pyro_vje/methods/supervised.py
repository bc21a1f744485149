r"""The supervised reference: the same encoder trained *with labels*, the ceiling of a comparison.

Not a self-supervised method: solo-learn's and lightly's benchmarks put a supervised
model of the same backbone, budget and views beside the SSL methods, so that "0.85 kNN"
reads against what the encoder can reach at all. Loss: the cross-entropy of a linear
classifier on z = f(x), averaged over the two views (each view is an augmented image
with its label)::

    L = CE(W f(x1) + b, y) / 2 + CE(W f(x2) + b, y) / 2

Features are ``z`` (the encoder output), evaluated by the same kNN and linear probe as
every method. The trainer passes the labels to a method whose ``uses_labels`` is true.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import TwoViewMethod
from .options import SupervisedOptions

__all__ = ["Supervised", "SupervisedOptions"]


class Supervised(TwoViewMethod):
    """A linear classifier on the encoder, trained with cross-entropy on both views.

    :param encoder: the backbone f, with ``.dim``.
    :param options: :class:`SupervisedOptions` (``num_classes``, ``label_smoothing``).
    """

    uses_labels = True

    def __init__(self, encoder: nn.Module, options: SupervisedOptions | None = None):
        super().__init__(encoder)
        self.options = options if options is not None else SupervisedOptions()
        self.options.validate()
        self.classifier = nn.Linear(self.dim, self.options.num_classes)

    def training_loss(
        self, x1: torch.Tensor, x2: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        self.check_views(x1, x2)
        if labels is None:
            raise ValueError("Supervised.training_loss needs the labels of the batch (labels=...)")
        labels = labels.to(x1.device).long()
        if labels.shape != (x1.shape[0],):
            raise ValueError(f"labels must have shape ({x1.shape[0]},), got {tuple(labels.shape)}")
        if labels.min() < 0 or labels.max() >= self.options.num_classes:
            raise ValueError(
                f"labels must lie in [0, {self.options.num_classes}) (num_classes), got "
                f"[{int(labels.min())}, {int(labels.max())}]: set num_classes to the data set's classes"
            )
        smoothing = self.options.label_smoothing
        logits = [self.classifier(self.encode(x)) for x in (x1, x2)]
        loss = sum(F.cross_entropy(lg, labels, label_smoothing=smoothing) for lg in logits) / 2
        with torch.no_grad():
            accuracy = torch.stack([(lg.argmax(1) == labels).float().mean() for lg in logits]).mean()
        return loss, {"ce": loss.detach(), "train_accuracy": accuracy}
