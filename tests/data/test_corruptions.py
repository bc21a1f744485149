"""The corruptions against their definitions (CIFAR-10-C's make_cifar_c.py), with NumPy/SciPy references."""

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from pyro_vje.data import corruptions as C


def _image(channels=3, size=28, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand((channels, size, size), generator=g)


def test_the_severity_tables_are_cifar10c_s():
    assert C.SEVERITIES["gaussian_noise"] == (0.04, 0.06, 0.08, 0.09, 0.10)
    assert C.SEVERITIES["contrast"] == (0.75, 0.5, 0.4, 0.3, 0.15)
    assert C.SEVERITIES["jpeg_compression"] == (80, 65, 58, 50, 40)
    assert C.SEVERITIES["pixelate"] == (0.95, 0.9, 0.85, 0.75, 0.65)
    assert C.SEVERITIES["gaussian_blur"] == (0.4, 0.6, 0.7, 0.8, 1.0)


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_gaussian_blur_is_scipys_gaussian_filter_with_nearest_edges(severity):
    x = _image(channels=2)
    sigma = C.SEVERITIES["gaussian_blur"][severity - 1]
    got = C.corrupt(x, "gaussian_blur", severity).numpy()
    want = np.stack([gaussian_filter(c.double().numpy(), sigma, mode="nearest", truncate=4.0) for c in x])
    np.testing.assert_allclose(got, np.clip(want, 0, 1), atol=1e-6)


def test_contrast_is_the_per_channel_mean_formula():
    x = _image()
    got = C.corrupt(x, "contrast", 4).numpy()
    a = x.numpy().astype(np.float64)
    means = a.mean(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(got, np.clip((a - means) * 0.3 + means, 0, 1), atol=1e-6)


def test_gaussian_noise_has_the_severitys_standard_deviation():
    x = torch.full((1, 200, 200), 0.5)  # mid-gray: no clipping at 5 sigma
    g = torch.Generator().manual_seed(1)
    residual = (C.corrupt(x, "gaussian_noise", 5, generator=g) - x).numpy()
    assert abs(residual.mean()) < 0.002 and residual.std() == pytest.approx(0.10, rel=0.02)
    again = C.corrupt(x, "gaussian_noise", 5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(again - x, torch.as_tensor(residual))  # seeded


def test_pixelate_at_half_size_is_2x2_block_means_repeated():
    x = (_image(channels=1, size=28) * 255).round() / 255  # exact in uint8
    got = C._pixelate(x, 0.5, None).numpy()[0]
    a = (x.numpy()[0] * 255).reshape(14, 2, 14, 2).mean(axis=(1, 3))
    want = np.repeat(np.repeat(a, 2, axis=0), 2, axis=1) / 255
    np.testing.assert_allclose(got, want, atol=1 / 255 + 1e-6)  # PIL rounds the box mean to uint8


def test_jpeg_loses_more_at_each_severity_and_keeps_shape():
    x = C.corrupt(_image(channels=3, size=32), "gaussian_blur", 5)  # smooth: JPEG's domain
    errors = [float((C.corrupt(x, "jpeg_compression", s) - x).abs().mean()) for s in (1, 3, 5)]
    assert errors[0] < errors[1] < errors[2]
    assert C.corrupt(_image(channels=1), "jpeg_compression", 2).shape == (1, 28, 28)


def test_severity_zero_is_the_image_and_bad_input_is_named():
    x = _image()
    assert C.corrupt(x, "pixelate", 0) is x
    with pytest.raises(ValueError, match="unknown corruption"):
        C.corrupt(x, "frost", 1)
    with pytest.raises(ValueError, match="severity must be"):
        C.corrupt(x, "contrast", 6)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        C.corrupt(x * 3, "contrast", 1)
    with pytest.raises(ValueError, match="float image tensor"):
        C.corrupt(torch.zeros(28, 28), "contrast", 1)
    assert C.check_corruptions("contrast, pixelate") == ("contrast", "pixelate")
