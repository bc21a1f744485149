"""scikit-learn's 8x8 digits: the embedded default data set (no download).

1,797 grey-scale images of the digits 0-9. :func:`load_digits_split` returns a
stratified train/test split as tensors of shape ``(N, 1, 8, 8)`` in ``[0, 1]``;
:class:`DigitsTwoViews` is a two-view augmentation suited to 8x8 images
(random affine, intensity jitter, pixel noise, random erasing): the role the
MoCo v2 recipe plays for CIFAR (paper Section 5.2), scaled down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


@dataclass
class DigitsSplit:
    train_images: torch.Tensor  # (N_train, 1, 8, 8) in [0, 1]
    train_labels: torch.Tensor  # (N_train,)
    test_images: torch.Tensor
    test_labels: torch.Tensor
    num_classes: int = 10


def load_digits_split(test_fraction: float = 0.25, seed: int = 0) -> DigitsSplit:
    """Stratified split of scikit-learn's digits, pixels scaled from [0, 16] to [0, 1]."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    data = load_digits()
    images = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(data.target, dtype=torch.long)
    idx_train, idx_test = train_test_split(
        range(len(labels)), test_size=test_fraction, stratify=data.target, random_state=seed
    )
    return DigitsSplit(images[idx_train], labels[idx_train], images[idx_test], labels[idx_test])


class DigitsTwoViews:
    """Random augmentation of a batch ``(N, 1, H, W)``, independently per image.

    ``views(x)`` returns two augmented copies. Each view applies a random
    affine map (rotation up to ``max_rotation`` degrees, scale in
    ``scale_range``, translation up to ``max_shift`` pixels), multiplies the
    intensity by a factor in ``contrast_range``, adds Gaussian pixel noise of
    std ``noise``, and with probability ``erase_prob`` blanks a random
    ``erase_size`` x ``erase_size`` patch.
    """

    def __init__(
        self,
        max_rotation: float = 15.0,
        scale_range: tuple[float, float] = (0.85, 1.15),
        max_shift: float = 1.0,
        contrast_range: tuple[float, float] = (0.6, 1.2),
        noise: float = 0.1,
        erase_prob: float = 0.5,
        erase_size: int = 3,
    ):
        self.max_rotation = max_rotation
        self.scale_range = scale_range
        self.max_shift = max_shift
        self.contrast_range = contrast_range
        self.noise = noise
        self.erase_prob = erase_prob
        self.erase_size = erase_size

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"DigitsTwoViews expects a batch (N, C, H, W), got {tuple(x.shape)}")
        n, _, h, w = x.shape

        def uniform(lo: float, hi: float, *shape: int) -> torch.Tensor:
            return lo + (hi - lo) * torch.rand(n, *shape, generator=generator, device=x.device)

        angle = uniform(-self.max_rotation, self.max_rotation) * math.pi / 180
        scale = uniform(*self.scale_range)
        shift = uniform(-self.max_shift, self.max_shift, 2) * torch.tensor(
            [2.0 / w, 2.0 / h], device=x.device
        )
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack(
            [torch.stack([cos, -sin, shift[:, 0]], -1), torch.stack([sin, cos, shift[:, 1]], -1)], 1
        )
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        out = F.grid_sample(x, grid, padding_mode="zeros", align_corners=False)
        out = out * uniform(*self.contrast_range).view(n, 1, 1, 1)
        out = out + self.noise * torch.randn(out.shape, generator=generator, device=x.device)
        if self.erase_prob > 0:
            k = self.erase_size
            top = torch.randint(0, h - k + 1, (n,), generator=generator, device=x.device)
            left = torch.randint(0, w - k + 1, (n,), generator=generator, device=x.device)
            rows = torch.arange(h, device=x.device).view(1, h, 1)
            cols = torch.arange(w, device=x.device).view(1, 1, w)
            patch = (
                (rows >= top.view(n, 1, 1))
                & (rows < (top + k).view(n, 1, 1))
                & (cols >= left.view(n, 1, 1))
                & (cols < (left + k).view(n, 1, 1))
            )
            erase = torch.rand(n, generator=generator, device=x.device) < self.erase_prob
            out = out.masked_fill((patch & erase.view(n, 1, 1)).unsqueeze(1), 0.0)
        return out

    def views(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self(x, generator), self(x, generator)
