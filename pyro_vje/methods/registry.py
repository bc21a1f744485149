"""The method registry: a baseline's name -> ``(method class, options class)``."""

from __future__ import annotations

from .base import TwoViewMethod
from .gje import GJE
from .options import (
    GJEOptions,
    MethodOptions,
    SimSiamOptions,
    SupervisedOptions,
    VCLOptions,
    VICRegOptions,
    VSimSiamOptions,
)
from .simsiam import SimSiam
from .supervised import Supervised
from .vcl import VCL
from .vicreg import VICReg
from .vsimsiam import VSimSiam

BASELINES: dict[str, tuple[type[TwoViewMethod], type[MethodOptions]]] = {
    "simsiam": (SimSiam, SimSiamOptions),
    "vicreg": (VICReg, VICRegOptions),
    "vsimsiam": (VSimSiam, VSimSiamOptions),
    "vcl": (VCL, VCLOptions),
    "gje": (GJE, GJEOptions),
    "supervised": (Supervised, SupervisedOptions),
}
