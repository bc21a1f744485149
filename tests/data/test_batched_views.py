"""BatchedMocoV2 against independent references: torchvision's functional ops (given the same
parameters), PIL's resize, colorsys, torchvision's per-image MoCo v2 transform (distributions,
two-sample KS tests at fixed seeds) and the recipe's rates and ranges (binomial / KS bounds)."""

import colorsys
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from scipy import stats
from torchvision import transforms as T

from pyro_vje.data.batched_views import (
    BatchedMocoV2,
    ViewParams,
    blur_kernel_size,
    resample_matrices,
    sample_crop_boxes,
)
from pyro_vje.data.transforms import moco_v2_transform

SHARED_CIFAR = Path(__file__).resolve().parents[2].parent / "shared/data/cifar10"
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
# a p-value below this fails a distribution test (each test runs at a fixed seed, so it is deterministic)
ALPHA = 1e-3


def _binomial_ok(count: int, n: int, p: float, z: float = 4.5) -> bool:
    """|count/n - p| within z standard errors of a Binomial(n, p) proportion (false alarm ~7e-6)."""
    return abs(count / n - p) <= z * math.sqrt(p * (1 - p) / n)


def synthetic_images(n: int, size: int, seed: int = 0, channels: int = 3) -> torch.Tensor:
    """Colourful structured images (smooth random fields plus edges), uint8 (n, C, size, size)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, channels, 4, 4, generator=g)
    smooth = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
    stripes = (torch.arange(size).view(1, 1, 1, size) // max(1, size // 8)) % 2
    x = 0.7 * smooth + 0.3 * stripes * torch.rand(n, channels, 1, 1, generator=g)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def _reference_view(image: torch.Tensor, aug: BatchedMocoV2, params, n: int) -> torch.Tensor:
    """One view by torchvision's functional tensor ops, the recipe's order, ``params`` of image ``n``."""
    top, left, h, w = params.boxes[n].tolist()
    y = TF.resized_crop(image.float() / 255, top, left, h, w, [aug.image_size] * 2, antialias=True)
    if params.jitter[n]:
        fb, fc, fs, fh = params.factors[n].tolist()
        ops = {0: lambda y: TF.adjust_brightness(y, fb), 1: lambda y: TF.adjust_contrast(y, fc)}
        ops.update({2: lambda y: TF.adjust_saturation(y, fs), 3: lambda y: TF.adjust_hue(y, fh)})
        for op in params.order[n].tolist():
            y = ops[op](y)
    if params.grayscale[n]:
        y = TF.rgb_to_grayscale(y, y.shape[0])
    if params.blur[n]:
        y = TF.gaussian_blur(y, [aug.kernel_size] * 2, [float(params.sigma[n])] * 2)
    if params.flip[n]:
        y = TF.hflip(y)
    return TF.normalize(y, list(aug.mean), list(aug.std))


# --- the recipe -------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [32, 96, 224])
def test_parameters_are_those_of_moco_v2_transform(size):
    """Every constant of the per-image recipe, read from its Compose, equals the batched one."""
    steps = {type(t).__name__: t for t in moco_v2_transform(size, MEAN, STD).transforms}
    aug = BatchedMocoV2(size, MEAN, STD)
    crop = steps["RandomResizedCrop"]
    assert aug.crop_scale == tuple(crop.scale) and aug.crop_ratio == pytest.approx(tuple(crop.ratio))
    applies = [t for t in moco_v2_transform(size, MEAN, STD).transforms if isinstance(t, T.RandomApply)]
    jitter = applies[0].transforms[0]
    assert isinstance(jitter, T.ColorJitter) and aug.jitter_p == applies[0].p
    theirs = (jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue)
    assert np.allclose(aug.jitter_ranges, theirs, atol=1e-12)
    assert aug.grayscale_p == steps["RandomGrayscale"].p
    assert aug.flip_p == steps["RandomHorizontalFlip"].p
    assert aug.mean == tuple(steps["Normalize"].mean) and aug.std == tuple(steps["Normalize"].std)
    assert aug.blur == (len(applies) == 2)
    if aug.blur:
        blur = applies[1].transforms[0]
        assert aug.blur_p == applies[1].p and tuple(blur.sigma) == aug.blur_sigma
        assert [aug.kernel_size] * 2 == list(blur.kernel_size) == [blur_kernel_size(size)] * 2


# --- given the parameters: exact against torchvision's functional ops ------------------------------


@pytest.mark.parametrize(
    "shape,size,blur",
    [((32, 32), 32, None), ((40, 28), 32, None), ((64, 48), 24, True), ((96, 96), 96, None)],
)
def test_views_equal_torchvision_functional_ops_given_the_parameters(shape, size, blur):
    images = synthetic_images(48, max(shape), seed=1)[:, :, : shape[0], : shape[1]].contiguous()
    aug = BatchedMocoV2(size, MEAN, STD, blur=blur)
    params = aug.sample(48, *shape, torch.Generator().manual_seed(2))
    assert params.jitter.any() and params.flip.any() and params.grayscale.any()
    views = aug.apply(images, params)
    for n in range(48):
        torch.testing.assert_close(views[n], _reference_view(images[n], aug, params, n), atol=2e-5, rtol=0)


def test_one_channel_images_get_brightness_and_contrast_only():
    images = synthetic_images(32, 16, seed=3, channels=1)
    aug = BatchedMocoV2(16, (0.5,), (0.25,))
    params = aug.sample(32, 16, 16, torch.Generator().manual_seed(4))
    views = aug.apply(images, params)
    assert views.shape == (32, 1, 16, 16)
    for n in range(32):
        torch.testing.assert_close(views[n], _reference_view(images[n], aug, params, n), atol=2e-5, rtol=0)


@pytest.mark.parametrize("shape,size", [((32, 32), 32), ((64, 48), 24), ((20, 64), 32)])
def test_crop_and_resize_match_pil_within_one_grey_level(shape, size):
    """PIL's bilinear resize (upscaling, and antialiased downscaling) of the same boxes: PIL rounds to
    8 bits after each of its two passes, so it differs by at most one grey level."""
    images = torch.randint(
        0, 256, (40, 3, *shape), dtype=torch.uint8, generator=torch.Generator().manual_seed(5)
    )
    aug = BatchedMocoV2(size, (0, 0, 0), (1, 1, 1), jitter_p=0, grayscale_p=0, flip_p=0, blur=False)
    params = aug.sample(40, *shape, torch.Generator().manual_seed(6))
    views = aug.apply(images, params) * 255
    diffs = []
    for n in range(40):
        top, left, h, w = params.boxes[n].tolist()
        pil = Image.fromarray(images[n].permute(1, 2, 0).numpy()).crop((left, top, left + w, top + h))
        ref = torch.from_numpy(np.array(pil.resize((size, size), Image.BILINEAR))).permute(2, 0, 1).float()
        diffs.append((views[n] - ref).abs())
    diffs = torch.stack(diffs)
    assert diffs.max() <= 1.001 and diffs.mean() < 0.5


def test_resample_matrix_of_the_whole_axis_at_its_own_size_is_the_identity():
    m = resample_matrices(torch.tensor([0]), torch.tensor([7]), 7, 7)
    torch.testing.assert_close(m[0], torch.eye(7))
    # a box of 2 pixels stretched to 4: PIL's weights, by hand (centres 0.25, 0.75, 1.25, 1.75)
    m = resample_matrices(torch.tensor([3]), torch.tensor([2]), 6, 4)[0]
    expected = torch.zeros(4, 6)
    expected[:, 3:5] = torch.tensor([[1.0, 0.0], [0.75, 0.25], [0.25, 0.75], [0.0, 1.0]])
    torch.testing.assert_close(m, expected)


def test_hue_shift_matches_colorsys_in_float64():
    g = torch.Generator().manual_seed(7)
    images = torch.randint(0, 256, (6, 3, 5, 5), dtype=torch.uint8, generator=g)
    images[0, :, 0, 0] = 128  # a grey pixel (undefined hue)
    shifts = torch.tensor([-0.1, -0.05, 0.0, 0.02, 0.07, 0.1])
    aug = BatchedMocoV2(5, (0, 0, 0), (1, 1, 1), blur=False)
    yes, no = torch.ones(6, dtype=torch.bool), torch.zeros(6, dtype=torch.bool)
    params = ViewParams(
        boxes=torch.tensor([[0, 0, 5, 5]] * 6),
        flip=no,
        jitter=yes,
        factors=torch.stack([torch.ones(6)] * 3 + [shifts], 1),  # brightness, contrast, saturation: 1
        order=torch.tensor([[3, 0, 1, 2]] * 6),
        grayscale=no,
        blur=no,
        sigma=torch.ones(6),
    )
    views = aug.apply(images, params).double()
    for n in range(6):
        for i in range(5):
            for j in range(5):
                r, g_, b = (images[n, :, i, j].double() / 255).tolist()
                h, s, v = colorsys.rgb_to_hsv(r, g_, b)
                expected = torch.tensor(colorsys.hsv_to_rgb((h + float(shifts[n])) % 1.0, s, v))
                torch.testing.assert_close(views[n, :, i, j], expected.double(), atol=2e-6, rtol=0)


# --- sampling: the recipe's distributions ------------------------------------------------------------


@pytest.mark.parametrize("shape", [(32, 32), (20, 64), (96, 60)])
def test_crop_boxes_follow_torchvision_get_params(shape):
    """Area fraction and aspect ratio of the boxes: two-sample KS against RandomResizedCrop.get_params
    (the 64x20 image needs the 10-try fallback in ~0.5% of draws, 96x60 and 32x32 never)."""
    height, width = shape
    n = 4000
    boxes = sample_crop_boxes(n, height, width, generator=torch.Generator().manual_seed(8))
    torch.manual_seed(9)
    image = torch.zeros(3, height, width)
    ref = torch.tensor([T.RandomResizedCrop.get_params(image, [0.2, 1.0], [3 / 4, 4 / 3]) for _ in range(n)])
    for b in (boxes, ref):
        top, left, h, w = b.unbind(1)
        assert (top >= 0).all() and (left >= 0).all() and (h >= 1).all() and (w >= 1).all()
        assert (top + h <= height).all() and (left + w <= width).all()
    for stat in (lambda b: b[:, 2] * b[:, 3] / (height * width), lambda b: b[:, 3] / b[:, 2]):
        assert stats.ks_2samp(stat(boxes).numpy(), stat(ref).numpy()).pvalue > ALPHA
    # the corner is uniform over the positions the box allows: its mean is half the slack
    slack = (height - boxes[:, 2]).double()
    z = (boxes[:, 0] - slack / 2).sum() / torch.sqrt((slack * (slack + 2) / 12).sum())
    assert abs(float(z)) < 4.5


def test_crop_boxes_respect_scale_and_ratio_up_to_rounding():
    height = width = 32
    boxes = sample_crop_boxes(5000, height, width, generator=torch.Generator().manual_seed(10)).double()
    h, w = boxes[:, 2], boxes[:, 3]
    area = height * width
    # some unrounded (sqrt(A r), sqrt(A / r)) with A in [0.2, 1] * area and r in [3/4, 4/3] rounds to (w, h)
    assert ((w + 0.5) * (h + 0.5) >= 0.2 * area).all() and ((w - 0.5) * (h - 0.5) <= area).all()
    assert ((w - 0.5) / (h + 0.5) <= 4 / 3).all() and ((w + 0.5) / (h - 0.5) >= 3 / 4).all()


def test_fallback_is_the_central_crop_of_the_closest_ratio():
    # a 4x100 strip: no 3/4..4/3 box of 20-100% of its area fits, every draw falls back
    boxes = sample_crop_boxes(50, 4, 100, generator=torch.Generator().manual_seed(11))
    torch.manual_seed(0)
    ref = T.RandomResizedCrop.get_params(torch.zeros(1, 4, 100), [0.2, 1.0], [3 / 4, 4 / 3])
    assert (boxes == torch.tensor(ref)).all()


def test_per_image_rates_and_ranges_match_the_recipe():
    n = 20_000
    aug = BatchedMocoV2(96, MEAN, STD)
    p = aug.sample(n, 96, 96, torch.Generator().manual_seed(12))
    for flags, rate in ((p.flip, 0.5), (p.jitter, 0.8), (p.grayscale, 0.2), (p.blur, 0.5)):
        assert _binomial_ok(int(flags.sum()), n, rate)
    # the steps are drawn independently: P(flip and grayscale) = 0.1
    assert _binomial_ok(int((p.flip & p.grayscale).sum()), n, 0.1)
    for k, (lo, hi) in enumerate([(0.6, 1.4)] * 3 + [(-0.1, 0.1)]):
        f = p.factors[:, k].double().numpy()
        assert lo <= f.min() and f.max() <= hi
        assert stats.kstest(f, stats.uniform(lo, hi - lo).cdf).pvalue > ALPHA
    sigma = p.sigma.double().numpy()
    assert stats.kstest(sigma, stats.uniform(0.1, 1.9).cdf).pvalue > ALPHA
    # the jitter order: a permutation, each of the 24 equally likely
    assert (p.order.sort(dim=1).values == torch.arange(4)).all()
    codes = (p.order * torch.tensor([64, 16, 4, 1])).sum(1)
    counts = torch.unique(codes, return_counts=True)[1].numpy()
    assert len(counts) == 24 and stats.chisquare(counts).pvalue > ALPHA


def test_no_blur_below_96_px_unless_asked():
    g = torch.Generator().manual_seed(13)
    assert not BatchedMocoV2(32, MEAN, STD).sample(500, 32, 32, g).blur.any()
    assert BatchedMocoV2(32, MEAN, STD, blur=True).sample(500, 32, 32, g).blur.any()


# --- statistics of the views against torchvision's per-image transform --------------------------------


def _view_statistics(views: torch.Tensor) -> dict[str, np.ndarray]:
    """Per view: each channel's mean and std, and the mean absolute horizontal difference (sharpness)."""
    out = {f"mean{c}": views[:, c].mean(dim=(1, 2)).numpy() for c in range(views.shape[1])}
    out.update({f"std{c}": views[:, c].std(dim=(1, 2)).numpy() for c in range(views.shape[1])})
    out["sharpness"] = (views[..., 1:] - views[..., :-1]).abs().mean(dim=(1, 2, 3)).numpy()
    return out


def _compare_with_per_image(
    images: torch.Tensor, size: int, repeats: int, seed: int, **recipe
) -> dict[str, float]:
    """KS p-values of :func:`_view_statistics`: ``repeats`` batched vs per-image views of ``images``."""
    pils = [Image.fromarray(x.permute(1, 2, 0).numpy()) for x in images]
    per_image = moco_v2_transform(size, MEAN, STD)
    torch.manual_seed(seed)
    reference = torch.stack([per_image(p) for _ in range(repeats) for p in pils])
    aug = BatchedMocoV2(size, MEAN, STD, **recipe)
    generator = torch.Generator().manual_seed(seed)
    batched = torch.cat([aug(images, generator) for _ in range(repeats)])
    assert batched.shape == reference.shape and batched.dtype == reference.dtype
    ours, theirs = _view_statistics(batched), _view_statistics(reference)
    return {k: stats.ks_2samp(ours[k], theirs[k]).pvalue for k in ours}


def test_view_statistics_match_the_per_image_transform_at_32px():
    pvalues = _compare_with_per_image(synthetic_images(100, 32, seed=14), 32, repeats=30, seed=15)
    assert min(pvalues.values()) > ALPHA, pvalues


@pytest.mark.parametrize("wrong", [{"grayscale_p": 0.35}, {"crop_scale": (0.35, 1.0)}])
def test_the_statistics_comparison_detects_a_wrong_recipe(wrong):
    """The KS comparison above has power: a recipe off by this much fails it."""
    pvalues = _compare_with_per_image(synthetic_images(100, 32, seed=14), 32, repeats=30, seed=15, **wrong)
    assert min(pvalues.values()) < ALPHA, pvalues


def test_view_statistics_match_the_per_image_transform_at_96px_with_blur():
    pvalues = _compare_with_per_image(synthetic_images(40, 96, seed=16), 96, repeats=10, seed=17)
    assert min(pvalues.values()) > ALPHA, pvalues


@pytest.mark.skipif(
    not (SHARED_CIFAR / "train").is_dir(), reason=f"shared CIFAR-10 not found at {SHARED_CIFAR}"
)
def test_view_statistics_match_the_per_image_transform_on_cifar():
    classes = sorted(p for p in (SHARED_CIFAR / "train").iterdir() if p.is_dir())
    files = [c / name for c in classes for name in sorted(os.listdir(c))[:10]]  # 100 images
    images = torch.stack(
        [torch.from_numpy(np.array(Image.open(f).convert("RGB"))).permute(2, 0, 1) for f in files]
    )
    pvalues = _compare_with_per_image(images, 32, repeats=30, seed=18)
    assert min(pvalues.values()) > ALPHA, pvalues


# --- determinism, output, errors ---------------------------------------------------------------------


def test_views_are_deterministic_under_a_seed():
    images = synthetic_images(16, 32, seed=19)
    aug = BatchedMocoV2(32, MEAN, STD)
    a = aug(images, torch.Generator().manual_seed(20))
    b = aug(images, torch.Generator().manual_seed(20))
    c = aug(images, torch.Generator().manual_seed(21))
    assert torch.equal(a, b) and not torch.allclose(a, c)
    g = torch.Generator().manual_seed(20)
    assert torch.equal(aug.apply(images, aug.sample(16, 32, 32, g)), a)


def test_output_shape_dtype_and_normalization():
    images = synthetic_images(8, 40, seed=22)[:, :, :, :30].contiguous()
    aug = BatchedMocoV2(24, MEAN, STD)
    views = aug(images, torch.Generator().manual_seed(23))
    assert views.shape == (8, 3, 24, 24) and views.dtype == torch.float32 and views.is_contiguous()
    # with every random step switched off the view is the normalized image itself
    still = BatchedMocoV2(
        40, MEAN, STD, crop_scale=(1, 1), crop_ratio=(1, 1), jitter_p=0, grayscale_p=0, flip_p=0, blur=False
    )
    square = synthetic_images(4, 40, seed=24)
    mean, std = (torch.tensor(v, dtype=torch.float64).view(1, 3, 1, 1) for v in (MEAN, STD))
    expected = (square.double() / 255 - mean) / std
    torch.testing.assert_close(still(square, torch.Generator()).double(), expected, atol=1e-5, rtol=0)
    # values stay in the normalized image range: [(0 - mean) / std, (1 - mean) / std] (+ float error)
    lo = (-torch.tensor(MEAN) / torch.tensor(STD)).view(1, 3, 1, 1)
    hi = ((1 - torch.tensor(MEAN)) / torch.tensor(STD)).view(1, 3, 1, 1)
    assert (views >= lo - 1e-4).all() and (views <= hi + 1e-4).all()


def test_bad_input_is_a_clear_error():
    aug = BatchedMocoV2(32, MEAN, STD)
    good = synthetic_images(2, 32)
    with pytest.raises(ValueError, match="uint8"):
        aug(good.float())
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        aug(good[0])
    with pytest.raises(ValueError, match="channels"):
        aug(good[:, :1])
    with pytest.raises(ValueError, match="non-empty"):
        aug(good[:0])
    with pytest.raises(TypeError, match="torch.Tensor"):
        aug(good.numpy())
    with pytest.raises(ValueError, match="parameter sets"):
        aug.apply(good, aug.sample(3, 32, 32))
    for kwargs, match in [
        ({"image_size": 0}, "image_size"),
        ({"mean": (0.5, 0.5)}, "differ in length"),
        ({"std": (0.1, 0.0, 0.1)}, "std must be positive"),
        ({"jitter_p": 1.5}, "jitter_p"),
        ({"jitter": (0.4, 0.4, 0.4, 0.7)}, "hue"),
        ({"blur_sigma": (0.0, 1.0)}, "blur_sigma"),
    ]:
        args = {"image_size": 32, "mean": MEAN, "std": STD, **kwargs}
        with pytest.raises(ValueError, match=match):
            BatchedMocoV2(args.pop("image_size"), args.pop("mean"), args.pop("std"), **args)
    with pytest.raises(ValueError, match="scale"):
        sample_crop_boxes(4, 8, 8, scale=(0.5, 0.2))
    with pytest.raises(ValueError, match="image size"):
        sample_crop_boxes(4, 0, 8)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_views_stay_on_the_device_and_match_the_cpu_given_the_parameters():
    images = synthetic_images(32, 96, seed=25)
    aug = BatchedMocoV2(96, MEAN, STD)
    params = aug.sample(32, 96, 96, torch.Generator().manual_seed(26))
    cpu = aug.apply(images, params)
    cuda = aug.apply(images.cuda(), params.to("cuda"))
    assert cuda.device.type == "cuda"
    torch.testing.assert_close(cuda.cpu(), cpu, atol=1e-4, rtol=0)
    views = aug(images.cuda(), torch.Generator(device="cuda").manual_seed(27))
    assert views.device.type == "cuda" and torch.isfinite(views).all()
