"""What a run is compared with before it trains: kNN on raw pixels and on the random-init encoder."""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..config import TrainConfig
from ..evaluation import flatten_pixels, knn_evaluate
from .loaders import RunData

log = logging.getLogger("pyro_vje")

MAX_PIXEL_VALUES = 2e8  # above this the raw-pixel bank would not fit comfortably in memory (ImageNet)


def untrained_knn(
    config: TrainConfig, data: RunData, evaluate: Callable[[], dict[str, float]]
) -> dict[str, float]:
    """kNN accuracy of raw (normalized) pixels and of the untrained method's z (``evaluate()``).

    One class in the bank (the one-class protocol) makes kNN classification
    undefined: no baselines. Raw pixels are skipped above :data:`MAX_PIXEL_VALUES`.
    """
    if config.normal_class is not None:
        return {}
    size = data.image_size
    n_floats = len(data.bank_loader.dataset) * data.info.channels * size * size
    if n_floats > MAX_PIXEL_VALUES:
        log.info("raw-pixel kNN baseline skipped (%.1e pixel values)", n_floats)
        return {"knn_z_random_init": evaluate()["knn_z"]}
    bank_x, bank_y = flatten_pixels(data.bank_loader)
    test_x, test_y = flatten_pixels(data.test_loader)
    raw = knn_evaluate(
        bank_x, bank_y, test_x, test_y, data.num_classes, config.knn_k, config.knn_temperature
    )["top1"]
    init = evaluate()
    return {"knn_raw_pixels": raw, "knn_z_random_init": init["knn_z"]}
