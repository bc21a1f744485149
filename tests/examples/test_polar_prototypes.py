"""examples/polar_prototypes.py: PolarStudentT inside another Pyro model, fit with SVI."""

import importlib.util
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "polar_prototypes.py"


def _load():
    spec = importlib.util.spec_from_file_location("polar_prototypes", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_svi_recovers_prototypes_and_scale_ordering():
    metrics = _load().main(["--steps", "400"])
    assert metrics["min_cosine"] > 0.98  # prototype directions
    assert metrics["max_norm_rel_error"] < 0.2  # prototype norms
    assert metrics["sigma_rank_correlation"] > 0.8  # which features are noisier
