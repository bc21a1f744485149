"""Networks: the amortized inference network (and, later, encoders)."""

from .inference import InferenceNetwork

__all__ = ["InferenceNetwork"]
