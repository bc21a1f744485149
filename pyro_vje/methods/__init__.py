"""The baselines of issue 8, each a two-view method with its own options (docs/methods.md).

Every method is an ``nn.Module`` with the trainer's interface
(:mod:`pyro_vje.training.methods`): ``encoder``, ``training_loss(x1, x2) -> (loss, terms)``
and ``features(x) -> {"z": ..., ...}``, built from an encoder with ``.dim`` and an
options dataclass that belongs to the method:

* :class:`SimSiam` (:mod:`.simsiam`) — negative cosine with predictor and stop-gradient;
* :class:`VICReg` (:mod:`.vicreg`) — variance / invariance / covariance;
* :class:`VSimSiam` (:mod:`.vsimsiam`) — Power Spherical likelihood + KL to uniform;
* :class:`VCL` (:mod:`.vcl`) — projected-normal posterior, InfoNCE, KL bound to uniform;
* :class:`GJE` (:mod:`.gje`) — Gaussian (mixture) joint embeddings.

:data:`BASELINES` maps a method name to its ``(class, options class)``.
"""

from .base import TwoViewMethod
from .gje import GJE, GJEOptions, PrototypeJointMixture, batch_gje_terms, gaussian_conditional, gmje_loss
from .options import METHOD_OPTIONS, MethodOptions, register_method_options, setting
from .simsiam import SimSiam, SimSiamOptions, negative_cosine, simsiam_loss
from .vcl import VCL, VCLOptions, gaussian_kl_to_standard, nt_xent, projected_normal_kl_bound
from .vicreg import VICReg, VICRegOptions, vicreg_loss
from .vsimsiam import VSimSiam, VSimSiamOptions, power_spherical_nll, vsimsiam_loss

BASELINES: dict[str, tuple[type[TwoViewMethod], type[MethodOptions]]] = {
    "simsiam": (SimSiam, SimSiamOptions),
    "vicreg": (VICReg, VICRegOptions),
    "vsimsiam": (VSimSiam, VSimSiamOptions),
    "vcl": (VCL, VCLOptions),
    "gje": (GJE, GJEOptions),
}

__all__ = [
    "BASELINES",
    "METHOD_OPTIONS",
    "GJE",
    "GJEOptions",
    "MethodOptions",
    "PrototypeJointMixture",
    "SimSiam",
    "SimSiamOptions",
    "TwoViewMethod",
    "VCL",
    "VCLOptions",
    "VICReg",
    "VICRegOptions",
    "VSimSiam",
    "VSimSiamOptions",
    "batch_gje_terms",
    "gaussian_conditional",
    "gaussian_kl_to_standard",
    "gmje_loss",
    "negative_cosine",
    "nt_xent",
    "power_spherical_nll",
    "projected_normal_kl_bound",
    "register_method_options",
    "setting",
    "simsiam_loss",
    "vicreg_loss",
    "vsimsiam_loss",
]
