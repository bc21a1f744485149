"""Unreadable image files (issue 10 item 5): a one-line error naming the file, check-data, skipping."""

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pyro_vje.cli import main
from pyro_vje.data import build_dataset
from pyro_vje.data.ood_sets import build_ood_dataset
from pyro_vje.data.unreadable import (
    UnreadableImageError,
    image_paths,
    load_image,
    readable_samples,
    scan_images,
)


def make_tree_with_bad_files(root: Path, per_class: int = 4) -> tuple[Path, list[Path]]:
    """root/{train,test}/{a,b}/<i>.png, plus a zero-byte and a random-bytes .jpg in train/."""
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c in ("a", "b"):
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / c / f"{i}.png")
    zero = root / "train" / "a" / "zero.jpg"
    zero.write_bytes(b"")
    junk = root / "train" / "b" / "junk.jpg"
    junk.write_bytes(np.random.default_rng(1).integers(0, 256, 600, dtype=np.uint8).tobytes())
    return root, [zero, junk]


@pytest.fixture
def tree(tmp_path):
    return make_tree_with_bad_files(tmp_path / "data")


def test_loading_a_bad_file_names_it(tree):
    _, bad = tree
    for path in bad:
        with pytest.raises(UnreadableImageError) as info:
            load_image(path)
        message = str(info.value)
        assert isinstance(info.value, ValueError) and str(path) in message and "\n" not in message
        assert "check-data" in message and "--skip-unreadable" in message


@pytest.mark.parametrize("cache", [False, True])
def test_an_image_folder_with_a_bad_file_raises_the_named_error(tree, cache):
    root, bad = tree
    with pytest.raises(UnreadableImageError, match="unreadable image .*(zero|junk).jpg"):
        ds = build_dataset("imagefolder", "train", root=root, cache=cache)
        for i in range(len(ds)):
            ds[i]


def test_skip_unreadable_leaves_them_out_with_a_count(tree, capsys):
    root, bad = tree
    ds = build_dataset("imagefolder", "train", root=root, skip_unreadable=True)
    assert len(ds) == 8 and {p for p, _ in ds.samples}.isdisjoint(map(str, bad))
    assert all(ds[i][0].size == (8, 8) for i in range(len(ds)))
    err = capsys.readouterr().err
    assert err.count("skipped 2 unreadable image(s)") == 1, err  # once, not per dataset or channel


def test_scan_lists_exactly_the_bad_files(tree):
    root, bad = tree
    paths = image_paths(root)
    checked, found = scan_images(paths)
    assert checked == 18 and sorted(p for p, _ in found) == sorted(map(str, bad))
    kept, dropped = readable_samples([(p, 0) for p in paths])
    assert len(kept) == 16 and sorted(dropped) == sorted(map(str, bad))


def test_check_data_command(tree, tmp_path, capsys):
    root, bad = tree
    assert main(["check-data", str(root)]) == 1
    out = capsys.readouterr().out
    assert all(str(p) in out for p in bad) and "checked 18 image files, 2 unreadable" in out
    for path in bad:
        os.remove(path)
    assert main(["check-data", str(root)]) == 0
    assert "all readable" in capsys.readouterr().out


@pytest.mark.parametrize("sub", ["train", "train/a"])  # class folders; a flat folder of images
def test_ood_image_folder_skips_unreadable_files_when_asked(tree, sub, capsys):
    root, bad = tree
    spec = f"imagefolder:{root / sub}"
    ds = build_ood_dataset(spec, in_dataset="cifar10", transform=None, skip_unreadable=True)
    assert len(ds) == (8 if sub == "train" else 4) and {p for p, _ in ds.samples}.isdisjoint(map(str, bad))
    assert all(ds[i][0].size == (8, 8) for i in range(len(ds)))
    assert "unreadable image(s)" in capsys.readouterr().err
    for path in image_paths(root / "test" / "b"):
        Path(path).write_bytes(b"")
    all_bad = f"imagefolder:{root / 'test' / 'b'}"
    with pytest.raises(FileNotFoundError, match="every selected image"):
        build_ood_dataset(all_bad, in_dataset="cifar10", transform=None, skip_unreadable=True)


def test_ood_image_folder_with_a_bad_file(tree):
    root, _ = tree
    ds = build_ood_dataset(f"imagefolder:{root / 'train' / 'a'}", in_dataset="cifar10", transform=None)
    with pytest.raises(UnreadableImageError, match="zero.jpg"):
        for i in range(len(ds)):
            ds[i]


def test_training_on_a_tree_with_bad_files(tree, tmp_path, capsys):
    root, _ = tree
    args = ["train", "--dataset", "imagefolder", "--data-dir", str(root), "--image-size", "8"]
    args += ["--epochs", "1", "--warmup-epochs", "0", "--batch-size", "4", "--knn-k", "3"]
    args += ["--no-progress", "--no-tensorboard", "--no-figures"]
    assert main([*args, "--out", str(tmp_path / "r1")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unreadable image" in err and ".jpg" in err
    assert main([*args, "--skip-unreadable", "--out", str(tmp_path / "r2")]) == 0
    err = capsys.readouterr().err
    assert err.count("skipped 2 unreadable image(s)") == 1, err  # the training set and the bank: said once
    assert "skipped 2 unreadable image(s)" in (tmp_path / "r2" / "train.log").read_text()
    # scoring against an OOD folder with the same bad files: the run skips them, so its score does
    score = ["score", str(tmp_path / "r2"), "--ood", f"imagefolder:{root / 'train'}", "--no-progress"]
    assert main([*score, "--bank-size", "8"]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("OOD imagefolder: skipped 2 unreadable image(s)") == 1, captured.err
    assert "| joint |" in captured.out


def test_score_skips_unreadable_ood_files_only_when_asked(tree, tmp_path, capsys):
    root, _ = tree
    run = tmp_path / "digits"
    tiny = ["--epochs", "1", "--max-steps-per-epoch", "2", "--no-progress", "--no-tensorboard"]
    tiny += ["--hidden", "16"]
    assert main(["train", "--out", str(run), *tiny]) == 0
    capsys.readouterr()
    score = ["score", str(run), "--ood", f"imagefolder:{root / 'train'}", "--limit", "50", "--no-progress"]
    assert main(score) == 2  # the run did not ask to skip: an error naming the file
    err = capsys.readouterr().err
    assert "unreadable image" in err and ".jpg" in err
    assert main([*score, "--skip-unreadable"]) == 0
    captured = capsys.readouterr()
    assert "OOD imagefolder: skipped 2 unreadable image(s)" in captured.err and "| joint |" in captured.out
