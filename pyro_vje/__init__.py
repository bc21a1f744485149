"""pyro_vje — Variational Joint Embedding as a probabilistic program in Pyro.

Layout, as the paper reads, from the ground up (each imports only what stands before it):
:mod:`~pyro_vje.distributions` (the likelihood, Section 4) and :mod:`~pyro_vje.networks`
(encoders, inference network) -> :mod:`~pyro_vje.model` (model/guide and ELBO, Section 4.4),
:mod:`~pyro_vje.data` and :mod:`~pyro_vje.evaluation` (kNN, linear probe, diagnostics) ->
:mod:`~pyro_vje.methods` (VJE and the methods it is compared with, one registry) and
:mod:`~pyro_vje.score` (Eq. 39 and the other scores) -> :mod:`~pyro_vje.config` (a run's
settings) -> :mod:`~pyro_vje.runs` (run directories) -> :mod:`~pyro_vje.training` ->
:mod:`~pyro_vje.protocols` (one-class, OOD, uncertainty, compare, sweep) -> :mod:`~pyro_vje.cli`.

The names below are imported on first use (PEP 562), so that ``pyro-vje --help``
answers without importing torch. Importing the package first sets OpenMP's passive wait
policy, unless the user set one (:mod:`pyro_vje.threads`: idle threads sleep rather than
spin, so a run keeps its speed beside another busy process).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .threads import apply_wait_policy

apply_wait_policy()  # before anything imports torch: OpenMP reads it when torch's library loads

if TYPE_CHECKING:
    from .distributions import DirectionalStudentT, PolarStudentT, RadialStudentT
    from .loss import VJELoss
    from .model import VJE
    from .networks import InferenceNetwork

__version__ = "0.1.0"

_LAZY = {
    "VJE": ".model",
    "VJELoss": ".loss",
    "DirectionalStudentT": ".distributions",
    "InferenceNetwork": ".networks",
    "PolarStudentT": ".distributions",
    "RadialStudentT": ".distributions",
}

__all__ = [
    "VJE",
    "VJELoss",
    "DirectionalStudentT",
    "InferenceNetwork",
    "PolarStudentT",
    "RadialStudentT",
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    try:
        return importlib.import_module(f".{name}", __name__)  # a subpackage, e.g. pyro_vje.score
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
