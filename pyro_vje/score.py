r"""Likelihood-based anomaly and out-of-distribution scores of a trained VJE model (paper Section 5.3).

Every score is one number per input, **higher = more anomalous**:

* ``joint`` — Eq. 39, :math:`S_{joint}(x) = \ell_{dir}(\hat z, \hat s; \sigma^2) + \ell_{rad}(\|z\| - \|s\|)`:
  the negative log-likelihood of the input's embedding ``z = f(x)`` under the model's own
  likelihood, ``-PolarStudentT(df, s, sigma, radial_scale).log_prob(z)``, with
  :math:`q(s \mid z) = N(\mu, \sigma^2)` from the inference network;
* ``directional`` and ``radial`` — its two terms (``PolarStudentT.log_prob_terms``);
* ``residual`` — :math:`Q_{dir}/D`, Eq. 22's squared standardized distance of the direction
  of z from the posterior's (``PolarStudentT.directional_residual``), per dimension: the
  data-fit part of ``directional`` without its :math:`\sum_d \log \sigma_d` normalizer. Under
  the ambient Student-t of Eq. 23 it is :math:`F(D, \nu)`-distributed whatever
  :math:`\sigma`, so it ranks inputs by the model's tail probability of their embedding
  (a predictive p-value) rather than by a density whose height also depends on how
  confident the posterior is (docs/scoring.md);
* ``variance`` — :math:`\sum_d \sigma_d^2`, and ``entropy`` — :math:`\tfrac12 \sum_d \log(2\pi e \sigma_d^2)`,
  the Gaussian entropy of q (the paper's alternatives).

The likelihood includes its normalizing constants; the constants that do not depend on
the input (df, D) shift every score equally and leave AUROC unchanged, while the
:math:`\tfrac12 \sum_d \log \sigma_d^2` term of Algorithm 1 is part of the score.

Two choices the paper leaves open, both available:

* ``posterior="mean"`` (default) scores z against ``s = mu``; ``posterior="samples"``
  averages the NLL over ``num_samples`` draws ``s ~ q`` (the Monte-Carlo expected NLL,
  the ELBO's data term);
* :func:`score_views` / :func:`tta_score` score *augmented view pairs* instead of the
  un-augmented input against itself: the symmetric cross-view NLL
  :math:`\tfrac12[-\log p(z_2 \mid s_1, \sigma_1) - \log p(z_1 \mid s_2, \sigma_2)]`, averaged
  over ``num_views`` pairs (test-time augmentation), exactly the training objective's terms.

:func:`score_features` scores already extracted features
(:func:`pyro_vje.evaluation.extract_features`), and :func:`score_split` computes every score
of a split (the six above, optionally posterior samples and TTA) from one pass over its
images: what the one-class and OOD protocols call. Metrics of the scores (AUROC, AUPR,
FPR@95) are in :mod:`pyro_vje.evaluation.metrics`.

    from pyro_vje import score
    from pyro_vje.evaluation import auroc
    from pyro_vje.runs import load_run
    config, vje = load_run("runs/my-run")
    s_in = score.joint(vje, test_images)              # a tensor (N, C, H, W) or a DataLoader
    s_out = score.joint(vje, ood_loader)
    print(auroc(s_in, s_out))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader

from .evaluation.features import extract_features
from .model import VJE
from .progress import progress_bar

__all__ = [
    "CLASS_SCORES",
    "SCORES",
    "aggregate_gaussian_nll",
    "aggregate_nll",
    "class_scores",
    "directional",
    "entropy",
    "joint",
    "mixture_nll",
    "radial",
    "residual",
    "score",
    "score_embeddings",
    "score_features",
    "score_split",
    "score_views",
    "tta_score",
    "variance",
]

SCORES = ("joint", "directional", "radial", "residual", "variance", "entropy")
_LOG_2PI_E = math.log(2 * math.pi * math.e)
_LOG_2PI = math.log(2 * math.pi)


def _check_model(model) -> VJE:
    if not isinstance(model, VJE):
        raise TypeError(
            f"scoring needs a trained pyro_vje.model.VJE (its likelihood and posterior), got "
            f"{type(model).__name__}; load one with pyro_vje.runs.load_run(run_dir)"
        )
    return model


def _check_scores(which: Iterable[str] | str) -> tuple[str, ...]:
    which = (which,) if isinstance(which, str) else tuple(which)  # "joint" means ("joint",)
    unknown = [s for s in which if s not in SCORES]
    if unknown or not which:
        raise ValueError(f"unknown score(s) {unknown or which}; choose from {', '.join(SCORES)}")
    return which


def _expected_channels(model: VJE) -> int | None:
    info = getattr(model, "data_info", None)  # set by training's build_method: the run's data
    if info is not None:
        return info.channels
    conv = next((m for m in model.modules() if isinstance(m, torch.nn.Conv2d)), None)
    return conv.in_channels if conv is not None else None


def _check_images(model: VJE, x: torch.Tensor, start: int) -> None:
    """``x`` (a batch from image ``start`` on) against what the model was trained on: a floating
    dtype equal to the weights', the run's channels and image size, finite pixels."""
    info = getattr(model, "data_info", None)
    what = f"the run's {info.name} images" if info is not None else "the model's inputs"
    param = next(model.parameters(), None)
    if not x.is_floating_point():
        how = f"normalized with mean {info.mean} and std {info.std}" if info is not None else "normalized"
        raise ValueError(
            f"inputs are {x.dtype}; {what} are float tensors {how} "
            "(pyro_vje.data.eval_transform does this from PIL images)"
        )
    if param is not None and x.dtype != param.dtype:
        raise ValueError(
            f"inputs are {x.dtype} but the model's weights are {param.dtype}: pass x.to({param.dtype})"
        )
    channels = _expected_channels(model)
    if channels is not None and x.shape[1] != channels:
        raise ValueError(
            f"inputs have {x.shape[1]} channel(s), {what} have {channels} "
            f"(expected (N, {channels}, H, W), got {tuple(x.shape)})"
        )
    if info is not None and tuple(x.shape[-2:]) != (info.image_size, info.image_size):
        size = info.image_size
        raise ValueError(
            f"inputs are {x.shape[-2]}x{x.shape[-1]} pixels, {what} are {size}x{size} "
            "(resize them, e.g. with pyro_vje.data.eval_transform)"
        )
    finite = torch.isfinite(x).flatten(1).all(1)
    if not finite.all():
        first = start + int((~finite).nonzero()[0])
        raise ValueError(f"inputs hold NaN or inf pixels (first in image {first}); scores would be NaN")


def _device(model: VJE, device: torch.device | str | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


@torch.no_grad()
def score_embeddings(
    model: VJE,
    z: torch.Tensor,
    loc: torch.Tensor,
    scale: torch.Tensor,
    *,
    which: Iterable[str] = SCORES,
    posterior: str = "mean",
    num_samples: int = 16,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Scores of embeddings ``z`` (N, D) under posteriors ``N(loc, scale^2)`` (see the module doc)."""
    model = _check_model(model)
    which = _check_scores(which)
    if posterior not in ("mean", "samples"):
        raise ValueError(f"posterior must be 'mean' or 'samples', got {posterior!r}")
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    dtype = torch.promote_types(torch.promote_types(z.dtype, loc.dtype), torch.float32)  # >= float32
    z, loc, scale = z.to(dtype), loc.to(dtype), scale.to(dtype)
    out: dict[str, torch.Tensor] = {}
    if {"joint", "directional", "radial", "residual"} & set(which):
        if posterior == "mean":
            s = loc
        else:
            eps = torch.randn((num_samples, *loc.shape), generator=generator, device=loc.device, dtype=dtype)
            s = loc + scale * eps  # (K, N, D)
        likelihood = model.likelihood(s, scale)
        if "residual" in which:
            q_dir = likelihood.directional_residual(z)  # Eq. 22
            out["residual"] = (q_dir / z.shape[-1]).reshape(-1, z.shape[0]).mean(0)
        if {"joint", "directional", "radial"} & set(which):
            log_dir, log_rad = likelihood.log_prob_terms(z)  # one pass over z
            if "joint" in which:
                out["joint"] = -(log_dir + log_rad).reshape(-1, z.shape[0]).mean(0)  # Eq. 39 (Eq. 31)
            if "directional" in which:
                out["directional"] = -log_dir.reshape(-1, z.shape[0]).mean(0)
            if "radial" in which:
                out["radial"] = -log_rad.reshape(-1, z.shape[0]).mean(0)
    variance = scale.square()
    if "variance" in which:
        out["variance"] = variance.sum(-1)
    if "entropy" in which:
        out["entropy"] = 0.5 * (_LOG_2PI_E + variance.log()).sum(-1)
    return {k: out[k] for k in which}


def _check_bank(name: str, *tensors: torch.Tensor) -> None:
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) != 1 or tensors[0].dim() != 2 or tensors[0].shape[0] == 0:
        raise ValueError(
            f"{name}: bank_loc and bank_scale must be non-empty (N, D) of one shape, got {shapes}"
        )


def _check_posteriors(
    name: str, loc: torch.Tensor, scale: torch.Tensor, bank_loc: torch.Tensor, bank_scale: torch.Tensor
) -> None:
    _check_bank(name, bank_loc, bank_scale)
    if loc.shape != scale.shape or loc.dim() != 2 or loc.shape[1] != bank_loc.shape[1]:
        raise ValueError(
            f"{name}: loc and scale must both be (M, {bank_loc.shape[1]}), got "
            f"{tuple(loc.shape)} and {tuple(scale.shape)}"
        )


def _in_chunks(score: Callable[..., torch.Tensor], *inputs: torch.Tensor, chunk_size: int) -> torch.Tensor:
    """``score`` of ``chunk_size`` rows of the inputs at a time, in float64 (the class scores'
    (chunk, N, D) intermediates stay small), concatenated in the inputs' floating type."""
    parts = [score(*chunk) for chunk in zip(*(x.double().split(chunk_size) for x in inputs))]
    return torch.cat(parts).to(torch.promote_types(inputs[0].dtype, torch.float32))


@torch.no_grad()
def mixture_nll(
    model: VJE,
    z: torch.Tensor,
    bank_loc: torch.Tensor,
    bank_scale: torch.Tensor,
    *,
    chunk_size: int = 64,
) -> torch.Tensor:
    r"""The ``mixture`` score: the model's NLL of ``z`` under a class's posteriors.

    .. math::

        S_{mix}(x) = -\log \frac1N \sum_{i=1}^N p_\psi(z \mid s = \mu_i, \sigma_i^2),

    with :math:`p_\psi` the likelihood of Eq. 31 (the terms of Eq. 39) and
    :math:`(\mu_i, \sigma_i)` the posteriors ``bank_loc``, ``bank_scale`` (``(N, D)``) of
    the normal class's training images. VJE trains :math:`p_\psi(z_j \mid s_i, \sigma_i)`
    to predict the embedding of another view of image i (Eq. 35); modelling a new normal
    image as a view of one of the N training images, drawn uniformly, gives this mixture
    as the model's density of normal embeddings (posterior means plugged in for
    :math:`s_i`, as Eq. 39 does). Eq. 39 is its special case N = 1 with the input's own
    posterior. Computed with ``logsumexp`` in float64, ``chunk_size`` inputs at a time.
    """
    model = _check_model(model)
    _check_bank("mixture_nll", bank_loc, bank_scale)
    if z.dim() != 2 or z.shape[1] != bank_loc.shape[1]:
        raise ValueError(f"mixture_nll: z must be (M, {bank_loc.shape[1]}), got {tuple(z.shape)}")
    loc, scale = bank_loc.double().unsqueeze(0), bank_scale.double().unsqueeze(0)  # (1, N, D)
    likelihood = model.likelihood(loc, scale)
    log_n = math.log(bank_loc.shape[0])

    def score(z_c: torch.Tensor) -> torch.Tensor:
        return log_n - torch.logsumexp(likelihood.log_prob(z_c.unsqueeze(1)), dim=1)  # (c, N) -> (c,)

    return _in_chunks(score, z, chunk_size=chunk_size)


@torch.no_grad()
def aggregate_nll(
    loc: torch.Tensor,
    scale: torch.Tensor,
    bank_loc: torch.Tensor,
    bank_scale: torch.Tensor,
    *,
    chunk_size: int = 64,
) -> torch.Tensor:
    r"""The ``aggregate`` score: the input's posterior against the class's aggregate posterior.

    .. math::

        S_{agg}(x) = -\log \int q(s \mid z)\, \bar q(s)\, ds, \qquad
        \bar q(s) = \frac1N \sum_{i=1}^N N(s; \mu_i, \mathrm{diag}\, \sigma_i^2),

    the aggregate posterior of the normal class's N training images (``bank_loc``,
    ``bank_scale``). The integral of a product of two Gaussians is a Gaussian density, so

    .. math::

        S_{agg}(x) = -\log \frac1N \sum_i \prod_d N(\mu_d; \mu_{id}, \sigma_d^2 + \sigma_{id}^2),

    i.e. the expected density of :math:`\bar q` under the input's posterior, in closed form
    (float64, ``logsumexp``, ``chunk_size`` inputs at a time).
    """
    _check_posteriors("aggregate_nll", loc, scale, bank_loc, bank_scale)
    mu_b, var_b = bank_loc.double().unsqueeze(0), bank_scale.double().square().unsqueeze(0)  # (1, N, D)
    log_n = math.log(bank_loc.shape[0])

    def score(mu: torch.Tensor, sd: torch.Tensor) -> torch.Tensor:
        var = var_b + sd.square().unsqueeze(1)  # (c, N, D)
        log_p = -0.5 * ((mu.unsqueeze(1) - mu_b).square() / var + var.log() + _LOG_2PI).sum(-1)
        return log_n - torch.logsumexp(log_p, dim=1)

    return _in_chunks(score, loc, scale, chunk_size=chunk_size)


@torch.no_grad()
def aggregate_gaussian_nll(
    loc: torch.Tensor,
    scale: torch.Tensor,
    bank_loc: torch.Tensor,
    bank_scale: torch.Tensor,
    *,
    chunk_size: int = 64,
) -> torch.Tensor:
    r"""The ``aggregate_gaussian`` score: the input's posterior against the Gaussian that
    moment-matches the class's aggregate posterior.

    The aggregate posterior :math:`\bar q(s) = \frac1N \sum_i N(s; \mu_i, \mathrm{diag}\,
    \sigma_i^2)` of the normal class's N training images has mean and covariance

    .. math::

        m = \frac1N \sum_i \mu_i, \qquad
        C = \frac1N \sum_i (\mu_i - m)(\mu_i - m)^\top + \mathrm{diag}\Big(\frac1N \sum_i
        \sigma_i^2\Big),

    and :math:`\hat q = N(m, C)` is the Gaussian with those moments: one density of the
    class over the latent space, with the class's correlations (where :func:`aggregate_nll`
    keeps N diagonal components). The overlap of the input's posterior with it is Gaussian
    in closed form,

    .. math::

        S_{aggG}(x) = -\log \int q(s \mid z)\, \hat q(s)\, ds
                    = -\log N(\mu; m, C + \mathrm{diag}\, \sigma^2).

    The posterior variances make C full rank even for N <= D (no extra ridge). Float64,
    a Cholesky factor per input, ``chunk_size`` inputs at a time.
    """
    _check_posteriors("aggregate_gaussian_nll", loc, scale, bank_loc, bank_scale)
    mu_b = bank_loc.double()
    mean = mu_b.mean(0)
    centered = mu_b - mean
    cov = centered.T @ centered / mu_b.shape[0] + torch.diag(bank_scale.double().square().mean(0))
    dim = mu_b.shape[1]

    def score(mu: torch.Tensor, sd: torch.Tensor) -> torch.Tensor:
        chol = torch.linalg.cholesky(cov + torch.diag_embed(sd.square()))  # (c, D, D)
        white = torch.linalg.solve_triangular(chol, (mu - mean).unsqueeze(-1), upper=False)
        maha = white.squeeze(-1).square().sum(-1)
        log_det = 2.0 * torch.diagonal(chol, dim1=-2, dim2=-1).log().sum(-1)
        return 0.5 * (maha + log_det + dim * _LOG_2PI)

    return _in_chunks(score, loc, scale, chunk_size=chunk_size)


#: scores of an input against a class's posteriors (:func:`class_scores`)
CLASS_SCORES = ("mixture", "aggregate", "aggregate_gaussian")


def class_scores(
    model: VJE,
    features: dict[str, torch.Tensor],
    bank: dict[str, torch.Tensor],
    *,
    which: Iterable[str] = CLASS_SCORES,
    chunk_size: int = 64,
) -> dict[str, torch.Tensor]:
    """:func:`mixture_nll` (``"mixture"``), :func:`aggregate_nll` (``"aggregate"``) and
    :func:`aggregate_gaussian_nll` (``"aggregate_gaussian"``) of the inputs' features
    ``{"z", "mu", "scale"}`` against ``bank``, the features of the normal class's training
    images (both as :func:`pyro_vje.evaluation.extract_features` returns them); CPU float32
    tensors ``(N,)``."""
    which = tuple(which)
    unknown = [w for w in which if w not in CLASS_SCORES]
    if unknown or not which:
        raise ValueError(f"unknown class score(s) {unknown or which}; choose from {', '.join(CLASS_SCORES)}")
    for name, feats in (("features", features), ("bank", bank)):
        missing = [k for k in ("z", "mu", "scale") if k not in feats]
        if missing:
            raise ValueError(f"{name} lack {missing}; pass the output of extract_features(vje, ...)")
    out = {}
    if "mixture" in which:
        out["mixture"] = mixture_nll(model, features["z"], bank["mu"], bank["scale"], chunk_size=chunk_size)
    if "aggregate" in which:
        out["aggregate"] = aggregate_nll(
            features["mu"], features["scale"], bank["mu"], bank["scale"], chunk_size=chunk_size
        )
    if "aggregate_gaussian" in which:
        out["aggregate_gaussian"] = aggregate_gaussian_nll(
            features["mu"], features["scale"], bank["mu"], bank["scale"], chunk_size=chunk_size
        )
    return {k: v.float().cpu() for k, v in out.items()}


def _batches(inputs, batch_size: int) -> tuple[Iterator[torch.Tensor], int]:
    """Batches of images from a tensor (N, C, H, W) or a DataLoader yielding x or (x, y)."""
    if isinstance(inputs, torch.Tensor):
        if inputs.dim() != 4 or inputs.shape[0] == 0:
            raise ValueError(
                f"inputs must be a batch of images (N, C, H, W), got shape {tuple(inputs.shape)}"
            )
        return iter(inputs.split(batch_size)), math.ceil(len(inputs) / batch_size)
    if isinstance(inputs, DataLoader):

        def gen():
            for batch in inputs:
                yield batch[0] if isinstance(batch, (list, tuple)) else batch

        return gen(), len(inputs)
    raise TypeError(f"inputs must be a tensor (N, C, H, W) or a DataLoader, got {type(inputs).__name__}")


@torch.no_grad()
def score(
    model: VJE,
    inputs: torch.Tensor | DataLoader,
    *,
    which: Iterable[str] = SCORES,
    posterior: str = "mean",
    num_samples: int = 16,
    batch_size: int = 256,
    device: torch.device | str | None = None,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, torch.Tensor]:
    """Every score in ``which`` for every input (un-augmented, scored against itself).

    ``inputs`` is a tensor ``(N, C, H, W)`` (batched by ``batch_size``) or a DataLoader
    yielding images or ``(images, labels)``; batches run on ``device`` (default: the
    model's) in eval mode. Returns CPU float32 tensors of shape ``(N,)``.
    """
    model = _check_model(model)
    which = _check_scores(which)
    device = _device(model, device)
    generator = torch.Generator(device=device).manual_seed(seed) if posterior == "samples" else None
    batches, total = _batches(inputs, batch_size)
    was_training = model.training
    model.eval()
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in which}
    seen = 0
    try:
        for x in progress_bar(
            batches, enabled=progress, total=total, desc="scoring", leave=False, unit="batch"
        ):
            if not isinstance(x, torch.Tensor) or x.dim() != 4:
                shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
                raise ValueError(f"inputs must be batches of images (N, C, H, W), got {shape}")
            _check_images(model, x, seen)
            seen += len(x)
            z, loc, scale = model.encode(x.to(device))
            scores = score_embeddings(
                model,
                z,
                loc,
                scale,
                which=which,
                posterior=posterior,
                num_samples=num_samples,
                generator=generator,
            )
            for key, value in scores.items():
                parts[key].append(value.float().cpu())
    finally:
        model.train(was_training)
    return {key: torch.cat(values) for key, values in parts.items()}


def _single(name: str):
    def fn(model: VJE, inputs, **kwargs) -> torch.Tensor:
        return score(model, inputs, which=(name,), **kwargs)[name]

    fn.__name__ = name
    fn.__doc__ = f"The ``{name}`` score of every input (see :func:`score` for the options)."
    return fn


joint = _single("joint")
directional = _single("directional")
radial = _single("radial")
residual = _single("residual")
variance = _single("variance")
entropy = _single("entropy")


@torch.no_grad()
def score_views(
    model: VJE,
    loader: DataLoader,
    *,
    which: Iterable[str] = SCORES,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> dict[str, torch.Tensor]:
    """Symmetric cross-view scores of a DataLoader yielding ``((x1, x2), label)`` view pairs
    (a data set built with ``transform=TwoViews(train_transform(info))``).

    Likelihood scores: ``1/2 [-log p(z2 | s1 = mu1, sigma1) - log p(z1 | s2 = mu2, sigma2)]``;
    ``variance``/``entropy``: the mean over the two views' posteriors.
    """
    model = _check_model(model)
    which = _check_scores(which)
    device = _device(model, device)
    was_training = model.training
    model.eval()
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in which}
    seen = 0
    try:
        for batch in progress_bar(loader, enabled=progress, desc="scoring views", leave=False, unit="batch"):
            views = batch[0] if isinstance(batch, (list, tuple)) and len(batch) == 2 else batch
            if not (isinstance(views, (list, tuple)) and len(views) == 2):
                raise ValueError("score_views needs a loader of ((x1, x2), label) view pairs (TwoViews)")
            for view in views:
                _check_images(model, view, seen)
            seen += len(views[0])
            (z1, loc1, scale1), (z2, loc2, scale2) = (model.encode(v.to(device)) for v in views)
            a = score_embeddings(model, z2, loc1, scale1, which=which)
            b = score_embeddings(model, z1, loc2, scale2, which=which)
            for key in which:
                parts[key].append((0.5 * (a[key] + b[key])).float().cpu())
    finally:
        model.train(was_training)
    return {key: torch.cat(values) for key, values in parts.items()}


def tta_score(
    model: VJE,
    loader: DataLoader,
    num_views: int = 8,
    *,
    which: Iterable[str] = SCORES,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> dict[str, torch.Tensor]:
    """Test-time augmentation: :func:`score_views` averaged over ``num_views`` passes of an
    un-shuffled view-pair loader (augmentations drawn from torch's global generator,
    seeded with ``seed`` and restored afterwards)."""
    if num_views < 1:
        raise ValueError(f"num_views must be >= 1, got {num_views}")
    state = torch.get_rng_state()
    torch.manual_seed(seed)
    try:
        total: dict[str, torch.Tensor] = {}
        for _ in range(num_views):
            scores = score_views(model, loader, which=which, device=device, progress=progress)
            total = {k: total.get(k, 0) + v for k, v in scores.items()}
    finally:
        torch.set_rng_state(state)
    return {k: v / num_views for k, v in total.items()}


@torch.no_grad()
def score_features(
    model: VJE,
    features: dict[str, torch.Tensor],
    *,
    which: Iterable[str] = SCORES,
    posterior: str = "mean",
    num_samples: int = 16,
    batch_size: int = 256,
    device: torch.device | str | None = None,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """:func:`score` of already extracted features ``{"z", "mu", "scale"}`` (``(N, D)`` each, as
    :func:`pyro_vje.evaluation.extract_features` returns them): the same numbers as scoring the
    images, without running the encoder again. Chunks of ``batch_size`` run on ``device``
    (default: the model's); ``posterior="samples"`` draws from a generator seeded with
    ``seed``, chunk by chunk, as :func:`score` does batch by batch."""
    model = _check_model(model)
    which = _check_scores(which)
    missing = [k for k in ("z", "mu", "scale") if k not in features]
    if missing:
        raise ValueError(f"features lack {missing}; pass the output of extract_features(vje, ...)")
    device = _device(model, device)
    generator = torch.Generator(device=device).manual_seed(seed) if posterior == "samples" else None
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in which}
    chunks = zip(*(features[k].split(batch_size) for k in ("z", "mu", "scale")))
    for z, loc, scale in chunks:
        scores = score_embeddings(
            model,
            z.to(device),
            loc.to(device),
            scale.to(device),
            which=which,
            posterior=posterior,
            num_samples=num_samples,
            generator=generator,
        )
        for key, value in scores.items():
            parts[key].append(value.float().cpu())
    return {key: torch.cat(values) for key, values in parts.items()}


def score_split(
    model: VJE,
    loader: DataLoader,
    *,
    device: torch.device | str | None = None,
    posterior_samples: int = 0,
    tta_loader: DataLoader | None = None,
    tta_views: int = 0,
    seed: int = 0,
    keep_pixels: bool = False,
    progress: bool = False,
) -> tuple[dict[str, np.ndarray], dict[str, torch.Tensor]]:
    """Every score of one split, from one pass of the encoder over its images.

    Returns ``(scores, features)``: ``scores`` holds the six :data:`SCORES` (posterior
    mean), ``joint_samples<K>`` (the joint score averaged over ``K = posterior_samples``
    posterior draws, seeded with ``seed``) when ``K > 0``, and ``joint_tta<V>``
    (:func:`tta_score` over ``V = tta_views`` passes of ``tta_loader``, a loader of view
    pairs of the same images) when both are given; ``features`` is
    :func:`~pyro_vje.evaluation.extract_features`'s ``{"z", "mu", "scale", "labels"}``
    of ``loader`` (plus the flattened images as ``"pixels"`` with ``keep_pixels``), for
    kNN scores and variance plots without reading the split again.
    """
    model = _check_model(model)
    device = _device(model, device)
    features = extract_features(
        model, loader, device, keep_pixels=keep_pixels, progress=progress, desc="scoring"
    )
    scores = {k: v.numpy() for k, v in score_features(model, features, device=device).items()}
    if posterior_samples > 0:
        sampled = score_features(
            model,
            features,
            which=("joint",),
            posterior="samples",
            num_samples=posterior_samples,
            device=device,
            seed=seed,
        )
        scores[f"joint_samples{posterior_samples}"] = sampled["joint"].numpy()
    if tta_views > 0 and tta_loader is not None:
        tta = tta_score(model, tta_loader, tta_views, which=("joint",), seed=seed, device=device)
        scores[f"joint_tta{tta_views}"] = tta["joint"].numpy()
    return scores, features
