import pytest
import torch

from pyro_vje.networks import build_encoder


@pytest.fixture
def encoder():
    """The small CNN on 1-channel 8x8 inputs (D = 128)."""
    return build_encoder("small_cnn", in_channels=1)


@pytest.fixture
def views():
    g = torch.Generator().manual_seed(0)
    return torch.randn(12, 1, 8, 8, generator=g), torch.randn(12, 1, 8, 8, generator=g)
