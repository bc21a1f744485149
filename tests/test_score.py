"""pyro_vje.score against float64 recomputations from the paper's formulas (scipy), and its metrics."""

import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import logsumexp
from torch.utils.data import DataLoader, TensorDataset

from pyro_vje import score
from pyro_vje.model import VJE
from pyro_vje.networks import InferenceNetwork, small_cnn
from tests.distributions.reference import directional_logpdf, polar_logpdf, radial_logpdf


def make_vje(df=0.5, radial_scale=1.0):
    torch.manual_seed(0)
    encoder = small_cnn(in_channels=1, channels=(8, 16))
    return VJE(encoder, InferenceNetwork(encoder.dim, 16), df=df, radial_scale=radial_scale).double()


def random_posterior(n=6, d=5, seed=1):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, d, generator=g, dtype=torch.float64) * 2
    loc = torch.randn(n, d, generator=g, dtype=torch.float64)
    scale = 0.3 + torch.rand(n, d, generator=g, dtype=torch.float64)
    return z, loc, scale


@pytest.mark.parametrize("df,radial_scale", [(0.5, 1.0), (3.0, 0.7), (math.inf, 1.0)])
def test_posterior_mean_scores_match_scipy(df, radial_scale):
    vje = make_vje(df, radial_scale)
    z, loc, scale = random_posterior()
    got = score.score_embeddings(vje, z, loc, scale)
    for i in range(len(z)):
        zi, mi, si = z[i].numpy(), loc[i].numpy(), scale[i].numpy()
        assert got["joint"][i].item() == pytest.approx(-polar_logpdf(zi, mi, si, radial_scale, df), rel=1e-6)
        assert got["directional"][i].item() == pytest.approx(-directional_logpdf(zi, mi, si, df), rel=1e-6)
        assert got["radial"][i].item() == pytest.approx(-radial_logpdf(zi, mi, radial_scale, df), rel=1e-6)
        assert got["variance"][i].item() == pytest.approx(float((si**2).sum()), rel=1e-12)
        entropy = stats.multivariate_normal(mean=mi, cov=np.diag(si**2)).entropy()
        assert got["entropy"][i].item() == pytest.approx(entropy, rel=1e-10)


def _residual_reference(z: np.ndarray, loc: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Eq. 22 / D in float64 with Appendix A's norm floor, written out in numpy."""
    zh = z / np.maximum(np.linalg.norm(z, axis=-1, keepdims=True), 1e-6)
    sh = loc / np.maximum(np.linalg.norm(loc, axis=-1, keepdims=True), 1e-6)
    return (((zh - sh) / scale) ** 2).sum(-1) / z.shape[-1]


@pytest.mark.parametrize("df", [0.25, 3.0, math.inf])
def test_residual_is_eq22_per_dimension_whatever_df(df):
    z, loc, scale = random_posterior(n=7, d=6)
    got = score.score_embeddings(make_vje(df), z, loc, scale, which=("residual",))["residual"]
    np.testing.assert_allclose(
        got.numpy(), _residual_reference(z.numpy(), loc.numpy(), scale.numpy()), rtol=1e-12
    )
    # the directional NLL is (df + D)/2 log(1 + D * residual / df) + sum log sigma + const: check the link
    if math.isfinite(df):
        d = z.shape[1]
        nll = score.score_embeddings(make_vje(df), z, loc, scale, which=("directional",))["directional"]
        expected = 0.5 * (df + d) * np.log1p(d * got.numpy() / df) + np.log(scale.numpy()).sum(1)
        diff = nll.numpy() - expected
        np.testing.assert_allclose(diff, diff[0], rtol=0, atol=1e-9)  # an input-independent constant


def test_residual_scales_with_one_over_sigma_squared_and_has_no_log_sigma_term():
    """Scaling sigma by c divides the residual by c^2 exactly, while the directional NLL also gains
    sum_d log c (its normalizer): the term the residual leaves out."""
    z, loc, scale = random_posterior(n=5, d=4)
    vje, c = make_vje(0.5), 3.0
    base = score.score_embeddings(vje, z, loc, scale, which=("residual",))["residual"]
    wide = score.score_embeddings(vje, z, loc, c * scale, which=("residual",))["residual"]
    np.testing.assert_allclose(wide.numpy(), base.numpy() / c**2, rtol=1e-12)
    d = z.shape[1]
    for sigma, r in ((scale, base), (c * scale, wide)):
        nll = score.score_embeddings(vje, z, loc, sigma, which=("directional",))["directional"].numpy()
        expected = -np.array(
            [directional_logpdf(z[i].numpy(), loc[i].numpy(), sigma[i].numpy(), 0.5) for i in range(5)]
        )
        np.testing.assert_allclose(nll, expected, rtol=1e-9)
        kernel = 0.5 * (0.5 + d) * np.log1p(d * r.numpy() / 0.5)
        np.testing.assert_allclose(
            nll - kernel - np.log(sigma.numpy()).sum(1),
            (nll - kernel - np.log(sigma.numpy()).sum(1))[0],
            atol=1e-9,
        )


def _sampled_score(vje, z, loc, scale, name, *, num_samples, seed):
    """``name`` scored over posterior samples, and the samples s = loc + scale * eps it used
    (the same generator draws, in float64)."""
    got = score.score_embeddings(
        vje,
        z,
        loc,
        scale,
        which=(name,),
        posterior="samples",
        num_samples=num_samples,
        generator=torch.Generator().manual_seed(seed),
    )[name]
    gen = torch.Generator().manual_seed(seed)
    eps = torch.randn((num_samples, *loc.shape), generator=gen, dtype=torch.float64)
    return got, (loc + scale * eps).numpy()


def test_residual_with_posterior_samples_and_in_low_precision():
    vje = make_vje(2.0)
    z, loc, scale = random_posterior(n=4, d=3)
    got, s = _sampled_score(vje, z, loc, scale, "residual", num_samples=5, seed=3)
    expected = np.mean([_residual_reference(z.numpy(), s[k], scale.numpy()) for k in range(5)], axis=0)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10)
    for dtype, tol in ((torch.float32, 1e-5), (torch.bfloat16, 3e-2)):
        low = score.score_embeddings(
            vje.float(), z.to(dtype), loc.to(dtype), scale.to(dtype), which=("residual",)
        )
        ref = _residual_reference(*(t.to(dtype).double().numpy() for t in (z, loc, scale)))
        assert low["residual"].dtype == torch.float32 and torch.isfinite(low["residual"]).all()
        np.testing.assert_allclose(low["residual"].double().numpy(), ref, rtol=tol)


def test_joint_equals_algorithms_1_and_2_up_to_an_input_independent_constant():
    """Eq. 39 as the paper writes it (Algorithm 1 + 2, constants omitted) ranks inputs identically."""
    df, vje = 0.5, make_vje(0.5)
    z, loc, scale = random_posterior(n=8, d=5)
    got = score.score_embeddings(vje, z, loc, scale, which=("joint",))["joint"].numpy()
    zh = z / z.norm(dim=1, keepdim=True)
    sh = loc / loc.norm(dim=1, keepdim=True)
    q = ((zh - sh) ** 2 / scale**2).sum(1)
    d = z.shape[1]
    alg1 = 0.5 * (df + d) * torch.log1p(q / df) + 0.5 * (scale**2).log().sum(1)
    alg2 = 0.5 * (df + 1) * torch.log1p((z.norm(dim=1) - loc.norm(dim=1)) ** 2 / df)
    diff = got - (alg1 + alg2).numpy()
    np.testing.assert_allclose(diff, diff[0], rtol=0, atol=1e-9)


def test_posterior_samples_average_the_nll_over_the_same_draws():
    vje = make_vje(2.0)
    z, loc, scale = random_posterior(n=4, d=3)
    got, s = _sampled_score(vje, z, loc, scale, "joint", num_samples=7, seed=5)
    for i in range(len(z)):
        expected = np.mean(
            [-polar_logpdf(z[i].numpy(), s[k, i], scale[i].numpy(), 1.0, 2.0) for k in range(7)]
        )
        assert got[i].item() == pytest.approx(expected, rel=1e-6)


def test_score_tensor_and_loader_agree_and_restore_train_mode():
    vje = make_vje().float()
    x = torch.rand(10, 1, 8, 8)
    vje.train()
    a = score.score(vje, x, batch_size=3)
    b = score.score(vje, DataLoader(TensorDataset(x, torch.zeros(10)), batch_size=4))
    assert vje.training
    for key in score.SCORES:
        assert a[key].shape == (10,)
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(score.joint(vje, x), a["joint"])
    torch.testing.assert_close(score.entropy(vje, x), a["entropy"])


def test_tta_is_reproducible_and_leaves_the_global_generator_alone():
    vje = make_vje().float()
    x = torch.rand(6, 1, 8, 8)

    class Views(torch.utils.data.Dataset):
        def __len__(self):
            return len(x)

        def __getitem__(self, i):
            return (x[i] + 0.1 * torch.randn_like(x[i]), x[i] + 0.1 * torch.randn_like(x[i])), 0

    loader = DataLoader(Views(), batch_size=4)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = score.tta_score(vje, loader, 3, seed=1)
    assert torch.equal(torch.rand(1), before)
    b = score.tta_score(vje, loader, 3, seed=1)
    torch.testing.assert_close(a["joint"], b["joint"])
    assert a["joint"].shape == (6,)


def test_bad_inputs_are_clear_errors():
    vje = make_vje().float()
    with pytest.raises(TypeError, match="VJE"):
        score.score(torch.nn.Linear(2, 2), torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        score.score(vje, torch.rand(8, 8))
    with pytest.raises(ValueError, match="unknown score"):
        score.score(vje, torch.rand(2, 1, 8, 8), which=("likelihood",))
    with pytest.raises(ValueError, match="posterior"):
        score.score(vje, torch.rand(2, 1, 8, 8), posterior="median")


def test_score_split_reads_the_split_once_and_agrees_with_score():
    """score_split (one encoder pass, then scores of the features) gives score()'s numbers, the
    same posterior draws for the same seed, and the split's pixels and labels."""
    from pyro_vje.evaluation import flatten_pixels

    vje = make_vje(df=3.0).float()
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(300, 1, 8, 8, generator=g), torch.randint(0, 10, (300,), generator=g)
    loader = DataLoader(TensorDataset(x, y), batch_size=256)
    calls = []
    vje.encoder.register_forward_hook(lambda *_: calls.append(1))
    scores, feats = score.score_split(vje, loader, posterior_samples=3, seed=4, keep_pixels=True)
    assert len(calls) == len(loader)  # the encoder ran once per batch of the split
    expected = score.score(vje, loader)
    sampled = score.score(vje, loader, which=("joint",), posterior="samples", num_samples=3, seed=4)
    assert list(scores) == [*score.SCORES, "joint_samples3"]
    for key in score.SCORES:
        np.testing.assert_allclose(scores[key], expected[key].numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(scores["joint_samples3"], sampled["joint"].numpy(), rtol=1e-6, atol=1e-6)
    pixels, labels = flatten_pixels(loader)
    assert torch.equal(feats["pixels"], pixels) and torch.equal(feats["labels"], labels)
    with pytest.raises(ValueError, match="extract_features"):
        score.score_features(vje, {"z": feats["z"]})


def test_inputs_are_checked_against_the_runs_data(tmp_path):
    """Issue 10 item 11: wrong channels, dtype, size or NaN pixels say what the run expects."""
    from pyro_vje.methods.build import build_method
    from pyro_vje.training import TrainConfig

    torch.manual_seed(0)
    vje = build_method(TrainConfig(hidden=8).validate(), 1, 8).eval()  # the digits run: (N, 1, 8, 8)
    good = torch.rand(4, 1, 8, 8)
    assert score.score(vje, good, which="joint").keys() == {"joint"}  # a plain string is one score
    assert score.joint(vje, good).shape == (4,)
    cases = [
        (torch.rand(4, 3, 8, 8), r"3 channel\(s\), the run's digits images have 1"),
        ((good * 255).to(torch.uint8), r"torch.uint8; the run's digits images are float tensors normalized"),
        (good.double(), r"torch.float64 but the model's weights are torch.float32"),
        (torch.rand(4, 1, 32, 32), r"32x32 pixels, the run's digits images are 8x8"),
    ]
    for x, message in cases:
        with pytest.raises(ValueError, match=message):
            score.score(vje, x)
    nan = good.clone()
    nan[2, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match=r"NaN or inf pixels \(first in image 2\)"):
        score.score(vje, nan, batch_size=2)
    with pytest.raises(ValueError, match="3 channel"):
        score.score_views(vje, [((torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)), torch.zeros(2))])


# ------------------------------------------------ class-level scores (mixture_nll, aggregate_nll)
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
    vje = make_vje(df, radial_scale).float()
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


def test_aggregate_gaussian_nll_matches_scipy():
    """-log N(mu; m, C + diag sigma^2) with m, C the moments of the class's aggregate posterior,
    computed here with numpy (np.cov) and scored by scipy."""
    _, loc, scale, bank_loc, bank_scale = bank_and_queries(n=7, m=4, d=5)
    got = score.aggregate_gaussian_nll(loc, scale, bank_loc, bank_scale, chunk_size=3)
    mus, variances = bank_loc.numpy(), bank_scale.numpy() ** 2
    m = mus.mean(0)
    cov = np.cov(mus, rowvar=False, bias=True) + np.diag(variances.mean(0))
    for j in range(len(loc)):
        own = np.diag(scale[j].numpy() ** 2)
        ref = stats.multivariate_normal(mean=m, cov=cov + own).logpdf(loc[j].numpy())
        assert got[j].item() == pytest.approx(-ref, rel=1e-10)


def test_aggregate_gaussian_nll_is_the_overlap_with_the_moment_matched_aggregate():
    """Monte Carlo: the moments of samples of the aggregate posterior, and
    -log E_{s ~ q(s|z)} N(s; m, C)."""
    _, loc, scale, bank_loc, bank_scale = bank_and_queries(n=4, m=1, d=2)
    g = torch.Generator().manual_seed(1)
    which = torch.randint(0, 4, (400_000,), generator=g)
    draws = bank_loc[which] + bank_scale[which] * torch.randn(400_000, 2, generator=g, dtype=torch.float64)
    m, cov = draws.mean(0).numpy(), np.cov(draws.numpy(), rowvar=False)
    s = loc[0] + scale[0] * torch.randn(400_000, 2, generator=g, dtype=torch.float64)
    dens = np.exp(stats.multivariate_normal(m, cov).logpdf(s.numpy()))
    got = score.aggregate_gaussian_nll(loc, scale, bank_loc, bank_scale)
    assert got[0].item() == pytest.approx(-math.log(dens.mean()), abs=0.02)


def test_aggregate_gaussian_nll_of_one_image_is_aggregate_nll():
    """With N = 1 the aggregate posterior is one Gaussian, so both class scores agree."""
    _, loc, scale, bank_loc, bank_scale = bank_and_queries(n=1, m=3, d=4)
    torch.testing.assert_close(
        score.aggregate_gaussian_nll(loc, scale, bank_loc, bank_scale),
        score.aggregate_nll(loc, scale, bank_loc, bank_scale),
        rtol=1e-12,
        atol=1e-12,
    )


def test_aggregate_gaussian_nll_with_fewer_images_than_dimensions_and_low_precision():
    _, loc, scale, bank_loc, bank_scale = bank_and_queries(n=3, m=5, d=64)
    ref = score.aggregate_gaussian_nll(loc, scale, bank_loc, bank_scale)
    assert torch.isfinite(ref).all()
    for dtype in (torch.float32, torch.bfloat16):
        got = score.aggregate_gaussian_nll(loc.to(dtype), scale.to(dtype), bank_loc, bank_scale)
        assert got.dtype == torch.float32 and torch.isfinite(got).all()
        torch.testing.assert_close(got.double(), ref, rtol=0.05, atol=0.5)


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
    with pytest.raises(ValueError, match="loc and scale"):
        score.aggregate_gaussian_nll(loc, scale[:, :2], bank_loc, bank_scale)
    with pytest.raises(ValueError, match="bank_loc and bank_scale"):
        score.aggregate_gaussian_nll(loc, scale, bank_loc[:0], bank_scale[:0])
    with pytest.raises(TypeError, match="VJE"):
        score.mixture_nll(torch.nn.Linear(2, 2), z, bank_loc, bank_scale)
