"""pyro_vje — Variational Joint Embedding as a probabilistic program in Pyro."""

from .distributions import DirectionalStudentT, PolarStudentT, RadialStudentT

__version__ = "0.1.0"

__all__ = ["DirectionalStudentT", "PolarStudentT", "RadialStudentT", "__version__"]
