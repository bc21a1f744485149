"""Shared argument handling for the VJE likelihood factors.

Each factor is a distribution over a target embedding ``z`` in ``R^D``
(``event_shape == (D,)``) whose parameters broadcast like torch's own
distributions. This module turns the user's arguments into broadcast tensors
and raises clear ``ValueError`` s for bad input, so the three distribution
classes only state their densities.
"""

from __future__ import annotations

import torch
from pyro.distributions import TorchDistribution
from pyro.distributions.util import broadcast_shape
from torch.distributions.utils import lazy_property

from ._math import as_tensor, compute_dtype, normalize, vector_norm


def _where(name: str, dist: str) -> str:
    return f"{dist}: argument '{name}'"


def check_vector(name: str, value: torch.Tensor, dist: str) -> None:
    """``value`` must be a floating tensor with at least one (event) dimension."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{_where(name, dist)} must be a torch.Tensor, got {type(value).__name__}")
    if value.dim() < 1:
        raise ValueError(
            f"{_where(name, dist)} must have an event dimension of size D (shape (..., D)), got a 0-d tensor"
        )
    if value.shape[-1] < 1:
        raise ValueError(f"{_where(name, dist)} has an empty event dimension (D = 0)")


def broadcast_params(
    dist: str,
    loc: torch.Tensor,
    scale,
    df,
    radial_scale=None,
    *,
    vector_scale: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Size]:
    """Broadcast the parameters of a VJE likelihood factor to one batch shape.

    ``loc`` has shape ``(..., D)``; ``df`` and ``radial_scale`` (if given) have a batch
    shape only; ``scale`` is ``(..., D)`` or a scalar when ``vector_scale`` (one standard
    deviation per feature, Eq. 22), else a batch shape only (the radial scale of Eq. 28).
    Shapes broadcast with :func:`pyro.distributions.util.broadcast_shape`.

    Returns ``(df, loc, scale, radial_scale, batch_shape)``: ``df`` and ``radial_scale``
    of ``batch_shape``, ``loc`` of ``batch_shape + (D,)``, ``scale`` of ``batch_shape``
    plus ``(D,)`` when ``vector_scale``; ``radial_scale`` is ``None`` when not given.
    """
    check_vector("loc", loc, dist)
    if not loc.is_floating_point():
        loc = loc.to(torch.get_default_dtype())
    dim = loc.shape[-1]
    event = torch.Size((dim,))
    scale = as_tensor(scale, loc)
    df = as_tensor(df, loc)
    if vector_scale:
        scale = scale if scale.dim() >= 1 else scale.reshape(1)
        if scale.shape[-1] not in (1, dim):
            raise ValueError(
                f"{_where('scale', dist)} has event size {scale.shape[-1]} but loc has D = {dim}: "
                f"scale must have shape (..., {dim}) (one standard deviation per feature) or be a scalar"
            )
    scale_batch = scale.shape[:-1] if vector_scale else scale.shape
    shapes = [df.shape, loc.shape[:-1], scale_batch]
    if radial_scale is not None:
        radial_scale = as_tensor(radial_scale, loc)
        try:  # radial_scale has no event dimension: name it when it is the culprit
            broadcast_shape(df.shape, loc.shape[:-1], radial_scale.shape)
        except ValueError as err:
            raise ValueError(
                f"{dist}: radial_scale of shape {tuple(radial_scale.shape)} does not broadcast "
                f"against df {tuple(df.shape)} and loc's batch shape {tuple(loc.shape[:-1])}"
            ) from err
        shapes.append(radial_scale.shape)
    try:
        batch_shape = torch.Size(broadcast_shape(*shapes))
    except ValueError as err:
        raise ValueError(
            f"{dist}: batch shapes do not broadcast: df {tuple(df.shape)}, "
            f"loc {tuple(loc.shape[:-1])} (+ event ({dim},)), "
            f"scale {tuple(scale_batch)}" + (" (+ event)" if vector_scale else "")
        ) from err
    return (
        df.expand(batch_shape),
        loc.expand(batch_shape + event),
        scale.expand(batch_shape + event if vector_scale else batch_shape),
        None if radial_scale is None else radial_scale.expand(batch_shape),
        batch_shape,
    )


class EmbeddingDistribution(TorchDistribution):
    """Common behaviour of the VJE likelihood factors (not a distribution itself).

    * ``log_prob`` always checks that the value's last dimension is ``D``
      (cheap, and a mismatch would otherwise broadcast silently);
    * under validation, values must be finite and, for factors that read the
      direction ``z / ||z||``, non-zero.
    """

    #: Whether ``log_prob`` reads the direction of the value (zero vectors invalid).
    _reads_direction = True

    def expand(self, batch_shape, _instance=None):
        """Expand every parameter of ``arg_constraints`` to ``batch_shape`` (plus its
        event dimensions, read from the constraint's ``event_dim``)."""
        new = self._get_checked_instance(type(self), _instance)
        batch_shape = torch.Size(batch_shape)
        for name, constraint in self.arg_constraints.items():
            event = self.event_shape if constraint.event_dim else torch.Size()
            setattr(new, name, getattr(self, name).expand(batch_shape + event))
        super(EmbeddingDistribution, new).__init__(batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @lazy_property
    def _dtype(self) -> torch.dtype:
        """The dtype the parameters are computed in (see :func:`compute_dtype`; df aside)."""
        return compute_dtype(*(getattr(self, name) for name in self.arg_constraints if name != "df"))

    @lazy_property
    def _loc_norm(self) -> torch.Tensor:
        """``||loc||`` in :attr:`_dtype`, computed once (read by log_prob and rsample)."""
        return vector_norm(self.loc.to(self._dtype))

    @lazy_property
    def _loc_direction(self) -> torch.Tensor:
        """``loc / max(||loc||, 1e-6)`` in :attr:`_dtype`, computed once (Appendix A)."""
        return normalize(self.loc.to(self._dtype), self._loc_norm)

    def _loc_polar(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """``(||loc||, loc / ||loc||)`` in ``dtype``: the cached values when ``dtype`` is the
        parameters' own (a value never widens it in practice), computed afresh otherwise."""
        if dtype == self._dtype:
            return self._loc_norm, self._loc_direction
        loc = self.loc.to(dtype)
        norm = vector_norm(loc)
        return norm, normalize(loc, norm)

    def _check_value(self, value: torch.Tensor) -> None:
        """The checks ``log_prob`` runs before reading ``value``."""
        self._check_event_size(value)
        if self._validate_args:
            self._validate_sample(value)

    def _check_event_size(self, value: torch.Tensor) -> None:
        if not isinstance(value, torch.Tensor):
            raise TypeError(
                f"{type(self).__name__}.log_prob expects a torch.Tensor, got {type(value).__name__}"
            )
        dim = self.event_shape[0]
        if value.dim() < 1 or value.shape[-1] != dim:
            raise ValueError(
                f"{type(self).__name__}.log_prob: value has shape {tuple(value.shape)}, "
                f"expected (..., {dim}) (event_shape {tuple(self.event_shape)})"
            )

    def _validate_sample(self, value: torch.Tensor) -> None:
        super()._validate_sample(value)
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"{type(self).__name__}.log_prob: value contains NaN or infinite entries")
        if self._reads_direction and bool((vector_norm(value) == 0).any()):
            raise ValueError(
                f"{type(self).__name__}.log_prob: value contains zero vectors, "
                "whose direction z/||z|| is undefined"
            )

    def _validate_loc_and_scale(self, loc: torch.Tensor, scale: torch.Tensor | None) -> None:
        """Finite loc (non-zero when its direction is used) and finite scale."""
        name = type(self).__name__
        if not bool(torch.isfinite(loc).all()):
            raise ValueError(f"{name}: argument 'loc' contains NaN or infinite entries")
        if self._reads_direction and bool((vector_norm(loc) == 0).any()):
            raise ValueError(
                f"{name}: argument 'loc' contains zero vectors, whose direction "
                "loc/||loc|| (the centre of the directional factor) is undefined; in SVI with an "
                "autoguide (whose default init puts a Normal(0, .) latent at 0), initialize away from "
                "zero: AutoNormal(model, init_loc_fn=init_to_sample) (docs/distributions.md)"
            )
        if scale is not None and not bool(torch.isfinite(scale).all()):
            raise ValueError(f"{name}: argument 'scale' contains infinite entries")
