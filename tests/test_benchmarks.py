"""The benchmark scripts run (tiny settings); their figures are recorded in docs/results.md."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_step_time_benchmark_runs(tmp_path):
    spec = importlib.util.spec_from_file_location("step_time", ROOT / "benchmarks" / "step_time.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "step.json"
    result = module.main(["--batch", "8", "--steps", "2", "--warmup", "1", "--json", str(out)])
    assert json.loads(out.read_text())["ratio"] == result["ratio"] > 0
