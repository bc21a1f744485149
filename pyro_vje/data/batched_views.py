"""The MoCo v2 augmentation on a whole ``uint8`` batch at once, on the batch's device.

:class:`BatchedMocoV2` makes one random view of every image of a ``uint8`` tensor
``(N, C, H, W)`` with the recipe of :func:`~pyro_vje.data.transforms.moco_v2_transform`
(paper Section 5.2; Chen et al., 2020b), each image with its own parameters, and no
Python loop over images. Call it twice for the two views. Steps, per image:

1. RandomResizedCrop(scale (0.2, 1), ratio (3/4, 4/3)): the crop box is drawn as
   torchvision's ``RandomResizedCrop.get_params`` draws it -- up to 10 tries of
   (area fraction, log aspect ratio), the first whose rounded box fits, else the
   central-crop fallback -- vectorized: all 10 tries are drawn for every image and the
   first valid one is kept, which has the same distribution as stopping at it.
2. Bilinear resize of the box to ``image_size`` as PIL resizes it (torchvision's PIL
   path): two per-image resampling matrices ``Ry (S, H)`` and ``Rx (S, W)`` hold PIL's
   bilinear (triangle) filter weights -- stretched by the scale factor when the box is
   larger than the output (PIL's antialiasing), renormalized at the box's edges (PIL's
   clamping) -- and the view is ``Ry @ image @ Rx^T``, two batched matrix products. This
   is chosen over ``grid_sample`` (which neither clamps at the box edge nor antialiases)
   and ``roi_align`` (no antialiasing, and a torchvision-ops dependency on the device):
   given the box it reproduces PIL's resize up to PIL's 8-bit rounding.
3. Horizontal flip (p=0.5), folded into ``Rx`` (its rows reversed). The recipe flips
   last; flipping commutes with the colour operations (pointwise) and with the Gaussian
   blur (a symmetric kernel with reflect padding), so flipping first is the same map.
4. ColorJitter(brightness 0.4, contrast 0.4, saturation 0.4, hue 0.1) with p=0.8, the
   four operations in the random order torchvision draws per call (``randperm(4)``),
   reproduced per image: brightness, contrast and saturation are each the blend
   ``clamp(a x + b gray(x) + c mean(gray(x)), 0, 1)`` of torchvision's tensor
   functions, so the operations before the hue shift run as three blend slots and those
   after it as three more (an image's unused slots are the identity ``a=1, b=c=0``);
   the hue shift (RGB -> HSV -> RGB, torchvision's formulas) runs once, between them.
5. RandomGrayscale (p=0.2): ``0.2989 R + 0.587 G + 0.114 B`` on all three channels.
6. Gaussian blur (p=0.5, sigma uniform in [0.1, 2], kernel ~10% of the size, odd) only
   when ``blur`` (default: ``image_size >= 96``, as :func:`moco_v2_transform`): one
   separable depthwise convolution with per-image kernels, reflect padding.
7. Normalize with the data set's mean and std.

Images with one channel skip saturation, hue and grayscale, as torchvision does.

Randomness: :meth:`BatchedMocoV2.sample` draws every parameter of a batch
(:class:`ViewParams`) from a ``torch.Generator`` (on the generator's device; the
parameters are then moved to the images' device), so views are a pure function of
(images, generator state); :meth:`BatchedMocoV2.apply` is deterministic.

Deviations from the per-image PIL path, all below one grey level: PIL rounds to
``uint8`` after every step (resize, each jitter operation, grayscale, blur) and computes
the resize in fixed point and the hue shift in 8-bit HSV; here everything is float32.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

__all__ = ["BatchedMocoV2", "ViewParams", "blur_kernel_size", "resample_matrices", "sample_crop_boxes"]

# ITU-R 601-2 luma weights, as torchvision's rgb_to_grayscale and PIL's convert("L").
_LUMA = (0.2989, 0.587, 0.114)
# ColorJitter's operation ids in torchvision's fn_idx.
_BRIGHTNESS, _CONTRAST, _SATURATION, _HUE = 0, 1, 2, 3


def blur_kernel_size(image_size: int) -> int:
    """The Gaussian blur kernel of :func:`~pyro_vje.data.transforms.moco_v2_transform`: ~10% of
    ``image_size``, odd, at least 3."""
    return max(3, int(0.1 * image_size) // 2 * 2 + 1)


@dataclass(frozen=True)
class ViewParams:
    """Per-image parameters of one batch of views (``N`` images).

    ``boxes``: ``(N, 4)`` long, the crop ``(top, left, height, width)``; ``flip``, ``jitter``,
    ``grayscale``, ``blur``: ``(N,)`` bool, whether each step applies; ``factors``: ``(N, 4)``
    float, the brightness, contrast and saturation factors and the hue shift;
    ``order``: ``(N, 4)`` long, the jitter order (a permutation of 0=brightness, 1=contrast,
    2=saturation, 3=hue); ``sigma``: ``(N,)`` float, the blur's standard deviation.
    """

    boxes: torch.Tensor
    flip: torch.Tensor
    jitter: torch.Tensor
    factors: torch.Tensor
    order: torch.Tensor
    grayscale: torch.Tensor
    blur: torch.Tensor
    sigma: torch.Tensor

    def to(self, device: torch.device | str) -> ViewParams:
        """The same parameters on ``device``."""
        return ViewParams(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def __len__(self) -> int:
        return len(self.boxes)


def sample_crop_boxes(
    n: int,
    height: int,
    width: int,
    *,
    scale: tuple[float, float] = (0.2, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    tries: int = 10,
) -> torch.Tensor:
    """``n`` RandomResizedCrop boxes ``(top, left, height, width)`` for a ``height x width`` image.

    The distribution of torchvision's ``RandomResizedCrop.get_params``: area fraction
    uniform in ``scale``, log aspect ratio uniform in ``log(ratio)``, box sides rounded
    half-to-even; the first of ``tries`` draws whose box fits the image is kept and its
    corner drawn uniformly, else the central crop of the closest allowed aspect ratio.
    Geometry in float64, like torchvision's Python floats. Returns a ``(n, 4)`` long tensor
    on ``device`` (default: the generator's, else CPU).
    """
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    if not 0 < scale[0] <= scale[1]:
        raise ValueError(f"scale must satisfy 0 < min <= max, got {scale}")
    if not 0 < ratio[0] <= ratio[1]:
        raise ValueError(f"ratio must satisfy 0 < min <= max, got {ratio}")
    if device is None:
        device = generator.device if generator is not None else "cpu"
    f64 = {"dtype": torch.float64, "device": device}
    area = height * width
    target = area * (scale[0] + (scale[1] - scale[0]) * torch.rand(n, tries, generator=generator, **f64))
    lo, hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(lo + (hi - lo) * torch.rand(n, tries, generator=generator, **f64))
    w = torch.round(torch.sqrt(target * aspect))
    h = torch.round(torch.sqrt(target / aspect))
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = fits.to(torch.uint8).argmax(dim=1, keepdim=True)  # index of the first fitting try
    found = fits.any(dim=1)
    w = w.gather(1, first).squeeze(1)
    h = h.gather(1, first).squeeze(1)
    corner = torch.rand(n, 2, generator=generator, **f64)
    top = torch.minimum(torch.floor(corner[:, 0] * (height - h + 1)), height - h)
    left = torch.minimum(torch.floor(corner[:, 1] * (width - w + 1)), width - w)
    # torchvision's fallback: the central crop, of the closest aspect ratio within `ratio`
    in_ratio = width / height
    if in_ratio < min(ratio):
        fw, fh = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        fw, fh = int(round(height * max(ratio))), height
    else:
        fw, fh = width, height
    fallback = ((height - fh) // 2, (width - fw) // 2, fh, fw)
    boxes = [torch.where(found, v, float(f)) for v, f in zip((top, left, h, w), fallback)]
    return torch.stack(boxes, dim=1).long()


def resample_matrices(start: torch.Tensor, length: torch.Tensor, size: int, out_size: int) -> torch.Tensor:
    """PIL's bilinear resize of the intervals ``[start, start + length)`` of an axis of ``size`` pixels
    to ``out_size`` pixels, as a batch of matrices ``(N, out_size, size)``.

    Row ``x`` holds the weights of output pixel ``x``: the triangle filter
    ``max(0, 1 - |p + 0.5 - c_x| / s)`` at input pixel ``p`` (relative to ``start``) with centre
    ``c_x = (x + 0.5) * length / out_size`` and support ``s = max(1, length / out_size)``
    (wider when shrinking: PIL's antialiasing), zero outside the interval, rows normalized
    to sum to 1 (PIL's ``precompute_coeffs`` for ``BILINEAR``).
    """
    dtype = torch.float32
    device = start.device
    start = start.to(dtype).unsqueeze(1).unsqueeze(2)  # (N, 1, 1)
    length = length.to(dtype).unsqueeze(1).unsqueeze(2)
    scale = length / out_size
    support = torch.clamp(scale, min=1.0)
    centre = (torch.arange(out_size, dtype=dtype, device=device).view(1, -1, 1) + 0.5) * scale
    pixel = torch.arange(size, dtype=dtype, device=device).view(1, 1, -1) - start  # relative to the box
    weights = torch.clamp(1.0 - torch.abs(pixel + 0.5 - centre) / support, min=0.0)
    weights = weights * ((pixel >= 0) & (pixel < length)).to(dtype)
    return weights / weights.sum(dim=2, keepdim=True)


class BatchedMocoV2:
    """One MoCo v2 view of every image of a ``uint8`` batch ``(N, C, H, W)``, on the batch's device.

    The recipe and its parameters are those of :func:`~pyro_vje.data.transforms.moco_v2_transform`
    (see the module docstring for how each step is computed); the result is a normalized
    float32 tensor ``(N, C, image_size, image_size)``. ``mean``/``std`` have one entry per
    channel (1 or 3). ``blur=None`` means ``image_size >= 96``.

    ``views = augment(images, generator)`` draws the parameters (:meth:`sample`) and applies
    them (:meth:`apply`); call it twice for two views.
    """

    def __init__(
        self,
        image_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        *,
        blur: bool | None = None,
        crop_scale: tuple[float, float] = (0.2, 1.0),
        crop_ratio: tuple[float, float] = (3 / 4, 4 / 3),
        jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1),
        jitter_p: float = 0.8,
        grayscale_p: float = 0.2,
        blur_p: float = 0.5,
        blur_sigma: tuple[float, float] = (0.1, 2.0),
        flip_p: float = 0.5,
    ):
        if image_size < 1:
            raise ValueError(f"image_size must be positive, got {image_size}")
        if len(mean) != len(std):
            raise ValueError(f"mean and std differ in length: {len(mean)} vs {len(std)}")
        if len(mean) not in (1, 3):
            raise ValueError(f"mean/std must have 1 or 3 entries (channels), got {len(mean)}")
        if any(s <= 0 for s in std):
            raise ValueError(f"std must be positive, got {tuple(std)}")
        for name, p in (
            ("jitter_p", jitter_p),
            ("grayscale_p", grayscale_p),
            ("blur_p", blur_p),
            ("flip_p", flip_p),
        ):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {p}")
        b, c, s, h = jitter
        if min(b, c, s) < 0 or not 0 <= h <= 0.5:
            raise ValueError(
                f"jitter needs brightness, contrast, saturation >= 0 and hue in [0, 0.5], got {jitter}"
            )
        if not 0 < blur_sigma[0] <= blur_sigma[1]:
            raise ValueError(f"blur_sigma must satisfy 0 < min <= max, got {blur_sigma}")
        self.image_size = int(image_size)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(v) for v in std)
        self.blur = self.image_size >= 96 if blur is None else bool(blur)
        self.kernel_size = blur_kernel_size(self.image_size)
        self.crop_scale = (float(crop_scale[0]), float(crop_scale[1]))
        self.crop_ratio = (float(crop_ratio[0]), float(crop_ratio[1]))
        # ColorJitter's factor ranges: [max(0, 1 - x), 1 + x] for the blends, [-h, h] for hue
        self.jitter_ranges = (
            (max(0.0, 1 - b), 1 + b),
            (max(0.0, 1 - c), 1 + c),
            (max(0.0, 1 - s), 1 + s),
            (-h, h),
        )
        self.jitter_p = float(jitter_p)
        self.grayscale_p = float(grayscale_p)
        self.blur_p = float(blur_p)
        self.blur_sigma = (float(blur_sigma[0]), float(blur_sigma[1]))
        self.flip_p = float(flip_p)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(image_size={self.image_size}, crop_scale={self.crop_scale}, "
            f"crop_ratio={self.crop_ratio}, jitter_ranges={self.jitter_ranges}, jitter_p={self.jitter_p}, "
            f"grayscale_p={self.grayscale_p}, blur={self.blur}, blur_p={self.blur_p}, "
            f"kernel_size={self.kernel_size}, blur_sigma={self.blur_sigma}, flip_p={self.flip_p}, "
            f"mean={self.mean}, std={self.std})"
        )

    # ---------------------------------------------------------------- parameters
    def sample(self, n: int, height: int, width: int, generator: torch.Generator | None = None) -> ViewParams:
        """Draw the parameters of ``n`` views of ``height x width`` images (on the generator's device)."""
        if n < 1:
            raise ValueError(f"need at least one image, got n={n}")
        device = generator.device if generator is not None else torch.device("cpu")
        boxes = sample_crop_boxes(
            n, height, width, scale=self.crop_scale, ratio=self.crop_ratio, generator=generator, device=device
        )
        u = torch.rand(n, 9, generator=generator, device=device)
        factors = torch.stack(
            [lo + (hi - lo) * u[:, 4 + k] for k, (lo, hi) in enumerate(self.jitter_ranges)], 1
        )
        # a uniformly random permutation per image: argsort of i.i.d. uniforms
        order = torch.argsort(torch.rand(n, 4, generator=generator, device=device), dim=1)
        sigma_lo, sigma_hi = self.blur_sigma
        return ViewParams(
            boxes=boxes,
            flip=u[:, 0] < self.flip_p,
            jitter=u[:, 1] < self.jitter_p,
            grayscale=u[:, 2] < self.grayscale_p,
            blur=(u[:, 3] < self.blur_p) & self.blur,
            factors=factors,
            order=order,
            sigma=sigma_lo + (sigma_hi - sigma_lo) * u[:, 8],
        )

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One random view of each image of ``images`` (``uint8``, ``(N, C, H, W)``)."""
        n, _, height, width = _check_images(images, len(self.mean))
        params = self.sample(n, height, width, generator)
        return self.apply(images, params.to(images.device))

    # ------------------------------------------------------------------ the views
    def apply(self, images: torch.Tensor, params: ViewParams) -> torch.Tensor:
        """The views of ``images`` (``uint8``, ``(N, C, H, W)``) under ``params``: normalized float32."""
        n, channels, height, width = _check_images(images, len(self.mean))
        if len(params) != n:
            raise ValueError(f"{len(params)} parameter sets for {n} images")
        x = self.crop_resize_flip(images, params)
        if channels == 3:
            x = self.color_jitter(x, params)
            gray = _gray(x).expand_as(x)
            x = torch.where(params.grayscale.view(-1, 1, 1, 1), gray, x)
        else:  # one channel: brightness and contrast only, as torchvision
            x = self.color_jitter(x, params)
        if self.blur:
            x = self.gaussian_blur(x, params)
        return (x - _constant(self.mean, x)) / _constant(self.std, x)

    def crop_resize_flip(self, images: torch.Tensor, params: ViewParams) -> torch.Tensor:
        """Steps 1-3: crop each box, resize it bilinearly to ``image_size`` (PIL's filter), flip.

        Returns float32 in [0, 1]."""
        _, _, height, width = images.shape
        size = self.image_size
        top, left, h, w = params.boxes.unbind(1)
        rows = resample_matrices(top, h, height, size)  # (N, S, H)
        cols = resample_matrices(left, w, width, size)  # (N, S, W)
        cols = torch.where(params.flip.view(-1, 1, 1), cols.flip(1), cols)
        x = images.to(torch.float32) * (1.0 / 255.0)
        x = torch.matmul(rows.unsqueeze(1), x)  # (N, C, S, W)
        return torch.matmul(x, cols.transpose(1, 2).unsqueeze(1))  # (N, C, S, S)

    def color_jitter(self, x: torch.Tensor, params: ViewParams) -> torch.Tensor:
        """Step 4: ColorJitter in each image's order (``params.order``), where ``params.jitter``."""
        n, channels = x.shape[:2]
        order = params.order
        applied = params.jitter
        hue_at = torch.argmax((order == _HUE).to(torch.uint8), dim=1)  # (N,)
        coefs = self._blend_coefficients(params.factors, channels)  # (N, 5, 3): per op id and identity
        identity = 4
        slots = torch.arange(3, device=x.device).view(1, 3)
        before = torch.where(slots < hue_at.unsqueeze(1), order.gather(1, slots.expand(n, 3)), identity)
        after_pos = hue_at.unsqueeze(1) + 1 + slots
        after = torch.where(after_pos < 4, order.gather(1, after_pos.clamp(max=3)), identity)
        ops = torch.cat([before, after], dim=1)  # (N, 6): blend slots, hue between slot 3 and slot 4
        ops = torch.where(applied.unsqueeze(1), ops, identity)
        slot_coefs = coefs.gather(1, ops.unsqueeze(2).expand(n, 6, 3))  # (N, 6, 3)
        for slot in range(6):
            if slot == 3 and channels == 3:
                shifted = _adjust_hue(x, params.factors[:, 3])
                x = torch.where(applied.view(-1, 1, 1, 1), shifted, x)
            a, b, c = (slot_coefs[:, slot, k].view(-1, 1, 1, 1) for k in range(3))
            gray = _gray(x)
            offset = b * gray + c * gray.mean(dim=(2, 3), keepdim=True)  # (N, 1, H, W)
            x = torch.addcmul(offset, a, x).clamp_(0.0, 1.0)
        return x

    @staticmethod
    def _blend_coefficients(factors: torch.Tensor, channels: int) -> torch.Tensor:
        """``(a, b, c)`` of ``clamp(a x + b gray + c mean(gray))`` for op ids 0-3 and the identity (4).

        brightness ``f x`` (a blend with black), contrast ``f x + (1 - f) mean(gray)``,
        saturation ``f x + (1 - f) gray`` (the identity for one channel); hue is not a blend."""
        n = len(factors)
        coefs = torch.zeros(n, 5, 3, dtype=torch.float32, device=factors.device)
        coefs[:, :, 0] = 1.0
        fb, fc, fs = factors[:, 0], factors[:, 1], factors[:, 2]
        coefs[:, _BRIGHTNESS, 0] = fb
        coefs[:, _CONTRAST, 0] = fc
        coefs[:, _CONTRAST, 2] = 1.0 - fc
        if channels == 3:
            coefs[:, _SATURATION, 0] = fs
            coefs[:, _SATURATION, 1] = 1.0 - fs
        return coefs

    def gaussian_blur(self, x: torch.Tensor, params: ViewParams) -> torch.Tensor:
        """Step 6: separable Gaussian blur, per-image sigma, reflect padding, where ``params.blur``."""
        n, channels, height, width = x.shape
        k = self.kernel_size
        half = (k - 1) * 0.5
        offsets = torch.linspace(-half, half, k, dtype=x.dtype, device=x.device)
        pdf = torch.exp(-0.5 * (offsets.view(1, -1) / params.sigma.view(-1, 1).to(x.dtype)) ** 2)
        kernel = (pdf / pdf.sum(dim=1, keepdim=True)).repeat_interleave(channels, dim=0)  # (N*C, k)
        pad = k // 2
        flat = F.pad(x.reshape(1, n * channels, height, width), [pad, pad, pad, pad], mode="reflect")
        flat = F.conv2d(flat, kernel.view(-1, 1, k, 1), groups=n * channels)
        flat = F.conv2d(flat, kernel.view(-1, 1, 1, k), groups=n * channels)
        return torch.where(params.blur.view(-1, 1, 1, 1), flat.view(n, channels, height, width), x)


def _check_images(images: torch.Tensor, channels: int) -> tuple[int, int, int, int]:
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if images.dtype != torch.uint8:
        raise ValueError(f"images must be uint8 (pixel values 0-255), got {images.dtype}")
    if images.dim() != 4:
        raise ValueError(f"images must be a batch (N, C, H, W), got shape {tuple(images.shape)}")
    n, c, h, w = images.shape
    if c != channels:
        raise ValueError(
            f"images have {c} channels but mean/std have {channels} entries (expected (N, C, H, W))"
        )
    if n < 1 or h < 1 or w < 1:
        raise ValueError(f"images must be non-empty, got shape {tuple(images.shape)}")
    return n, c, h, w


def _gray(x: torch.Tensor) -> torch.Tensor:
    """Luma ``(N, 1, H, W)`` of RGB ``x`` (torchvision's ``rgb_to_grayscale``); ``x`` if one channel."""
    if x.shape[1] == 1:
        return x
    return (x * _constant(_LUMA, x)).sum(dim=1, keepdim=True)


_CONSTANTS: dict[tuple, torch.Tensor] = {}


def _constant(values: tuple[float, ...], like: torch.Tensor) -> torch.Tensor:
    """``values`` as a ``(1, C, 1, 1)`` tensor on ``like``'s device and dtype, made once and kept: building
    it anew each batch would be a host-to-device copy, which synchronizes a CUDA stream."""
    key = (values, like.device, like.dtype)
    if key not in _CONSTANTS:
        _CONSTANTS[key] = torch.tensor(values, dtype=like.dtype, device=like.device).view(1, -1, 1, 1)
    return _CONSTANTS[key]


def _adjust_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the hue of RGB ``x`` in [0, 1] by ``shift`` (per image, in turns): torchvision's
    ``_rgb2hsv``, ``h = (h + shift) mod 1``, then HSV -> RGB as ``v - v s clamp(min(k, 4 - k), 0, 1)``
    with ``k = (n + 6 h) mod 6``, ``n = 5, 3, 1`` for R, G, B (the same map as torchvision's
    six-sector ``_hsv2rgb``)."""
    r, g, b = x.unbind(1)
    maxc = x.amax(dim=1)
    minc = x.amin(dim=1)
    equal = maxc == minc
    chroma = maxc - minc
    ones = torch.ones_like(maxc)
    sat = chroma / torch.where(equal, ones, maxc)
    divisor = torch.where(equal, ones, chroma)
    rc = (maxc - r) / divisor
    gc = (maxc - g) / divisor
    bc = (maxc - b) / divisor
    is_r = maxc == r
    is_g = (maxc == g) & ~is_r
    is_b = ~is_g & ~is_r
    hue = is_r * (bc - gc) + is_g * (2.0 + rc - bc) + is_b * (4.0 + gc - rc)
    hue = torch.fmod(hue / 6.0 + 1.0, 1.0)
    hue = torch.remainder(hue + shift.view(-1, 1, 1).to(x.dtype), 1.0)
    k = torch.remainder(_constant((5.0, 3.0, 1.0), x) + 6.0 * hue.unsqueeze(1), 6.0)
    ramp = torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0)
    value = maxc.unsqueeze(1)
    return value - value * sat.unsqueeze(1) * ramp
