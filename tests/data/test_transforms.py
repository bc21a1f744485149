"""Augmentations: MoCo v2 (blur only from 96 px), digits per sample, evaluation, two views."""

import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from pyro_vje.data import (
    DATASET_INFO,
    DigitsTwoViews,
    TwoViews,
    build_dataset,
    digits_transform,
    eval_transform,
    load_digits_split,
    moco_v2_transform,
    train_transform,
)


def rgb(w=40, h=36, seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def blurs(compose):
    inner = [t for step in compose.transforms for t in getattr(step, "transforms", [step])]
    return [t for t in inner if isinstance(t, T.GaussianBlur)]


@pytest.mark.parametrize(
    "size, has_blur, kernel", [(32, False, None), (64, False, None), (96, True, 9), (224, True, 23)]
)
def test_moco_blur_only_from_96_px(size, has_blur, kernel):
    t = moco_v2_transform(size, (0.5,) * 3, (0.25,) * 3)
    found = blurs(t)
    assert bool(found) == has_blur
    if has_blur:
        assert found[0].kernel_size == (kernel, kernel) and found[0].sigma == (0.1, 2.0)
        assert kernel % 2 == 1
    assert bool(blurs(moco_v2_transform(32, (0.5,), (0.25,), blur=True)))
    assert not blurs(moco_v2_transform(224, (0.5,), (0.25,), blur=False))


def test_moco_recipe_steps():
    t = moco_v2_transform(96, (0.5,) * 3, (0.25,) * 3, crop_scale=(0.3, 1.0))
    kinds = [type(s).__name__ for s in t.transforms]
    assert kinds == [
        "RandomResizedCrop",
        "RandomApply",
        "RandomGrayscale",
        "RandomApply",
        "RandomHorizontalFlip",
        "ToTensor",
        "Normalize",
    ]
    crop, jitter = t.transforms[0], t.transforms[1]
    assert crop.size == (96, 96) and crop.scale == (0.3, 1.0)
    assert jitter.p == 0.8 and isinstance(jitter.transforms[0], T.ColorJitter)
    assert jitter.transforms[0].hue == (-0.1, 0.1) and t.transforms[2].p == 0.2


def test_moco_output_views_differ_and_reproducible():
    views = TwoViews(moco_v2_transform(32, DATASET_INFO["cifar10"].mean, DATASET_INFO["cifar10"].std))
    image = rgb()
    torch.manual_seed(7)
    a1, a2 = views(image)
    torch.manual_seed(7)
    b1, b2 = views(image)
    assert a1.shape == (3, 32, 32) and a1.dtype == torch.float32
    assert torch.equal(a1, b1) and torch.equal(a2, b2) and not torch.equal(a1, a2)


def test_moco_handles_one_channel_images():
    t = moco_v2_transform(16, (0.5,), (0.25,), blur=True)
    grey = rgb().convert("L")
    torch.manual_seed(0)
    for _ in range(30):  # enough draws to hit jitter, grayscale and blur
        assert t(grey).shape == (1, 16, 16)


def test_digits_transform_reproducible_and_not_identity():
    x = load_digits_split().train_images[3]
    t = digits_transform()
    torch.manual_seed(1)
    a = t(x)
    torch.manual_seed(1)
    b = t(x)
    c = t(x)
    assert a.shape == (1, 8, 8) and torch.equal(a, b) and not torch.equal(a, c)
    info = DATASET_INFO["digits"]
    normalized = (x - info.mean[0]) / info.std[0]
    assert not torch.allclose(a, normalized, atol=1e-3)
    assert torch.equal(x, load_digits_split().train_images[3])  # input untouched


def test_digits_transform_is_the_batch_recipe_per_sample():
    x = load_digits_split().train_images[:1]
    torch.manual_seed(5)
    batch = DigitsTwoViews()(x)[0]
    torch.manual_seed(5)
    single = digits_transform(mean=(0.0,), std=(1.0,))(x[0])
    torch.testing.assert_close(single, batch)
    with pytest.raises(ValueError, match=r"one image \(C, H, W\)"):
        digits_transform()(x)


def test_eval_transform_is_deterministic_and_sized():
    cifar = DATASET_INFO["cifar10"]
    t = eval_transform(cifar)
    image = rgb(32, 32)
    assert torch.equal(t(image), t(image)) and t(image).shape == (3, 32, 32)
    expected = (T.ToTensor()(image) - torch.tensor(cifar.mean).view(3, 1, 1)) / torch.tensor(cifar.std).view(
        3, 1, 1
    )
    torch.testing.assert_close(t(image), expected)  # native size: no resampling
    assert eval_transform(cifar)(rgb(50, 40)).shape == (3, 32, 32)
    imagenet = eval_transform(DATASET_INFO["imagenet"])
    kinds = [type(s).__name__ for s in imagenet.transforms]
    assert kinds == ["Resize", "CenterCrop", "ToTensor", "Normalize"] and imagenet.transforms[0].size == 256
    assert imagenet(rgb(300, 260)).shape == (3, 224, 224)
    assert eval_transform(DATASET_INFO["stl10"], image_size=64)(rgb(96, 96)).shape == (3, 64, 64)


def test_digits_eval_and_train_transforms():
    info = DATASET_INFO["digits"]
    x = load_digits_split().test_images[0]
    torch.testing.assert_close(eval_transform(info)(x), (x - info.mean[0]) / info.std[0])
    assert train_transform(info)(x).shape == (1, 8, 8)
    with pytest.raises(ValueError, match="8x8"):
        eval_transform(info, image_size=32)


def test_train_transform_uses_moco_with_the_papers_blur_choice():
    assert not blurs(train_transform(DATASET_INFO["cifar10"]))
    assert blurs(train_transform(DATASET_INFO["stl10"]))
    t = train_transform(DATASET_INFO["imagefolder"], image_size=48)
    assert t.transforms[0].size == (48, 48)


def test_two_views_dataset_yields_pairs_and_pickles():
    info = DATASET_INFO["digits"]
    ds = build_dataset("digits", "train", transform=TwoViews(train_transform(info)))
    (v1, v2), label = ds[0]
    assert v1.shape == v2.shape == (1, 8, 8) and isinstance(label, int) and not torch.equal(v1, v2)
    for t in (TwoViews(train_transform(DATASET_INFO["cifar10"])), ds.transform, eval_transform(info)):
        pickle.loads(pickle.dumps(t))


def test_color_false_keeps_an_images_colors():
    """Crops and flips of a one-colour image are that colour; colour jitter / grayscale would change it."""
    info = DATASET_INFO["cifar10"]
    image = Image.new("RGB", (32, 32), (200, 40, 90))
    want = (torch.tensor([200, 40, 90]) / 255.0 - torch.tensor(info.mean)) / torch.tensor(info.std)
    crop_only = train_transform(info, color=False)
    assert not any(isinstance(t, (T.RandomApply, T.RandomGrayscale)) for t in crop_only.transforms)
    torch.manual_seed(0)
    for _ in range(20):
        view = crop_only(image)
        torch.testing.assert_close(view, want.view(3, 1, 1).expand(3, 32, 32), atol=1e-5, rtol=0)
    torch.manual_seed(0)
    full = train_transform(info)
    changed = sum(
        not torch.allclose(full(image), want.view(3, 1, 1).expand(3, 32, 32), atol=1e-3) for _ in range(20)
    )
    assert changed > 0
    with pytest.raises(ValueError, match="digits"):
        train_transform(DATASET_INFO["digits"], color=False)
