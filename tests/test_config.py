"""TrainConfig, config files and the paper settings in configs/."""

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import pytest

from pyro_vje.config import GROUPS
from pyro_vje.methods import METHODS, MethodEntry, MethodOptions, VJEOptions, register_method, setting
from pyro_vje.training import TrainConfig, config_from_dict, load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_defaults_are_the_readme_main_job():
    cfg = TrainConfig().validate()
    assert (cfg.dataset, cfg.arch, cfg.method, cfg.device) == ("digits", "small_cnn", "vje", "auto")


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    overrides = {} if path.name.startswith("digits") else {"data_dir": "/somewhere"}  # digits reads no folder
    cfg = load_config(path, **overrides)
    assert cfg.method == "vje" and cfg.momentum == 0.9 and cfg.weight_decay == 5e-6


def test_paper_cifar10_setting():  # Section 5.2, Table 2
    cfg = load_config(CONFIGS / "cifar10_resnet18.yaml")
    assert (cfg.dataset, cfg.arch, cfg.epochs, cfg.batch_size) == ("cifar10", "resnet18", 800, 256)
    assert (cfg.lr, cfg.beta, cfg.df, cfg.warmup_epochs, cfg.hidden) == (0.05, 1.0, 3.0, 10, 128)
    assert not cfg.projector and cfg.knn_k == 30 and cfg.linear_probe == "full"


def test_paper_imagenet_and_ablation_settings():
    cfg = load_config(CONFIGS / "imagenet_resnet50.yaml", data_dir="/imagenet")
    assert (cfg.arch, cfg.epochs, cfg.batch_size, cfg.lr, cfg.hidden) == ("resnet50", 100, 256, 0.05, 512)
    for ds in ("cifar10", "cifar100", "stl10"):
        cfg = load_config(CONFIGS / f"ablation_200ep_{ds}.yaml")
        assert (cfg.dataset, cfg.epochs, cfg.beta, cfg.df) == (ds, 200, 1.0, 3.0)
    assert load_config(CONFIGS / "ablation_200ep_stl10.yaml").train_split == "train+unlabeled"
    proj = load_config(CONFIGS / "cifar10_resnet18_projector.yaml")
    assert proj.projector and proj.projector_dim == 2048


def test_digits_config_file_equals_the_defaults():
    file_cfg = load_config(CONFIGS / "digits_small_cnn.yaml")
    assert file_cfg.validate() == TrainConfig().validate()  # an unset hidden resolves as the file says


def test_json_config_and_infinite_df(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"df": "inf", "epochs": 3, "lr": 1}))
    cfg = load_config(path)
    assert math.isinf(cfg.df) and cfg.epochs == 3 and isinstance(cfg.lr, float)
    assert cfg.to_dict()["df"] == "inf"  # JSON-safe
    assert config_from_dict(cfg.to_dict()) == cfg


def test_unknown_keys_and_bad_values_are_named(tmp_path):
    with pytest.raises(ValueError, match="unknown config keys: epoch"):
        config_from_dict({"epoch": 3})
    with pytest.raises(ValueError, match="unknown arch 'resnet9'"):
        TrainConfig(arch="resnet9").validate()
    with pytest.raises(ValueError, match="unknown dataset 'kmnist'"):
        TrainConfig(dataset="kmnist").validate()
    with pytest.raises(ValueError, match="lr must be a positive"):
        TrainConfig(lr=0.0).validate()
    with pytest.raises(ValueError, match="df must be > 0"):
        TrainConfig(df=-1.0).validate()
    with pytest.raises(ValueError, match="beta must be"):
        TrainConfig(beta=float("nan")).validate()
    with pytest.raises(ValueError, match="data_dir"):
        TrainConfig(dataset="imagefolder").validate()
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "c.toml"
    bad.write_text("x = 1")
    with pytest.raises(ValueError, match="yaml"):
        load_config(bad)
    listy = tmp_path / "l.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="mapping"):
        load_config(listy)


def test_paper_one_class_setting():  # Section 5.3: batch 64, lr 5e-6, wd 5e-6, beta 1, nu 0.5, 800 epochs
    from pyro_vje.protocols.one_class import PAPER_ONE_CLASS
    from pyro_vje.training import scaled_lr

    cfg = load_config(CONFIGS / "oneclass_cifar10_resnet18.yaml")
    for values in (cfg.to_dict(), PAPER_ONE_CLASS):
        assert scaled_lr(values["lr"], values["batch_size"]) == pytest.approx(5e-6)
        assert (values["df"], values["beta"], values["epochs"], values["warmup_epochs"]) == (0.5, 1.0, 800, 0)


def test_cifar_cpu_one_class_config_matches_its_preset():  # the yaml and the preset must not drift
    from pyro_vje.protocols.one_class import CIFAR_CPU_ONE_CLASS

    values = load_config(CONFIGS / "oneclass_cifar10_cpu.yaml").to_dict()
    assert {k: values[k] for k in CIFAR_CPU_ONE_CLASS} == CIFAR_CPU_ONE_CLASS
    assert values["method"] == "vje" and values["arch"] == "small_cnn" and values["freeze_encoder"] is True


def test_fashion_mnist_one_class_config_matches_its_preset_and_the_cli_starts_from_it():
    from pyro_vje.cli import _protocol_values
    from pyro_vje.protocols.presets import FASHION_ONE_CLASS

    values = load_config(CONFIGS / "oneclass_fashion_mnist.yaml").to_dict()
    assert {k: values[k] for k in FASHION_ONE_CLASS} == FASHION_ONE_CLASS
    for dataset in ("fashion-mnist", "mnist"):
        merged = _protocol_values({}, {"dataset": dataset})
        assert {k: merged[k] for k in FASHION_ONE_CLASS} == FASHION_ONE_CLASS
    # another method keeps the preset's budget and drops VJE's settings and its frozen encoder
    merged = _protocol_values({}, {"dataset": "fashion-mnist", "method": "simsiam"})
    assert merged["epochs"] == FASHION_ONE_CLASS["epochs"] and merged["width"] == 16
    assert not {"beta", "df", "hidden", "freeze_encoder", "norm"} & set(merged)
    config = config_from_dict(merged)
    assert config.freeze_encoder is False and config.norm == "batch"  # what oc-simsiam/oc-vicreg ran


def test_method_options_belong_to_their_method():
    cfg = TrainConfig(df=math.inf, hidden=16)
    assert isinstance(cfg.options, VJEOptions) and cfg.options.hidden == 16 and math.isinf(cfg.df)
    assert cfg.to_dict()["hidden"] == 16 and "options" not in cfg.to_dict()
    cfg.beta = 0.5  # a method option set through the config lands in the options
    assert cfg.options.beta == 0.5 and cfg == TrainConfig(df=math.inf, hidden=16, beta=0.5)
    with pytest.raises(TypeError, match="unknown settings: girth"):
        TrainConfig(girth=3)
    with pytest.raises(AttributeError, match="no setting 'girth'"):
        _ = cfg.girth


def test_a_new_method_registers_its_own_options():
    @dataclass
    class ToyOptions(MethodOptions):
        temperature: float = setting(0.5, "toy temperature")

    entry = MethodEntry(ToyOptions, lambda encoder, options: None, "Toy", "a toy")
    register_method("toy", entry)
    try:
        cfg = config_from_dict({"method": "toy", "temperature": 2, "lr": 0.1}).validate()
        assert isinstance(cfg.options, ToyOptions) and cfg.temperature == 2.0 and cfg.lr == 0.1
        assert "df" not in cfg.to_dict() and cfg.to_dict()["temperature"] == 2.0
        with pytest.raises(ValueError, match="unknown config keys: df"):  # VJE's key, not the toy's
            config_from_dict({"method": "toy", "df": 3.0})
        with pytest.raises(ValueError, match="unknown config keys: temperature"):
            config_from_dict({"temperature": 1.0})
        with pytest.raises(ValueError, match="already registered"):
            register_method("toy", entry)
    finally:
        METHODS.pop("toy")


def test_a_method_whose_options_repeat_a_shared_setting_is_refused():
    @dataclass
    class Clashing(MethodOptions):
        lr: float = setting(0.1, "a second learning rate")

    register_method("clash", MethodEntry(Clashing, lambda encoder, options: None, "C", "clashes"))
    try:
        with pytest.raises(ValueError, match="'clash': its options repeat shared settings: lr"):
            TrainConfig(method="clash").validate()
    finally:
        METHODS.pop("clash")


def test_every_setting_has_help_text_and_a_section():
    for cls in (TrainConfig, *(entry.options for entry in METHODS.values())):
        for f in dataclasses.fields(cls):
            assert f.metadata.get("help"), (cls.__name__, f.name)
    for f in dataclasses.fields(TrainConfig):
        assert f.metadata["group"] in GROUPS, f.name


def test_a_data_folder_with_digits_is_refused_naming_the_flag():  # issue 10, item 1
    with pytest.raises(ValueError, match=r"data_dir.*digits.*--dataset"):
        TrainConfig(data_dir="/data/cifar10").validate()
    TrainConfig(dataset="cifar10", data_dir="/data/cifar10").validate()


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("epochs", "ten", "an integer"),
        ("epochs", True, "an integer"),
        ("epochs", 2.5, "an integer"),
        ("lr", "0.1", "a number"),
        ("lr", "nan", "a number"),
        ("lr", float("nan"), "a number"),
        ("df", "three", "a number"),
        ("hidden", "64", "an integer"),
        ("projector", 1, "true or false"),
        ("projector", "yes", "true or false"),
        ("subset", "100", "an integer or null"),
        ("arch", 18, "a string"),
    ],
)
def test_values_are_type_checked_naming_key_type_and_value(key, value, expected, tmp_path):
    """Issue 10 item 6: what YAML hands over is checked against the field's type, before any comparison."""
    with pytest.raises(ValueError) as info:
        config_from_dict({key: value}).validate()
    message = str(info.value)
    assert message.startswith(f"{key} must be {expected}") and repr(value) in message
    # the same through a config file
    path = tmp_path / "c.json"
    path.write_text(json.dumps({key: value}))
    with pytest.raises(ValueError, match=f"^{key} must be "):
        load_config(path)


def test_ints_for_floats_and_inf_strings_still_load():
    cfg = config_from_dict({"lr": 1, "df": "inf", "grad_clip": 2}).validate()
    assert cfg.lr == 1.0 and math.isinf(cfg.df) and cfg.grad_clip == 2


@pytest.mark.parametrize(
    ("suffix", "text", "line"),
    [
        (".yaml", "epochs: 3\nlr: [0.1\nbeta: 1\n", 3),
        (".yml", "epochs: 3\n  lr: 0.1\n", 2),
        (".json", '{"epochs": 3,\n}', 2),
    ],
)
def test_malformed_config_file_is_one_line_naming_file_and_line(tmp_path, suffix, text, line):
    path = tmp_path / f"bad{suffix}"
    path.write_text(text)
    with pytest.raises(ValueError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and f"line {line}" in message


def test_an_unset_inference_width_is_chosen_by_encoder_and_recorded():
    from pyro_vje.methods import DEFAULT_HIDDEN

    assert DEFAULT_HIDDEN == {"small_cnn": 512, "resnet18": 128, "resnet50": 512}  # Section 5.1; issue 8
    for arch, width in DEFAULT_HIDDEN.items():
        cfg = TrainConfig(arch=arch).validate()
        assert cfg.hidden == width and cfg.to_dict()["hidden"] == width  # config.json says which
    assert TrainConfig(arch="resnet18", hidden=64).validate().hidden == 64  # a set width is kept
    with pytest.raises(ValueError, match="hidden must be >= 1"):
        TrainConfig(hidden=0).validate()


# ------------------------------------------------------------------ issue 26
@pytest.mark.parametrize(
    ("typo", "meant"),
    [("learning_rat", "lr"), ("learning_rate", "lr"), ("epoch", "epochs"), ("batchsize", "batch_size")],
)
def test_an_unknown_key_says_which_key_was_meant(typo, meant):
    with pytest.raises(ValueError, match=rf"unknown config keys: {typo} \(did you mean {meant}\?\)"):
        config_from_dict({typo: 1})


def test_an_unknown_key_like_nothing_gets_no_guess():
    with pytest.raises(ValueError) as err:
        config_from_dict({"zzzz": 1})
    assert "did you mean" not in str(err.value)
