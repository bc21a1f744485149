"""amp: what auto resolves to on each device, the warning for emulated bf16, and the record in
config.json that a resumed run keeps."""

import json
import warnings

import pytest
import torch

from pyro_vje.training import precision, train
from pyro_vje.training.precision import cpu_bf16_native, resolve_amp
from tests.training.test_trainer import tiny

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_auto_is_bf16_on_cuda_and_float32_on_any_cpu(monkeypatch):
    for native in (False, True):
        monkeypatch.setattr(precision, "cpu_bf16_native", lambda native=native: native)
        assert resolve_amp("auto", CPU) == "none"
    assert resolve_amp("auto", CUDA) == "bf16" and resolve_amp("none", CUDA) == "none"


def test_bf16_on_a_cpu_without_native_support_is_warned_about(monkeypatch):
    monkeypatch.setattr(precision, "cpu_bf16_native", lambda: False)
    with pytest.warns(UserWarning, match="without native bf16"):
        assert resolve_amp("bf16", CPU) == "bf16"
    monkeypatch.setattr(precision, "cpu_bf16_native", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_amp("bf16", CPU) == "bf16"


def test_native_bf16_needs_the_cpu_flag():
    avx2 = "processor : 0\nflags : fpu sse sse2 avx avx2 fma\n"
    assert not cpu_bf16_native(avx2)
    sapphire = "processor : 0\nflags : fpu avx2 avx512f avx512bw avx512_bf16 amx_bf16 amx_tile\n"
    assert cpu_bf16_native(sapphire) == bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def test_config_json_records_the_resolved_choice_and_resume_keeps_it(tmp_path):
    config = tiny(tmp_path, epochs=2)
    assert config.amp == "auto"
    train(config)
    recorded = json.loads((tmp_path / "run/config.json").read_text())["amp"]
    assert recorded == "none"  # auto on this CPU
    again = tiny(tmp_path, epochs=2)
    assert again.amp == "auto"
    train(again, resume=True)  # "auto" now, "none" recorded: the same run, not "a different config"
    assert json.loads((tmp_path / "run/config.json").read_text())["amp"] == "none"
