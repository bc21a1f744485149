# isort: off
import pyro_vje  # noqa: F401  (first: its OpenMP wait policy must be set before torch loads)

# isort: on
import pyro
import pytest
import torch


@pytest.fixture(autouse=True)
def _fresh_pyro_state():
    """Each test starts from a clean param store and a fixed seed."""
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    yield
    pyro.clear_param_store()


@pytest.fixture(autouse=True)
def _pyro_validation():
    pyro.enable_validation(True)
    yield


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running test (excluded from the default run)")
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
