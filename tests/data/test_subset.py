"""balanced_subset_indices: determinism, balance, shortfalls, errors."""

import numpy as np
import pytest

from pyro_vje.data import balanced_subset_indices


def labels_of(counts):
    rng = np.random.default_rng(123)
    return rng.permutation(np.repeat(np.arange(len(counts)), counts))


def test_deterministic_sorted_and_balanced():
    labels = labels_of([500] * 10)
    a = balanced_subset_indices(labels, 800, seed=0)
    b = balanced_subset_indices(list(labels), 800, seed=0)
    assert a.dtype == np.int64 and np.array_equal(a, b)
    assert np.all(np.diff(a) > 0)  # sorted, no duplicates
    assert np.bincount(labels[a]).tolist() == [80] * 10
    assert not np.array_equal(a, balanced_subset_indices(labels, 800, seed=1))


def test_known_values_are_stable_across_machines():
    # Pins the numpy PCG64 stream used (default_rng(seed).permutation): same indices everywhere.
    assert balanced_subset_indices(np.arange(20) % 4, 6, seed=0).tolist() == [4, 5, 6, 13, 16, 19]
    first = balanced_subset_indices(np.arange(50000) % 10, 8000, seed=0)[:8]
    assert first.tolist() == [2, 9, 12, 21, 24, 26, 28, 49]


def test_remainder_goes_to_the_first_classes():
    labels = labels_of([10] * 4)
    assert np.bincount(labels[balanced_subset_indices(labels, 7)], minlength=4).tolist() == [2, 2, 2, 1]
    # classes are the distinct label values in ascending order, whatever they are
    labels = np.array([7, 3, 3, 7, 3, 7, 9, 9, 9])
    picked = labels[balanced_subset_indices(labels, 2)]
    assert sorted(picked.tolist()) == [3, 7]


def test_short_class_gives_all_and_others_fill_in():
    labels = labels_of([2, 50, 50])
    idx = balanced_subset_indices(labels, 30)
    assert len(idx) == 30 and np.bincount(labels[idx]).tolist() == [2, 14, 14]
    with pytest.raises(ValueError, match=r"too few in \(label: count\): \{0: 2\}"):
        balanced_subset_indices(labels, 30, strict=True)
    assert len(balanced_subset_indices(labels, 6, strict=True)) == 6


def test_all_images_and_one_class():
    labels = labels_of([3, 4, 5])
    assert balanced_subset_indices(labels, 12).tolist() == list(range(12))
    assert balanced_subset_indices(np.zeros(10, dtype=int), 4).shape == (4,)


def test_prefix_property_within_class():
    labels = labels_of([100] * 5)
    small, large = balanced_subset_indices(labels, 50, seed=3), balanced_subset_indices(labels, 100, seed=3)
    assert set(small) <= set(large)


@pytest.mark.parametrize("n", [0, -1, 31])
def test_bad_n(n):
    with pytest.raises(ValueError, match=r"n must be in \[1, 30\]"):
        balanced_subset_indices(labels_of([10, 10, 10]), n)


def test_bad_labels_and_n_type():
    with pytest.raises(ValueError, match="1-D"):
        balanced_subset_indices(np.zeros((3, 3)), 2)
    with pytest.raises(TypeError):
        balanced_subset_indices([0, 1], 1.5)


def test_subset_indices_narrows_a_split_one_way():
    from pyro_vje.data import narrow, subset_indices

    labels = labels_of([30, 20, 10])
    assert subset_indices(labels) is None
    one = subset_indices(labels, normal_class=1)
    assert one == sorted(np.flatnonzero(labels == 1).tolist())
    few = subset_indices(labels, 5, seed=2, normal_class=1)
    assert len(few) == 5 and set(few) <= set(one) and few == sorted(few)
    assert subset_indices(labels, 12, seed=0) == balanced_subset_indices(labels, 12, seed=0).tolist()
    plain = subset_indices(labels, 7, seed=3, balanced=False)
    assert plain == sorted(np.random.default_rng(3).permutation(len(labels))[:7].tolist())
    assert (
        subset_indices(labels, 60, balanced=False) is None and subset_indices(labels, 60, clip=True) is None
    )
    unlabelled = subset_indices(-np.ones(50, dtype=int), 9, seed=1)
    assert len(set(unlabelled)) == 9 and unlabelled == sorted(unlabelled)
    with pytest.raises(ValueError, match="larger than the 'test' split"):
        subset_indices(labels, 61, split="test")
    with pytest.raises(ValueError, match="normal_class 7"):
        subset_indices(labels, normal_class=7)
    data = list(range(60))
    assert narrow(data, None) is data and list(narrow(data, [3, 1])) == [3, 1]
