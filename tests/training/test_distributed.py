"""torchrun + DistributedDataParallel on CPU (gloo): 2 processes equal 1 on the same global batch."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pyro_vje.runs import read_metrics

WORKER = Path(__file__).with_name("ddp_worker.py")
ROOT = Path(__file__).resolve().parents[2]
ARGS = [
    "--dataset",
    "digits",
    "--arch",
    "small_cnn",
    "--norm",
    "none",
    "--augment",
    "none",
    "--hidden",
    "16",
    "--epochs",
    "2",
    "--batch-size",
    "64",
    "--max-steps-per-epoch",
    "3",
    "--eval-every",
    "100",
    "--lr",
    "0.5",
    "--device",
    "cpu",
    "--no-progress",
    "--no-tensorboard",
    "--no-figures",
]


def _run(cmd, out):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    res = subprocess.run(
        [*cmd, *ARGS, "--out", str(out)], capture_output=True, text=True, env=env, timeout=300
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return torch.load(out / "last.pt", weights_only=True)["model"], read_metrics(out / "metrics.jsonl")


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available")
def test_two_gloo_processes_match_one_process(tmp_path):
    single, rows1 = _run([sys.executable, str(WORKER)], tmp_path / "single")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    ddp, rows2 = _run([*torchrun, str(WORKER)], tmp_path / "ddp")
    assert [r["epoch"] for r in rows2] == [1, 2]
    for r1, r2 in zip(rows1, rows2):  # rank 0 logs the mean over processes = the global-batch mean
        assert r2["loss"] == pytest.approx(r1["loss"], rel=1e-4, abs=1e-4)
    assert rows1[0]["loss"] != rows1[1]["loss"]  # it trained
    for key, value in single.items():
        if value.is_floating_point():
            torch.testing.assert_close(ddp[key], value, rtol=1e-4, atol=1e-5, msg=key)
