"""Every method of the registry trains through the one trainer, with its own options; a method
registered from outside trains through the same path as ``pyro-vje train --method``."""

import pytest
import torch

from pyro_vje.methods import METHODS, VICReg
from pyro_vje.methods.build import build_method
from pyro_vje.runs import read_metrics
from pyro_vje.training import config_from_dict, train
from pyro_vje.training.optim import build_optimizer

SMALL_HEADS = {
    "simsiam": {"proj_dim": 32, "pred_hidden": 8},
    "vicreg": {"expander_dim": 32},
    "vsimsiam": {"proj_dim": 32, "pred_hidden": 8},
    "vcl": {"proj_hidden": 32, "out_dim": 16},
    "gje": {"proj_hidden": 32, "out_dim": 8, "num_prototypes": 4},
}


def tiny(tmp_path, method, **kw):
    values = dict(
        method=method,
        epochs=2,
        batch_size=32,
        max_steps_per_epoch=3,
        eval_every=1,
        progress=False,
        figures=False,
        tensorboard=False,
        baselines=False,
        device="cpu",
        out=str(tmp_path / method),
        **SMALL_HEADS.get(method, {}),
    )
    values.update(kw)
    return config_from_dict(values).validate()


@pytest.mark.parametrize("method", sorted(set(METHODS) - {"vje"}))
def test_each_baseline_trains_and_evaluates(tmp_path, method):
    results = train(tiny(tmp_path, method))
    assert 0.0 < results["knn_z"] <= 1.0 and torch.isfinite(torch.tensor(results["loss"]))
    rows = read_metrics(tmp_path / method / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2]
    assert ("knn_mu" in results) == (method in ("vsimsiam", "vcl"))
    assert (tmp_path / method / "backbone.pt").is_file()


def test_a_baseline_resumes_exactly(tmp_path):
    full = train(tiny(tmp_path / "a", "simsiam"))

    class Stop(Exception):
        pass

    def stop(trainer, row):
        if trainer.epoch == 1:
            raise Stop

    cfg = tiny(tmp_path / "b", "simsiam")
    with pytest.raises(Stop):
        train(cfg, on_epoch_end=stop)
    resumed = train(cfg, resume=True)
    assert full["knn_z"] == resumed["knn_z"] and full["loss"] == resumed["loss"]


def test_method_options_are_the_methods_own(tmp_path):
    cfg = tiny(tmp_path, "vicreg", var_weight=10.0)
    assert cfg.options.var_weight == 10.0 and cfg.to_dict()["var_weight"] == 10.0
    with pytest.raises(ValueError, match="unknown config keys: proj_dim"):
        config_from_dict({"method": "vje", "proj_dim": 16})
    with pytest.raises(ValueError, match="kl_weight must be < 1"):
        tiny(tmp_path, "vsimsiam", kl_weight=1.5)


def test_the_vje_projector_option_is_refused_for_baselines(tmp_path):
    with pytest.raises(ValueError, match="projector applies to VJE"):
        build_method(tiny(tmp_path, "simsiam", projector=True), 1, 8)


def test_vicreg_recipe_exempts_norms_and_biases_from_weight_decay(tmp_path):
    method = build_method(tiny(tmp_path, "vicreg"), 1, 8)
    assert isinstance(method, VICReg)
    groups = build_optimizer(method, 0.1, 0.9, 1e-4).param_groups
    assert [g["weight_decay"] for g in groups] == [1e-4, 0.0]
    assert all(p.ndim > 1 for p in groups[0]["params"])


# ------------------------------------------------------------------ issue 22
def test_a_method_registered_in_a_test_trains_through_the_cli(tmp_path, capsys):
    """One module (here: this test) plus one registry entry is a new method: ``pyro-vje train
    --method`` builds it on the run's encoder with its own options, trains, checkpoints and
    reloads it, with no list of methods edited anywhere."""
    from dataclasses import dataclass

    from torch import nn

    from pyro_vje.cli import main
    from pyro_vje.methods import MethodEntry, MethodOptions, TwoViewMethod, register_method, setting
    from pyro_vje.runs import load_run

    @dataclass
    class MeanSquaredOptions(MethodOptions):
        out_width: int = setting(8, "tiny: width of its linear head")

        def validate(self) -> None:
            self._positive_int("out_width")

    class MeanSquared(TwoViewMethod):  # the smallest two-view loss: squared distance of the heads
        def __init__(self, encoder: nn.Module, options: MeanSquaredOptions):
            super().__init__(encoder)
            self.head = nn.Linear(self.dim, options.out_width)

        def training_loss(self, x1, x2):
            self.check_views(x1, x2)
            loss = (self.head(self.encode(x1)) - self.head(self.encode(x2))).pow(2).sum(1).mean()
            return loss, {"mse": loss.detach()}

    built = []

    def build(encoder, options):
        built.append(options)
        return MeanSquared(encoder, options)

    register_method("tiny", MethodEntry(MeanSquaredOptions, build, "Tiny", "squared distance"))
    try:
        out = tmp_path / "run"
        argv = ["train", "--method", "tiny", "--out-width", "5", "--epochs", "1", "--batch-size", "32"]
        argv += ["--max-steps-per-epoch", "1", "--eval-every", "1", "--no-progress", "--no-figures"]
        argv += ["--no-tensorboard", "--no-baselines", "--device", "cpu", "--out", str(out)]
        assert main(argv) == 0
        assert built and built[0].out_width == 5  # its own option, from its own flag
        assert "Tiny z" in capsys.readouterr().out  # results named by the entry's title
        rows = read_metrics(out / "metrics.jsonl")
        assert len(rows) == 1 and rows[0]["step"] == 1 and torch.isfinite(torch.tensor(rows[0]["mse"]))
        config, method = load_run(out)  # read back through the registry
        assert config.method == "tiny" and isinstance(method, MeanSquared) and method.head.out_features == 5
    finally:
        METHODS.pop("tiny")
    assert "tiny" not in METHODS


def test_the_docs_name_every_registered_method_and_its_module():
    from pathlib import Path

    docs = Path(__file__).resolve().parents[2] / "docs"
    methods_md = (docs / "methods.md").read_text()
    organisation = (docs / "code-organisation.md").read_text()
    for name, entry in METHODS.items():
        module = entry.builder.partition(":")[0].lstrip(".")
        assert f"pyro_vje/methods/{module}.py" in methods_md, name
        assert f"`{module}.py`" in organisation, name
        assert entry.options.__name__ in methods_md, name
