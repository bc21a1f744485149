"""The baselines of issue 8, each a two-view method with its own options (docs/methods.md).

Every method is an ``nn.Module`` with the trainer's interface
(:mod:`pyro_vje.training.methods`): ``encoder``, ``training_loss(x1, x2) -> (loss, terms)``
and ``features(x) -> {"z": ..., ...}``, built from an encoder with ``.dim`` and an
options dataclass that belongs to the method:

* :class:`SimSiam` (:mod:`.simsiam`) — negative cosine with predictor and stop-gradient;
* :class:`VICReg` (:mod:`.vicreg`) — variance / invariance / covariance;
* :class:`VSimSiam` (:mod:`.vsimsiam`) — Power Spherical likelihood + KL to uniform;
* :class:`VCL` (:mod:`.vcl`) — projected-normal posterior, InfoNCE, KL bound to uniform;
* :class:`GJE` (:mod:`.gje`) — Gaussian (mixture) joint embeddings;
* :class:`Supervised` (:mod:`.supervised`) — the same encoder trained with labels (a ceiling).

:data:`BASELINES` maps a method name to its ``(class, options class)``.

The option dataclasses (:mod:`.options`) import without torch, and so does this package: the
methods themselves are imported on first use (PEP 562), so the command line can read every
method's options without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from .options import (
    METHOD_OPTIONS,
    GJEOptions,
    MethodOptions,
    SimSiamOptions,
    SupervisedOptions,
    VCLOptions,
    VICRegOptions,
    VSimSiamOptions,
    register_method_options,
    setting,
)

_LAZY = {
    "BASELINES": ".registry",
    "TwoViewMethod": ".base",
    "GJE": ".gje",
    "PrototypeJointMixture": ".gje",
    "batch_gje_terms": ".gje",
    "gaussian_conditional": ".gje",
    "gmje_loss": ".gje",
    "SimSiam": ".simsiam",
    "negative_cosine": ".simsiam",
    "simsiam_loss": ".simsiam",
    "Supervised": ".supervised",
    "VCL": ".vcl",
    "gaussian_kl_to_standard": ".vcl",
    "nt_xent": ".vcl",
    "projected_normal_kl_bound": ".vcl",
    "VICReg": ".vicreg",
    "vicreg_loss": ".vicreg",
    "VSimSiam": ".vsimsiam",
    "power_spherical_nll": ".vsimsiam",
    "vsimsiam_loss": ".vsimsiam",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BASELINES",
    "METHOD_OPTIONS",
    "GJE",
    "GJEOptions",
    "MethodOptions",
    "PrototypeJointMixture",
    "SimSiam",
    "SimSiamOptions",
    "Supervised",
    "SupervisedOptions",
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
