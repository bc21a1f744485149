import torch

from pyro_vje.data import DigitsTwoViews, load_digits_split


def test_split_is_stratified_and_scaled():
    d = load_digits_split(test_fraction=0.25, seed=0)
    assert d.train_images.shape[1:] == (1, 8, 8) and d.test_images.shape[1:] == (1, 8, 8)
    assert len(d.train_images) + len(d.test_images) == 1797
    assert 0.0 <= float(d.train_images.min()) and float(d.train_images.max()) <= 1.0
    train_freq = torch.bincount(d.train_labels, minlength=10).float() / len(d.train_labels)
    test_freq = torch.bincount(d.test_labels, minlength=10).float() / len(d.test_labels)
    assert (train_freq - test_freq).abs().max() < 0.01


def test_two_views_differ_and_are_reproducible():
    x = load_digits_split().train_images[:16]
    aug = DigitsTwoViews()
    a1, a2 = aug.views(x, torch.Generator().manual_seed(3))
    b1, b2 = aug.views(x, torch.Generator().manual_seed(3))
    assert a1.shape == x.shape and torch.equal(a1, b1) and torch.equal(a2, b2)
    assert not torch.allclose(a1, a2)


def test_identity_augmentation_returns_the_input():
    x = load_digits_split().train_images[:4]
    aug = DigitsTwoViews(
        max_rotation=0, scale_range=(1, 1), max_shift=0, contrast_range=(1, 1), noise=0, erase_prob=0
    )
    torch.testing.assert_close(aug(x), x, atol=1e-6, rtol=0)
