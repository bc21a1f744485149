"""pyro_vje — Variational Joint Embedding as a probabilistic program in Pyro.

Layout, as the paper reads: :mod:`~pyro_vje.distributions` (the likelihood,
Section 4) -> :mod:`~pyro_vje.model` (model/guide and ELBO, Section 4.4) ->
:mod:`~pyro_vje.networks` (encoders, inference network) -> :mod:`~pyro_vje.data`
-> :mod:`~pyro_vje.training` -> :mod:`~pyro_vje.evaluation`.
"""

from .distributions import DirectionalStudentT, PolarStudentT, RadialStudentT
from .loss import VJELoss
from .model import VJE
from .networks import InferenceNetwork

__version__ = "0.1.0"

__all__ = [
    "VJE",
    "VJELoss",
    "DirectionalStudentT",
    "InferenceNetwork",
    "PolarStudentT",
    "RadialStudentT",
    "__version__",
]
