"""The thread policy (pyro_vje.threads): set before torch loads, the user's choice kept, and what
a fresh process actually gets (a subprocess, since this one imported torch long ago)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pyro_vje.threads import WAIT_POLICY, apply_wait_policy, set_threads

ROOT = Path(__file__).resolve().parents[1]


def test_the_policy_is_passive_unless_the_user_set_one():
    env: dict[str, str] = {}
    assert "torch" in sys.modules  # in this process torch is loaded: nothing may change
    assert apply_wait_policy(env) == "too late" and env == {}
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert apply_wait_policy(env) == "user" and env == {"OMP_WAIT_POLICY": "ACTIVE"}


def _fresh(code: str, **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**base, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return out.stdout.strip()


def test_a_fresh_process_gets_it_before_torch_loads():
    code = "import pyro_vje, os, torch; print(os.environ.get('OMP_WAIT_POLICY'))"
    assert _fresh(code) == WAIT_POLICY
    assert _fresh(code, OMP_WAIT_POLICY="active") == "active"
    late = "import torch, os, pyro_vje; print(os.environ.get('OMP_WAIT_POLICY'))"
    assert _fresh(late) == "None"  # torch first: OpenMP has read its settings, nothing is pretended


def test_the_command_line_runs_under_it():
    code = (
        "import sys; sys.argv = ['pyro-vje', '--help']; import os; from pyro_vje import cli; "
        "print(os.environ.get('OMP_WAIT_POLICY'))"
    )
    assert _fresh(code) == WAIT_POLICY


def test_set_threads():
    import torch

    before = torch.get_num_threads()
    try:
        assert set_threads(1) == 1 == torch.get_num_threads()
        assert set_threads(None) == 1  # None leaves torch's choice alone
    finally:
        torch.set_num_threads(before)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="threads"):
            set_threads(bad)
