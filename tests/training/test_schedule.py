"""The learning-rate schedule: linear warm-up, then cosine decay (paper Section 5.2)."""

import numpy as np
import pytest

from pyro_vje.training import lr_at, scaled_lr


def test_warmup_then_cosine_schedule():
    assert lr_at(0, 100, 10, 1.0) == pytest.approx(0.1)
    assert lr_at(9, 100, 10, 1.0) == pytest.approx(1.0)
    assert lr_at(10, 100, 10, 1.0) == pytest.approx(1.0)
    assert lr_at(55, 100, 10, 1.0) == pytest.approx(0.5)
    assert lr_at(99, 100, 10, 1.0) == pytest.approx(0.5 * (1 + np.cos(np.pi * 89 / 90)))
    assert lr_at(5, 100, 0, 2.0) == pytest.approx(1.0 + np.cos(np.pi * 5 / 100))
    assert scaled_lr(0.05, 512) == pytest.approx(0.1)
