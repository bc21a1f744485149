"""Networks: encoders f_theta and the amortized inference network g_phi."""

from .encoders import SmallCNN, small_cnn
from .inference import InferenceNetwork

__all__ = ["InferenceNetwork", "SmallCNN", "small_cnn"]
