"""The VJE likelihood as Pyro distributions (paper Section 4).

* :class:`DirectionalStudentT` — Eq. 23, extrinsic Student-t on ``z / ||z||``;
* :class:`RadialStudentT` — Eq. 28, Student-t on ``||z|| - ||loc||``;
* :class:`PolarStudentT` — Eq. 31, their product: the VJE likelihood.
"""

from ._math import NORM_EPS, normalize
from .directional import DirectionalStudentT
from .polar import PolarStudentT
from .radial import RadialStudentT

__all__ = ["DirectionalStudentT", "NORM_EPS", "PolarStudentT", "RadialStudentT", "normalize"]
