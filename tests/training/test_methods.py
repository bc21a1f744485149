"""Every baseline of pyro_vje.methods trains through the one trainer, with its own options."""

import pytest
import torch

from pyro_vje.methods import BASELINES, VICReg
from pyro_vje.training import build_method, config_from_dict, train
from pyro_vje.training.logger import read_metrics
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


@pytest.mark.parametrize("method", sorted(BASELINES))
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
