"""What is and is not normalized (docs/theory.md, "Densities and subdensities").

* The directional factor is the extrinsic R^D density evaluated on the unit
  sphere: its integral over S^{D-1} is not 1. It is below 1 for broad scales
  (a subdensity) and above 1 for concentrated ones in low dimension.
* The radial factor is a density of Delta r in R; over the attainable norms
  ||z|| >= 0 it integrates to P(Delta r >= -||loc||) < 1.
"""

import math

import pytest
import torch
from scipy import integrate, stats

from pyro_vje.distributions import DirectionalStudentT, RadialStudentT


def _circle_integral(df: float, sigma: float) -> float:
    """Integral over the unit circle (arc length) of the D = 2 directional factor."""
    theta = torch.linspace(-math.pi, math.pi, 200_001, dtype=torch.float64)
    u = torch.stack([torch.cos(theta), torch.sin(theta)], -1)
    loc = torch.tensor([1.0, 0.0], dtype=torch.float64)
    dens = DirectionalStudentT(df, loc, sigma).log_prob(u).exp()
    return float(torch.trapezoid(dens, theta))


@pytest.mark.parametrize("df", [1.0, 3.0, math.inf])
def test_directional_factor_is_a_subdensity_for_broad_scales(df):
    assert _circle_integral(df, sigma=1.0) < 1.0


def test_directional_factor_exceeds_one_for_concentrated_scales():
    """Gaussian limit, D = 2: the integral tends to 1 / (sqrt(2 pi) sigma) as sigma -> 0."""
    sigma = 0.01
    value = _circle_integral(math.inf, sigma)
    assert value > 1.0
    assert value == pytest.approx(1.0 / (math.sqrt(2 * math.pi) * sigma), rel=1e-3)


@pytest.mark.parametrize("df", [0.5, 3.0, math.inf])
@pytest.mark.parametrize("loc_norm", [0.5, 2.0])
def test_radial_factor_mass_on_attainable_norms(df, loc_norm):
    loc = torch.tensor([loc_norm, 0.0, 0.0], dtype=torch.float64)
    d = RadialStudentT(df, loc)

    def density(r: float) -> float:
        return float(d.log_prob(torch.tensor([r, 0.0, 0.0], dtype=torch.float64)).exp())

    mass, _ = integrate.quad(density, 0.0, math.inf, limit=200)
    ref = stats.norm if math.isinf(df) else stats.t(df)
    assert mass == pytest.approx(ref.sf(-loc_norm), rel=1e-6)
    assert mass < 1.0
