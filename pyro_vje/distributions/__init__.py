"""The VJE likelihood as Pyro distributions (paper Section 4).

* :class:`DirectionalStudentT` — Eq. 23, extrinsic Student-t on ``z / ||z||``;
* :class:`RadialStudentT` — Eq. 28, Student-t on ``||z|| - ||loc||``;
* :class:`PolarStudentT` — Eq. 31, their product: the VJE likelihood;
* :class:`PowerSpherical` — De Cao & Aziz (2020), the VSimSiam likelihood (Eq. 4).
"""

from ._math import NORM_EPS, normalize
from .directional import DirectionalStudentT
from .polar import PolarStudentT
from .power_spherical import PowerSpherical, log_sphere_area
from .radial import RadialStudentT

__all__ = [
    "DirectionalStudentT",
    "NORM_EPS",
    "PolarStudentT",
    "PowerSpherical",
    "RadialStudentT",
    "log_sphere_area",
    "normalize",
]
