"""Every trainable method, VJE first: one module each, one registry entry each.

:data:`METHODS` (:mod:`.registry`) maps a method's name to its options dataclass
(:mod:`.options`), its builder and what it is; ``pyro-vje train --method NAME``,
``pyro-vje compare`` and the command line's flags read it:

* ``vje`` (:mod:`.vje`) — Variational Joint Embedding (the model itself: :mod:`pyro_vje.model`);
* ``simsiam`` (:mod:`.simsiam`) — negative cosine with predictor and stop-gradient;
* ``vicreg`` (:mod:`.vicreg`) — variance / invariance / covariance;
* ``vsimsiam`` (:mod:`.vsimsiam`) — Power Spherical likelihood + KL to uniform;
* ``vcl`` (:mod:`.vcl`) — projected-normal posterior, InfoNCE, KL bound to uniform;
* ``gje`` (:mod:`.gje`) — Gaussian (mixture) joint embeddings;
* ``supervised`` (:mod:`.supervised`) — the same encoder trained with labels (a ceiling).

Every method is an ``nn.Module`` with the trainer's interface: ``encoder``,
``training_loss(x1, x2) -> (loss, terms)`` and ``features(x) -> {"z": ..., ...}``;
:func:`~.build.build_method` builds a run's method on its encoder.

The options and the registry import without torch, and so does this package: the
methods themselves are imported on first use (PEP 562), so the command line reads every
method's options without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from .options import (
    DEFAULT_HIDDEN,
    GJEOptions,
    MethodOptions,
    SiameseHeads,
    SimSiamOptions,
    SupervisedOptions,
    VCLOptions,
    VICRegOptions,
    VJEOptions,
    VSimSiamOptions,
    setting,
)
from .registry import METHODS, MethodEntry, method_entry, register_method

_LAZY = {
    "build_backbone": ".build",
    "build_method": ".build",
    "module_local_params": ".build",
    "build_vje": ".vje",
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
    "DEFAULT_HIDDEN",
    "GJE",
    "METHODS",
    "VCL",
    "GJEOptions",
    "MethodEntry",
    "MethodOptions",
    "PrototypeJointMixture",
    "SiameseHeads",
    "SimSiam",
    "SimSiamOptions",
    "Supervised",
    "SupervisedOptions",
    "TwoViewMethod",
    "VCLOptions",
    "VICReg",
    "VICRegOptions",
    "VJEOptions",
    "VSimSiam",
    "VSimSiamOptions",
    "batch_gje_terms",
    "build_backbone",
    "build_method",
    "build_vje",
    "gaussian_conditional",
    "gaussian_kl_to_standard",
    "gmje_loss",
    "method_entry",
    "module_local_params",
    "negative_cosine",
    "nt_xent",
    "power_spherical_nll",
    "projected_normal_kl_bound",
    "register_method",
    "setting",
    "simsiam_loss",
    "vicreg_loss",
    "vsimsiam_loss",
]
