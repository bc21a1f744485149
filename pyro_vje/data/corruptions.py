"""Common corruptions at graded severities: a documented subset of CIFAR-10-C, on torch and PIL.

Hendrycks & Dietterich (ICLR 2019, "Benchmarking neural network robustness to common corruptions
and perturbations") corrupt every CIFAR-10 test image with 15 corruptions at 5 severities; their
``make_cifar_c.py`` sets each severity's parameter. This module implements five of them (and the
extra ``gaussian_blur``) with exactly those parameters, on images of any size and channel count
(28x28 grayscale as well as 32x32 RGB), so that uncertainty can be measured against a controlled
difficulty (:mod:`pyro_vje.protocols.uncertainty`). Each takes a float image tensor ``(C, H, W)``
in ``[0, 1]`` and returns one of the same shape in ``[0, 1]``:

==================  ==============================================  =============================
name                definition (CIFAR-10-C)                         parameter at severity 1..5
==================  ==============================================  =============================
gaussian_noise      ``clip(x + N(0, c^2))``                         c = .04, .06, .08, .09, .10
gaussian_blur       Gaussian filter, sigma c, truncated at 4 sigma,   c = .4, .6, .7, .8, 1.0
                    edges repeated (skimage's ``gaussian``)
contrast            ``clip((x - m) c + m)``, m the per-channel mean   c = .75, .5, .4, .3, .15
jpeg_compression    JPEG at quality c (PIL)                         c = 80, 65, 58, 50, 40
pixelate            BOX-resize to ``int(side c)`` and back (PIL)    c = .95, .9, .85, .75, .65
==================  ==============================================  =============================

Why not the ``imagecorruptions`` package: it pulls OpenCV and scikit-image for the five
corruptions used here, and several of its others assume images far larger than 28x28 (frost,
for one, crops a fixed-size texture).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms import functional as TF

__all__ = ["CORRUPTIONS", "SEVERITIES", "check_corruptions", "corrupt"]

#: severities 1..5 of each corruption: CIFAR-10-C's parameters (``make_cifar_c.py``)
SEVERITIES: dict[str, tuple[float, ...]] = {
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),
    "gaussian_blur": (0.4, 0.6, 0.7, 0.8, 1.0),
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),
    "jpeg_compression": (80, 65, 58, 50, 40),
    "pixelate": (0.95, 0.9, 0.85, 0.75, 0.65),
}
CORRUPTIONS: tuple[str, ...] = tuple(SEVERITIES)


def _gaussian_noise(x: torch.Tensor, c: float, generator: torch.Generator | None) -> torch.Tensor:
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    return (x + c * noise).clamp(0, 1)


def _gaussian_blur(x: torch.Tensor, sigma: float, generator: torch.Generator | None) -> torch.Tensor:
    radius = int(4.0 * sigma + 0.5)  # scipy.ndimage's truncate=4.0, what skimage's gaussian calls
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = (kernel / kernel.sum()).to(x.dtype)
    c = x.shape[0]
    y = F.pad(x[None], (radius, radius, radius, radius), mode="replicate")  # mode="nearest"
    y = F.conv2d(y, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    y = F.conv2d(y, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return y[0].clamp(0, 1)


def _contrast(x: torch.Tensor, c: float, generator: torch.Generator | None) -> torch.Tensor:
    means = x.mean(dim=(1, 2), keepdim=True)
    return ((x - means) * c + means).clamp(0, 1)


def _to_pil(x: torch.Tensor) -> Image.Image:
    return TF.to_pil_image((x * 255).round().clamp(0, 255).to(torch.uint8))


def _from_pil(image: Image.Image, like: torch.Tensor) -> torch.Tensor:
    return TF.pil_to_tensor(image).to(like.dtype).div(255).reshape(like.shape)


def _jpeg(x: torch.Tensor, quality: float, generator: torch.Generator | None) -> torch.Tensor:
    buffer = io.BytesIO()
    _to_pil(x).save(buffer, "JPEG", quality=int(quality))
    buffer.seek(0)
    with Image.open(buffer) as image:
        return _from_pil(image.convert("L" if x.shape[0] == 1 else "RGB"), x)


def _pixelate(x: torch.Tensor, c: float, generator: torch.Generator | None) -> torch.Tensor:
    h, w = x.shape[-2:]
    small = _to_pil(x).resize((max(1, int(w * c)), max(1, int(h * c))), Image.BOX)
    return _from_pil(small.resize((w, h), Image.BOX), x)


_FUNCTIONS: dict[str, Callable[[torch.Tensor, float, torch.Generator | None], torch.Tensor]] = {
    "gaussian_noise": _gaussian_noise,
    "gaussian_blur": _gaussian_blur,
    "contrast": _contrast,
    "jpeg_compression": _jpeg,
    "pixelate": _pixelate,
}


def check_corruptions(names) -> tuple[str, ...]:
    """``names`` (a sequence or a comma-separated string) checked against :data:`CORRUPTIONS`."""
    names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
    names = [n for n in names if n]
    unknown = [n for n in names if n not in SEVERITIES]
    if unknown or not names:
        raise ValueError(f"unknown corruption(s) {unknown or names}; choose from {', '.join(CORRUPTIONS)}")
    return tuple(names)


def corrupt(
    image: torch.Tensor, name: str, severity: int, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``image`` (float ``(C, H, W)`` in ``[0, 1]``) under corruption ``name`` at ``severity``
    (0 = the image itself, 1..5 = CIFAR-10-C's levels); ``generator`` seeds the noise."""
    check_corruptions([name])
    if not isinstance(severity, int) or not 0 <= severity <= 5:
        raise ValueError(f"severity must be an integer 0..5, got {severity!r}")
    if not isinstance(image, torch.Tensor) or image.dim() != 3 or not image.is_floating_point():
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"corrupt expects a float image tensor (C, H, W) in [0, 1], got {shape}")
    if not math.isfinite(float(image.min())) or image.min() < 0 or image.max() > 1:
        raise ValueError("corrupt expects pixel values in [0, 1] (before normalization)")
    if severity == 0:
        return image
    return _FUNCTIONS[name](image, SEVERITIES[name][severity - 1], generator)
