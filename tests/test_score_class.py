"""pyro_vje.score's class-level scores (mixture_nll, aggregate_nll) against float64 scipy references."""

import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import logsumexp

from pyro_vje import score
from pyro_vje.model import VJE
from pyro_vje.networks import InferenceNetwork, small_cnn
from tests.distributions.reference import polar_logpdf


def make_vje(df=0.5, radial_scale=1.0):
    torch.manual_seed(0)
    encoder = small_cnn(in_channels=1, channels=(8, 16))
    return VJE(encoder, InferenceNetwork(encoder.dim, 16), df=df, radial_scale=radial_scale)


def bank_and_queries(n=5, m=4, d=6, seed=3):
    g = torch.Generator().manual_seed(seed)
    bank_loc = torch.randn(n, d, generator=g, dtype=torch.float64) * 2
    bank_scale = 0.2 + torch.rand(n, d, generator=g, dtype=torch.float64)
    z = torch.randn(m, d, generator=g, dtype=torch.float64) * 3
    loc = torch.randn(m, d, generator=g, dtype=torch.float64)
    scale = 0.2 + torch.rand(m, d, generator=g, dtype=torch.float64)
    return z, loc, scale, bank_loc, bank_scale


@pytest.mark.parametrize("df,radial_scale", [(0.5, 1.0), (3.0, 0.7), (math.inf, 1.0)])
def test_mixture_nll_matches_a_scipy_mixture_of_eq31(df, radial_scale):
    vje = make_vje(df, radial_scale)
    z, _, _, bank_loc, bank_scale = bank_and_queries()
    got = score.mixture_nll(vje, z.float(), bank_loc.float(), bank_scale.float(), chunk_size=3)
    assert got.dtype == torch.float32
    for j in range(len(z)):
        logs = [
            polar_logpdf(z[j].numpy(), bank_loc[i].numpy(), bank_scale[i].numpy(), radial_scale, df)
            for i in range(len(bank_loc))
        ]
        want = -(logsumexp(logs) - math.log(len(logs)))
        assert got[j].item() == pytest.approx(want, rel=1e-5)


def test_mixture_of_one_posterior_is_the_joint_score():
    """Eq. 39 is the mixture of N = 1 component: the input's own posterior."""
    vje = make_vje(0.5).double()
    z, loc, scale, _, _ = bank_and_queries()
    joint = score.score_embeddings(vje, z, loc, scale, which=("joint",))["joint"]
    for j in range(len(z)):
        one = score.mixture_nll(vje, z[j : j + 1], loc[j : j + 1], scale[j : j + 1])
        assert one.item() == pytest.approx(joint[j].item(), rel=1e-12)


def test_aggregate_nll_matches_scipy_gaussian_overlaps():
    _, loc, scale, bank_loc, bank_scale = bank_and_queries()
    got = score.aggregate_nll(loc, scale, bank_loc, bank_scale, chunk_size=2)
    for j in range(len(loc)):
        logs = [
            stats.multivariate_normal(
                mean=bank_loc[i].numpy(), cov=np.diag((bank_scale[i] ** 2 + scale[j] ** 2).numpy())
            ).logpdf(loc[j].numpy())
            for i in range(len(bank_loc))
        ]
        assert got[j].item() == pytest.approx(-(logsumexp(logs) - math.log(len(logs))), rel=1e-10)


def test_aggregate_nll_is_the_monte_carlo_overlap_integral():
    """-log E_{s ~ q(s|z)} [mean_i N(s; mu_i, sigma_i^2)], estimated by sampling s."""
    _, loc, scale, bank_loc, bank_scale = bank_and_queries(n=3, m=1, d=2)
    g = torch.Generator().manual_seed(0)
    s = loc[0] + scale[0] * torch.randn(400_000, 2, generator=g, dtype=torch.float64)
    dens = (
        sum(
            np.exp(
                stats.multivariate_normal(bank_loc[i].numpy(), np.diag(bank_scale[i].numpy() ** 2)).logpdf(
                    s.numpy()
                )
            )
            for i in range(3)
        )
        / 3
    )
    got = score.aggregate_nll(loc, scale, bank_loc, bank_scale)
    assert got[0].item() == pytest.approx(-math.log(dens.mean()), abs=0.02)


def test_class_scores_reject_bad_shapes():
    vje = make_vje()
    z, loc, scale, bank_loc, bank_scale = bank_and_queries()
    with pytest.raises(ValueError, match="bank_loc and bank_scale"):
        score.mixture_nll(vje, z, bank_loc, bank_scale[:, :3])
    with pytest.raises(ValueError, match="bank_loc and bank_scale"):
        score.aggregate_nll(loc, scale, bank_loc[:0], bank_scale[:0])
    with pytest.raises(ValueError, match="z must be"):
        score.mixture_nll(vje, z[:, :3], bank_loc, bank_scale)
    with pytest.raises(ValueError, match="loc and scale"):
        score.aggregate_nll(loc, scale[:, :2], bank_loc, bank_scale)
    with pytest.raises(TypeError, match="VJE"):
        score.mixture_nll(torch.nn.Linear(2, 2), z, bank_loc, bank_scale)
