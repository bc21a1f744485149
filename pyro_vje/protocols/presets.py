"""The settings the one-class protocol and its sweep start from (Section 5.3, Figure 4).

Plain values, importable without torch: the command line shows them in ``--help``.
"""

from __future__ import annotations

from typing import Any

#: the paper's one-class settings (Section 5.3) on top of a config: batch 64, SGD at
#: 5e-6 with cosine decay (``lr`` is per 256 images, so 2e-5 x 64/256 = 5e-6), wd 5e-6,
#: beta 1, nu 0.5 (the best cell of Figure 4), 800 epochs.
PAPER_ONE_CLASS: dict[str, Any] = {
    "batch_size": 64,
    "lr": 2e-5,
    "weight_decay": 5e-6,
    "beta": 1.0,
    "df": 0.5,
    "epochs": 800,
    "warmup_epochs": 0,
}

#: a CPU-sized one-class setting for the embedded digits (about 10 s a class on 2 cores).
DIGITS_ONE_CLASS: dict[str, Any] = {
    "batch_size": 64,
    "lr": 0.01,
    "df": 0.5,
    "beta": 1.0,
    "epochs": 20,
    "warmup_epochs": 2,
}

#: the beta x nu grid of Figure 4.
PAPER_BETAS = (0.0, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
PAPER_DFS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0)


def one_class_preset(dataset: str) -> dict[str, Any]:
    """The preset of ``dataset``: :data:`DIGITS_ONE_CLASS` for digits, else :data:`PAPER_ONE_CLASS`."""
    return dict(DIGITS_ONE_CLASS if dataset == "digits" else PAPER_ONE_CLASS)
