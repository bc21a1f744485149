"""What ``pyro-vje train`` prints under its table (issue 10 item 16): one line reading the numbers."""

import pytest

from pyro_vje.cli import _print_results

BASE = {"knn_raw_pixels": 0.973, "knn_z_random_init": 0.929, "var_mean": 0.45, "var_cv": 0.28}


@pytest.mark.parametrize(
    ("z", "mu", "says"),
    [
        (0.962, 0.947, "z and mu beat the random-init encoder, so training learned"),
        (0.95, 0.80, "only z beats the random-init encoder: train longer"),
        (0.89, 0.72, "z and mu are not above the random-init encoder yet: train longer"),
    ],
)
def test_one_reading_line_under_the_table(z, mu, says, capsys):
    _print_results({**BASE, "knn_z": z, "knn_mu": mu, "z_rank": 40.0, "mu_rank": 12.0})
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("reading: ")]
    assert len(lines) == 1
    assert says in lines[0] and "raw pixels are a strong kNN baseline" in lines[0]
    assert "sigma^2 CV" in lines[0] and "effective rank" in lines[0]


@pytest.mark.parametrize("dataset", ["cifar10", "stl10"])
def test_the_reading_speaks_of_the_runs_own_data_set(dataset, capsys):
    _print_results({**BASE, "knn_z": 0.40, "knn_mu": 0.38, "knn_raw_pixels": 0.45}, dataset=dataset)
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith("reading: ")]
    assert "digits" not in line and "8x8" not in line
    assert f"raw pixels still beat z and mu: on {dataset}" in line
