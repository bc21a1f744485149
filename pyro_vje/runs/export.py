"""A trained run's artefacts: the backbone's weights and a data set's embeddings.

``pyro-vje embed RUN`` writes an ``.npz`` with ``z`` (encoder output), ``mu`` and
``scale`` (posterior loc and standard deviation, VJE) and ``labels`` for every
image of a split, in the data set's order; ``--backbone PATH`` writes the
encoder's weights alone: ``{"encoder": state_dict, "config": ...}`` on the CPU,
loadable with ``torch.load(weights_only=True)``; ``state["encoder"]`` loads into
:func:`pyro_vje.networks.build_encoder` with the run's options.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..config import TrainConfig
from ..data import DATASET_INFO, build_dataset, dataset_labels, eval_transform, subset_indices
from ..evaluation.features import extract_features
from .files import atomic_save, atomic_write

__all__ = ["embed_dataset", "export_backbone", "save_npz"]


def export_backbone(method: nn.Module, config: TrainConfig, path: str | os.PathLike) -> Path:
    """Write ``{"encoder": state_dict, "config": ...}`` atomically; return the path."""
    weights = {k: v.detach().cpu() for k, v in method.encoder.state_dict().items()}
    atomic_save({"encoder": weights, "config": config.to_dict()}, path)
    return Path(path)


def embed_dataset(
    method: nn.Module,
    config: TrainConfig,
    split: str,
    *,
    dataset: str | None = None,
    data_dir: str | None = None,
    download: bool = False,
    device: torch.device | str = "cpu",
    batch_size: int = 256,
    num_workers: int = 0,
    progress: bool = False,
    subset: int | None = None,
) -> dict[str, np.ndarray]:
    """Features of every image of ``split`` (un-augmented), as NumPy arrays; with ``subset``, of a
    class-balanced subset of that many images (seeded with the run's seed, in the split's order)."""
    name = dataset or config.dataset
    info = DATASET_INFO[name]
    train_info = DATASET_INFO[config.dataset]
    if info.channels != train_info.channels:
        raise ValueError(
            f"{name} has {info.channels} channels but the run was trained on {train_info.channels}"
        )
    size = config.image_size or train_info.image_size
    root = data_dir if data_dir is not None else (config.data_dir if name == config.dataset else None)
    indices = None
    if subset is not None:
        if subset < 1:
            raise ValueError(f"subset must be >= 1, got {subset}")
        labels = dataset_labels(build_dataset(name, split, root=root, download=download))
        indices = subset_indices(labels, subset, config.seed, clip=True, split=split)
    ds = build_dataset(
        name, split, root=root, transform=eval_transform(info, size), download=download, indices=indices
    )
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    feats = extract_features(method, loader, torch.device(device), progress=progress, desc=f"embed {split}")
    return {key: value.numpy() for key, value in feats.items()}


def save_npz(
    arrays: dict[str, np.ndarray], path: str | os.PathLike, meta: dict[str, Any] | None = None
) -> Path:
    """``np.savez`` atomically, with ``meta`` stored as a JSON string under ``"meta"``."""
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"features are written to a .npz file, got {str(path)!r}")
    payload = dict(arrays)
    if meta is not None:
        payload["meta"] = np.array(json.dumps(meta, default=str))
    return atomic_write(path, lambda f: np.savez(f, **payload))
