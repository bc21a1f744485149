"""The Pyro model/guide (pyro_vje.model.VJE) against Algorithm 4."""

import math

import numpy as np
import pytest
import torch
from pyro import poutine
from scipy import stats

from pyro_vje.model import VJE, InferenceNetwork
from pyro_vje.reference import vje_loss, vje_terms


def _inputs(n=8, d=16, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    z1, z2, loc1, loc2 = (torch.randn(n, d, generator=g, dtype=dtype) for _ in range(4))
    scale1, scale2 = ((0.2 + torch.rand(n, d, generator=g, dtype=dtype)) for _ in range(2))
    return z1, z2, loc1, scale1, loc2, scale2


def _vje(**kw):
    return VJE(torch.nn.Identity(), torch.nn.Identity(), **kw)


def _loss_with_noise(vje, args):
    """The Pyro loss, and the reparameterization noise the guide used."""
    recorded = {}

    def guide(*a):
        with poutine.trace() as tr:
            vje.guide(*a)
        for name in ("s1", "s2"):
            recorded[name] = tr.trace.nodes[name]["value"]

    loss = vje.elbo.differentiable_loss(vje.model, guide, *args)
    z1, z2, loc1, scale1, loc2, scale2 = args
    noise = ((recorded["s1"] - loc1) / scale1, (recorded["s2"] - loc2) / scale2)
    return loss, noise, recorded


def _as_variances(args):
    """(z1, z2, loc1, scale1, loc2, scale2) -> Algorithm 4's (z1, z2, mu1, var1, mu2, var2)."""
    z1, z2, loc1, scale1, loc2, scale2 = args
    return z1, z2, loc1, scale1**2, loc2, scale2**2


def _log_normalizers(df, d):
    """log C of the directional (D-variate) and radial (univariate) Student-t, by scipy."""
    if math.isinf(df):
        return (stats.multivariate_normal(mean=[0.0] * d).logpdf([0.0] * d), stats.norm.logpdf(0.0))
    c_dir = stats.multivariate_t(loc=[0.0] * d, shape=1.0, df=df).logpdf([0.0] * d)
    return c_dir, stats.t.logpdf(0.0, df)


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 2.0])
@pytest.mark.parametrize("df", [0.5, 3.0, math.inf])
def test_meanfield_elbo_equals_algorithm_4(beta, df):
    args = _inputs()
    loss, noise, _ = _loss_with_noise(_vje(df=df, beta=beta), args)
    c_dir, c_rad = _log_normalizers(df, 16)
    ref = vje_loss(*_as_variances(args), df=df, beta=beta, noise=noise) - (c_dir + c_rad)
    assert float(loss) == pytest.approx(float(ref), rel=1e-10)


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 2.0])
def test_meanfield_elbo_equals_algorithm_4_in_float32(beta):
    args = _inputs(dtype=torch.float32)
    loss, noise, _ = _loss_with_noise(_vje(df=3.0, beta=beta), args)
    c_dir, c_rad = _log_normalizers(3.0, 16)
    args64 = [a.double() for a in args]
    ref = vje_loss(*_as_variances(args64), df=3.0, beta=beta, noise=tuple(e.double() for e in noise)) - (
        c_dir + c_rad
    )
    assert float(loss) == pytest.approx(float(ref), rel=1e-5)


@pytest.mark.parametrize("beta", [0.0, 1.0, 2.0])
def test_trace_elbo_uses_the_monte_carlo_kl(beta):
    """Trace_ELBO: the same NLL, and beta * (log q(s) - log p(s)) at the sampled s (scipy)."""
    args = _inputs()
    z1, z2, loc1, scale1, loc2, scale2 = args
    loss, noise, s = _loss_with_noise(_vje(df=3.0, beta=beta, elbo="trace"), args)
    terms = vje_terms(*_as_variances(args), df=3.0, noise=noise)
    mc_kl = 0.0
    for si, loc, scale in ((s["s1"], loc1, scale1), (s["s2"], loc2, scale2)):
        log_q = stats.norm.logpdf(si.numpy(), loc.numpy(), scale.numpy()).sum(-1)
        log_p = stats.norm.logpdf(si.numpy()).sum(-1)
        mc_kl += 0.5 * (log_q - log_p).mean()
    c_dir, c_rad = _log_normalizers(3.0, 16)
    ref = float(terms["dir"] + terms["rad"]) + beta * mc_kl - (c_dir + c_rad)
    assert float(loss) == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
def test_dloss_dbeta_is_the_kl_term(beta):
    args = _inputs()
    beta_t = torch.tensor(beta, dtype=torch.float64, requires_grad=True)
    loss, _, _ = _loss_with_noise(_vje(beta=beta_t), args)
    (grad,) = torch.autograd.grad(loss, beta_t)
    _, _, loc1, scale1, loc2, scale2 = args
    kl = 0.0  # Eq. 34 in float64, averaged over the batch and the two views
    for loc, scale in ((loc1, scale1), (loc2, scale2)):
        var = scale.numpy() ** 2
        kl += 0.5 * (0.5 * (var + loc.numpy() ** 2 - 1 - np.log(var)).sum(-1)).mean()
    assert float(grad) == pytest.approx(kl, rel=1e-10)


def test_beta_zero_is_the_limit_of_small_beta():
    """beta = 0 (poutine.mask) agrees with the beta -> 0 limit: loss(h) - loss(0) = h * KL."""
    args = _inputs()
    h = 1e-3
    torch.manual_seed(5)
    loss0, noise0, _ = _loss_with_noise(_vje(beta=0.0), args)
    torch.manual_seed(5)
    loss_h, noise_h, _ = _loss_with_noise(_vje(beta=h), args)
    torch.testing.assert_close(noise0[0], noise_h[0])
    kl = vje_terms(*_as_variances(args), df=3.0, noise=noise0)["kl"]
    assert float((loss_h - loss0) / h) == pytest.approx(float(kl), rel=1e-8)


def test_beta_zero_masks_the_latent_sites():
    args = _inputs()
    vje = _vje(beta=0.0)
    guide_tr = poutine.trace(vje.guide).get_trace(*args)
    model_tr = poutine.trace(poutine.replay(vje.model, trace=guide_tr)).get_trace(*args)
    for name in ("s1", "s2"):
        assert model_tr.nodes[name]["mask"] is False and guide_tr.nodes[name]["mask"] is False
    for name in ("z1", "z2"):
        assert model_tr.nodes[name]["is_observed"]


def test_likelihood_sends_no_gradient_into_the_targets():
    args = _inputs()
    for a in args:
        a.requires_grad_()
    vje = _vje()
    loss = vje.elbo.differentiable_loss(vje.model, vje.guide, *args)
    grads = torch.autograd.grad(loss, args, allow_unused=True)
    assert grads[0] is None and grads[1] is None  # z1, z2
    assert all(g is not None and g.abs().sum() > 0 for g in grads[2:])


def test_guide_and_likelihood_share_the_scale_tensor():
    args = _inputs()
    z1, z2, loc1, scale1, loc2, scale2 = args
    vje = _vje()
    guide_tr = poutine.trace(vje.guide).get_trace(*args)
    model_tr = poutine.trace(poutine.replay(vje.model, trace=guide_tr)).get_trace(*args)
    # s1 explains z2 with sigma_1; s2 explains z1 with sigma_2 — the very tensors of the guide
    assert model_tr.nodes["z2"]["fn"].scale.data_ptr() == scale1.data_ptr()
    assert model_tr.nodes["z1"]["fn"].scale.data_ptr() == scale2.data_ptr()
    assert guide_tr.nodes["s1"]["fn"].base_dist.scale.data_ptr() == scale1.data_ptr()


def test_gradients_match_algorithm_4_through_both_paths():
    """d loss / d (loc, scale) equals Algorithm 4's, and sigma gets gradient from both the
    posterior (KL, reparameterized sample) and the likelihood (Eq. 24's whitening)."""
    z1, z2, loc1, scale1, loc2, scale2 = _inputs()
    params = [loc1, scale1, loc2, scale2]
    for p in params:
        p.requires_grad_()
    loss, noise, _ = _loss_with_noise(_vje(), (z1, z2, loc1, scale1, loc2, scale2))
    grads = torch.autograd.grad(loss, params)
    noise = tuple(e.detach() for e in noise)
    ref = vje_loss(z1, z2, loc1, scale1**2, loc2, scale2**2, df=3.0, noise=noise)
    ref_grads = torch.autograd.grad(ref, params)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-9, atol=1e-12)
    # the likelihood path alone (posterior side detached) is a non-zero share of the gradient
    lik_only = vje_terms(
        z1, z2, loc1.detach(), scale1.detach() ** 2, loc2.detach(), scale2.detach() ** 2, df=3.0, noise=noise
    )
    assert not lik_only["dir"].requires_grad  # sanity: that detached everything
    s1 = (loc1 + scale1 * noise[0]).detach()
    from pyro_vje.reference import nll_dir

    like_path = torch.autograd.grad(0.5 * nll_dir(z2, s1, scale1**2, 3.0).mean(), scale1)[0]
    assert like_path.abs().sum() > 0
    assert not torch.allclose(like_path, grads[1])


def test_loss_runs_encoder_and_inference_net_once_per_view():
    torch.manual_seed(0)
    encoder = torch.nn.Sequential(torch.nn.Linear(10, 6))
    net = InferenceNetwork(6, hidden=8)
    vje = VJE(encoder, net, df=3.0, beta=1.0)
    calls = {"enc": 0, "inf": 0}
    encoder.register_forward_hook(lambda *a: calls.__setitem__("enc", calls["enc"] + 1))
    net.register_forward_hook(lambda *a: calls.__setitem__("inf", calls["inf"] + 1))
    x1, x2 = torch.randn(5, 10), torch.randn(5, 10)
    loss = vje.loss(x1, x2)
    assert calls == {"enc": 2, "inf": 2}
    loss.backward()
    for name, p in vje.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert encoder[0].weight.grad.abs().sum() > 0


def test_training_with_a_torch_optimizer_decreases_the_loss():
    torch.manual_seed(0)
    x = torch.randn(64, 10)
    vje = VJE(torch.nn.Linear(10, 8), InferenceNetwork(8, hidden=16), df=3.0)
    opt = torch.optim.Adam(vje.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        x1, x2 = x + 0.1 * torch.randn_like(x), x + 0.1 * torch.randn_like(x)
        loss = vje.loss(x1, x2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-10:]) / 10 < sum(losses[:10]) / 10 - 1.0


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"df": 0.0}, "df"),
        ({"df": -1.0}, "df"),
        ({"beta": -0.1}, "beta"),
        ({"beta": math.nan}, "beta"),
        ({"radial_scale": 0.0}, "radial_scale"),
        ({"elbo": "renyi"}, "unknown elbo"),
    ],
)
def test_bad_hyperparameters(kw, match):
    with pytest.raises(ValueError, match=match):
        _vje(**kw)


def test_bad_shapes():
    vje = _vje()
    z1, z2, loc1, scale1, loc2, scale2 = _inputs()
    with pytest.raises(ValueError, match="scale2"):
        vje.model(z1, z2, loc1, scale1, loc2, scale2[:, :3])
    with pytest.raises(ValueError, match="loc1"):
        vje.elbo.differentiable_loss(vje.model, vje.guide, z1, z2, loc1[:4], scale1, loc2, scale2)
    with pytest.raises(ValueError, match="same shape"):
        vje.loss(torch.randn(4, 16), torch.randn(5, 16))
    bad = VJE(torch.nn.Flatten(0), torch.nn.Identity())
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        bad.loss(torch.randn(4, 16), torch.randn(4, 16))


def test_elbo_choice():
    from pyro.infer import Trace_ELBO, TraceMeanField_ELBO

    assert isinstance(_vje().elbo, TraceMeanField_ELBO)
    assert isinstance(_vje(elbo="trace").elbo, Trace_ELBO)
    custom = Trace_ELBO(num_particles=2)
    assert _vje(elbo=custom).elbo is custom


def test_num_particles_with_an_elbo_instance_is_refused():
    from pyro.infer import Trace_ELBO

    with pytest.raises(ValueError, match="num_particles"):
        _vje(elbo=Trace_ELBO(), num_particles=4)


@pytest.mark.parametrize("elbo", ["meanfield", "trace"])
def test_several_particles_average_the_estimator(elbo):
    """num_particles=K: the loss is the mean over K independent posterior draws."""
    args = _inputs()
    torch.manual_seed(3)
    many = _vje(elbo=elbo, num_particles=64).elbo.differentiable_loss(_vje().model, _vje().guide, *args)
    c_dir, c_rad = _log_normalizers(3.0, 16)
    torch.manual_seed(4)
    draws = torch.stack([vje_loss(*_as_variances(args), df=3.0) for _ in range(2000)])
    expected = draws.mean() - (c_dir + c_rad)
    # both are Monte-Carlo estimates of the same expectation (Eq. 37)
    assert float(many) == pytest.approx(float(expected), abs=4 * float(draws.std()) / 8)


def test_vectorized_particles():
    from pyro.infer import TraceMeanField_ELBO

    args = _inputs()
    elbo = TraceMeanField_ELBO(num_particles=64, vectorize_particles=True, max_plate_nesting=1)
    vje = _vje(elbo=elbo)
    torch.manual_seed(6)
    loss = vje.elbo.differentiable_loss(vje.model, vje.guide, *args)
    assert loss.shape == ()
    c_dir, c_rad = _log_normalizers(3.0, 16)
    draws = torch.stack([vje_loss(*_as_variances(args), df=3.0) for _ in range(2000)])
    expected = draws.mean() - (c_dir + c_rad)
    assert float(loss) == pytest.approx(float(expected), abs=4 * float(draws.std()) / 8)


@pytest.mark.parametrize(
    "terms",
    [("dir", "rad", "kl"), ("dir", "kl"), ("dir", "rad"), ("rad", "kl"), ("rad",), ("dir",)],
)
@pytest.mark.parametrize("df", [3.0, math.inf])
def test_loss_term_ablations_equal_algorithm_4_without_the_dropped_terms(terms, df):
    """Table 6: the ELBO with terms dropped is Algorithm 4's sum of the kept terms (plus the kept
    factors' normalizers), at the same reparameterization noise."""
    args = _inputs()
    loss, noise, _ = _loss_with_noise(_vje(df=df, beta=1.0, terms=terms), args)
    ref_terms = vje_terms(*_as_variances(args), df=df, noise=noise)
    c_dir, c_rad = _log_normalizers(df, 16)
    constants = {"dir": -c_dir, "rad": -c_rad, "kl": 0.0}
    expected = sum(float(ref_terms[t]) + constants[t] for t in terms)
    assert float(loss) == pytest.approx(expected, rel=1e-10)


def test_terms_validation_and_string_form():
    assert _vje(terms="kl, dir").terms == ("dir", "kl")
    with pytest.raises(ValueError, match="no likelihood factor"):
        _vje(terms=("kl",))
    with pytest.raises(ValueError, match="unknown loss terms"):
        _vje(terms=("dir", "radial"))


def test_features_with_a_projection_head_include_the_backbone_output():
    """Section 5.2 variant: z is the head's output, h the backbone's (what SimSiam's z is)."""
    from pyro_vje.networks import build_encoder

    torch.manual_seed(0)
    encoder = build_encoder("small_cnn", in_channels=1, projector=True, projector_dim=16)
    vje = VJE(encoder, InferenceNetwork(16, hidden=8)).eval()
    x = torch.randn(5, 1, 8, 8)
    feats = vje.features(x)
    assert set(feats) == {"z", "mu", "scale", "h"}
    with torch.no_grad():
        h = encoder.backbone(x)
        z, loc, scale = vje.encode(x)
    assert feats["h"].shape == (5, encoder.backbone.dim) and feats["z"].shape == (5, 16)
    torch.testing.assert_close(feats["h"], h)
    torch.testing.assert_close(feats["z"], z)
    torch.testing.assert_close(feats["mu"], loc)
    torch.testing.assert_close(feats["scale"], scale)
    plain = VJE(build_encoder("small_cnn", in_channels=1), InferenceNetwork(128, hidden=8)).eval()
    assert set(plain.features(x)) == {"z", "mu", "scale"}
