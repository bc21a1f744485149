"""Networks: encoders f_theta, the optional projection head and the amortized inference network g_phi."""

from .encoders import ENCODERS, NORMS, SmallCNN, build_encoder, small_cnn
from .inference import MIN_VAR, InferenceNetwork
from .projection_head import ProjectedEncoder, ProjectionHead, with_projector
from .resnet import resnet18, resnet50

__all__ = [
    "ENCODERS",
    "NORMS",
    "InferenceNetwork",
    "MIN_VAR",
    "ProjectedEncoder",
    "ProjectionHead",
    "SmallCNN",
    "build_encoder",
    "resnet18",
    "resnet50",
    "small_cnn",
    "with_projector",
]
