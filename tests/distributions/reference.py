"""Independent float64 references for the VJE likelihood, built on scipy.stats."""

import numpy as np
from scipy import stats

EPS = 1e-6


def unit(x: np.ndarray) -> np.ndarray:
    return x / max(np.linalg.norm(x), EPS)


def directional_logpdf(z, loc, scale, df) -> float:
    """Eq. 23: scipy's multivariate t in R^D at z/||z||, centre loc/||loc||, shape diag(scale^2)."""
    z, loc, scale = (np.asarray(a, dtype=np.float64) for a in (z, loc, scale))
    scale = np.broadcast_to(scale, loc.shape)
    return float(stats.multivariate_t(loc=unit(loc), shape=np.diag(scale**2), df=df).logpdf(unit(z)))


def radial_logpdf(z, loc, radial_scale, df) -> float:
    """Eq. 28: scipy's univariate t at ||z|| - ||loc||."""
    z, loc = np.asarray(z, np.float64), np.asarray(loc, np.float64)
    delta_r = np.linalg.norm(z) - np.linalg.norm(loc)
    if np.isinf(df):
        return float(stats.norm.logpdf(delta_r, scale=radial_scale))
    return float(stats.t.logpdf(delta_r, df, scale=radial_scale))


def polar_logpdf(z, loc, scale, radial_scale, df) -> float:
    """Eq. 31."""
    return directional_logpdf(z, loc, scale, df) + radial_logpdf(z, loc, radial_scale, df)
