"""pyro-vje compare at a tiny budget (digits, 1 epoch, 2 steps): report files, resume, refusal."""

import json
import math

import pytest
import torch

import pyro_vje.protocols.compare as cmp
from pyro_vje.protocols.compare import PRESETS, Variant, compare, parse_variant
from pyro_vje.training.distributed import DistInfo
from pyro_vje.training.loaders import build_run_data

BASE = dict(
    epochs=1,
    batch_size=32,
    max_steps_per_epoch=2,
    eval_every=1,
    progress=False,
    figures=False,
    tensorboard=False,
    device="cpu",
    hidden=16,
    linear_probe="none",
)


def test_parse_variant():
    assert parse_variant("simsiam") == Variant("simsiam", {"method": "simsiam"})
    v = parse_variant("vje-df1:method=vje df=1 terms=dir,kl")
    assert v.overrides == {"method": "vje", "df": 1, "terms": "dir,kl"}
    assert parse_variant("vje-gaussian").overrides["df"] == math.inf
    assert parse_variant("vje-rad-kl:beta=2").overrides == {"method": "vje", "terms": "rad,kl", "beta": 2}
    with pytest.raises(ValueError, match="unknown variant"):
        parse_variant("simclr")
    with pytest.raises(ValueError, match="method="):
        parse_variant("mine:df=2")
    with pytest.raises(ValueError, match="key=value"):
        parse_variant("mine:method=vje df")
    assert set(PRESETS) >= {"vje", "simsiam", "vicreg", "vsimsiam", "vcl", "gje", "vje-dir-rad"}


def test_another_methods_options_do_not_reach_a_variant(tmp_path):
    base = {**BASE, "df": 1.0, "proj_dim": 16}
    vje = cmp._variant_config(base, parse_variant("vje"), tmp_path)
    simsiam = cmp._variant_config(base, parse_variant("simsiam"), tmp_path)
    assert vje.df == 1.0 and "proj_dim" not in vje.to_dict()
    assert simsiam.proj_dim == 16 and "df" not in simsiam.to_dict()
    assert vje.num_workers == 1 and simsiam.num_workers == 1  # the shared augmentation stream


def test_the_augmentation_stream_does_not_depend_on_the_method(tmp_path):
    """With a loader worker the views are a function of (seed, epoch): drawing from the global
    RNG in between (as a method's posterior samples do) does not change them."""
    batches = []
    for variant in ("vje", "simsiam"):
        config = cmp._variant_config(BASE, parse_variant(variant), tmp_path)
        data = build_run_data(config, DistInfo(), config.batch_size, pin_memory=False)
        data.set_epoch(0, config.seed)
        torch.randn(1000)  # the method's use of the global RNG
        (x1, x2), _ = next(iter(data.train_loader))
        batches.append((x1, x2))
    assert torch.equal(batches[0][0], batches[1][0]) and torch.equal(batches[0][1], batches[1][1])
    assert not torch.equal(batches[0][0], batches[0][1])  # two different views


def test_compare_writes_the_report_resumes_and_refuses_a_changed_config(tmp_path, monkeypatch):
    variants = [
        parse_variant("vje"),
        parse_variant("vje-dir-kl"),
        parse_variant("simsiam:method=simsiam proj_dim=32 pred_hidden=8"),
    ]
    report = compare(BASE, variants, tmp_path, one_class_classes=(0, 1), isolate=False, log=lambda *_: None)
    assert (tmp_path / "compare.md").is_file() and (tmp_path / "compare_knn.png").stat().st_size > 0
    saved = json.loads((tmp_path / "compare.json").read_text())
    assert list(saved["entries"]) == ["vje", "vje-dir-kl", "simsiam"]
    for entry in saved["entries"].values():
        assert [p["epoch"] for p in entry["curve"]] == [1]
        assert 0.5 <= entry["one_class_z"] <= 1.0 and entry["seconds_per_epoch"] > 0
        assert entry["peak_memory_mib"] > 0
    assert saved["entries"]["vje-dir-kl"]["config"]["terms"] == "dir,kl"
    assert "one_class_mu" in saved["entries"]["vje"] and "one_class_mu" not in saved["entries"]["simsiam"]
    base = saved["baselines"]
    assert 0 < base["knn_raw_pixels"] <= 1 and 0 < base["knn_z_random_init"] <= 1
    assert base["random_init_spread"] == 0.0  # every variant starts from the same encoder
    text = (tmp_path / "compare.md").read_text()
    assert "| vje-dir-kl | vje |" in text and "kNN, raw pixels" in text
    assert report["entries"]["simsiam"]["results"]["knn_z"] == saved["entries"]["simsiam"]["results"]["knn_z"]

    # rerun: every variant is reused, nothing trains
    def no_training(*args, **kwargs):
        raise AssertionError("a finished variant with the same config was trained again")

    monkeypatch.setattr(cmp, "run_variant", no_training)
    again = compare(BASE, variants, tmp_path, one_class_classes=(0, 1), isolate=False, log=lambda *_: None)
    assert again["entries"] == report["entries"]

    # a changed budget is refused, naming the field
    with pytest.raises(ValueError, match="epochs: run 1 vs now 2"):
        compare({**BASE, "epochs": 2}, variants, tmp_path, isolate=False, log=lambda *_: None)


def test_an_interrupted_variant_continues_from_its_checkpoint(tmp_path, monkeypatch):
    variants = [parse_variant("vje")]
    compare(BASE, variants, tmp_path, one_class_classes=(), isolate=False, log=lambda *_: None)
    (tmp_path / "runs" / "vje" / cmp.ENTRY).unlink()  # as if stopped after the last checkpoint
    calls = []
    real = cmp.run_variant

    def spy(values, resume, classes, k):
        calls.append(resume)
        return real(values, resume, classes, k)

    monkeypatch.setattr(cmp, "run_variant", spy)
    compare(BASE, variants, tmp_path, one_class_classes=(), isolate=False, log=lambda *_: None)
    assert calls == [True]


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="unique"):
        compare(BASE, [parse_variant("vje"), parse_variant("vje")], tmp_path, isolate=False)
    with pytest.raises(ValueError, match="variant 'vicreg'"):
        compare({**BASE, "var_weight": -1.0}, [parse_variant("vicreg")], tmp_path, isolate=False)
    with pytest.raises(ValueError, match="must name the method"):
        compare(BASE, [Variant("x", {"df": 2.0})], tmp_path, isolate=False)


def test_the_report_shows_the_backbone_column_for_a_projector_variant():
    entry = {"config": {"method": "vje"}, "results": {"knn_z": 0.25, "knn_h": 0.875, "linear_h": 0.5}}
    plain = {"config": {"method": "simsiam"}, "results": {"knn_z": 0.75}}
    report = {
        "baselines": {"knn_raw_pixels": 0.5},
        "one_class_classes": [],
        "date": "today",
        "machine": "here",
        "base": {},
        "entries": {"vje-projector": entry, "simsiam": plain},
    }
    lines = cmp.markdown_report(report).splitlines()
    header = next(line for line in lines if line.startswith("| variant"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    row = next(line for line in lines if line.startswith("| vje-projector"))
    cells = dict(zip(columns, (c.strip() for c in row.strip("|").split("|"))))
    assert cells["kNN z"] == "0.2500" and cells["kNN h"] == "0.8750" and cells["linear h"] == "0.5000"
    other = next(line for line in lines if line.startswith("| simsiam"))
    cells = dict(zip(columns, (c.strip() for c in other.strip("|").split("|"))))
    assert cells["kNN h"] == "–" and cells["z − raw pixels"] == "0.2500"


def test_a_failed_variant_is_reported_and_the_others_still_run(tmp_path, monkeypatch):
    real = cmp.run_variant
    calls = []

    def fail_vicreg(values, resume, classes, k):
        calls.append(values["method"])
        if values["method"] == "vicreg":
            raise RuntimeError("non-finite loss (inf) at epoch 1, step 2; the run stopped\n\ntraceback lines")
        return real(values, resume, classes, k)

    monkeypatch.setattr(cmp, "run_variant", fail_vicreg)
    variants = [parse_variant("vicreg"), parse_variant("vje")]
    report = compare(BASE, variants, tmp_path, one_class_classes=(), isolate=False, log=lambda *_: None)
    assert calls == ["vicreg", "vje"]  # the failure did not stop the next variant
    assert list(report["entries"]) == ["vje"]
    assert report["failed"] == {"vicreg": "non-finite loss (inf) at epoch 1, step 2; the run stopped"}
    saved = json.loads((tmp_path / "compare.json").read_text())
    assert saved["failed"] == report["failed"]
    text = (tmp_path / "compare.md").read_text()
    assert "Failed variants" in text and "* vicreg: non-finite loss (inf) at epoch 1, step 2" in text
    assert "| vicreg |" not in text and "| vje | vje |" in text

    # the rerun retries the failed variant only (here it now succeeds)
    calls.clear()
    monkeypatch.setattr(cmp, "run_variant", lambda *a: (calls.append(a[0]["method"]), real(*a))[1])
    again = compare(BASE, variants, tmp_path, one_class_classes=(), isolate=False, log=lambda *_: None)
    assert calls == ["vicreg"] and again["failed"] == {} and list(again["entries"]) == ["vicreg", "vje"]
    assert "Failed variants" not in (tmp_path / "compare.md").read_text()


def test_the_compare_command_exits_1_when_a_variant_failed(tmp_path, monkeypatch, capsys):
    from pyro_vje.cli import main

    def boom(values, resume, classes, k):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(cmp, "run_variant", boom)
    argv = ["compare", "--methods", "vje", "--no-isolate", "--compare-out", str(tmp_path), "--epochs", "1"]
    argv += ["--hidden", "16", "--device", "cpu", "--no-progress", "--no-tensorboard", "--no-figures"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "1 variant(s) failed: vje" in err
    assert "* vje: out of memory" in (tmp_path / "compare.md").read_text()
