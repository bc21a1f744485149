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

from ._math import as_tensor, broadcast_shape, vector_norm


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


def broadcast_vector_params(
    dist: str, loc: torch.Tensor, scale, df
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Size]:
    """Broadcast ``(loc (..., D), scale (..., D) or scalar, df (...))``.

    Returns ``(df, loc, scale, batch_shape)`` with ``df`` of ``batch_shape``
    and ``loc``/``scale`` of ``batch_shape + (D,)``.
    """
    check_vector("loc", loc, dist)
    if not loc.is_floating_point():
        loc = loc.to(torch.get_default_dtype())
    dim = loc.shape[-1]
    scale = as_tensor(scale, loc)
    df = as_tensor(df, loc)
    scale_vec = scale if scale.dim() >= 1 else scale.reshape(1)
    if scale_vec.shape[-1] not in (1, dim):
        raise ValueError(
            f"{_where('scale', dist)} has event size {scale_vec.shape[-1]} but loc has D = {dim}: "
            f"scale must have shape (..., {dim}) (one standard deviation per feature) or be a scalar"
        )
    try:
        batch_shape = broadcast_shape(df.shape, loc.shape[:-1], scale_vec.shape[:-1])
    except RuntimeError as err:
        raise ValueError(
            f"{dist}: batch shapes do not broadcast: df {tuple(df.shape)}, "
            f"loc {tuple(loc.shape[:-1])} (+ event ({dim},)), "
            f"scale {tuple(scale_vec.shape[:-1])} (+ event)"
        ) from err
    event = torch.Size((dim,))
    return (
        df.expand(batch_shape),
        loc.expand(batch_shape + event),
        scale_vec.expand(batch_shape + event),
        batch_shape,
    )


def broadcast_scalar_params(
    dist: str, loc: torch.Tensor, scale, df
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Size]:
    """Broadcast ``(loc (..., D), scale (...), df (...))`` (a scalar scale per event)."""
    check_vector("loc", loc, dist)
    if not loc.is_floating_point():
        loc = loc.to(torch.get_default_dtype())
    dim = loc.shape[-1]
    scale = as_tensor(scale, loc)
    df = as_tensor(df, loc)
    try:
        batch_shape = broadcast_shape(df.shape, loc.shape[:-1], scale.shape)
    except RuntimeError as err:
        raise ValueError(
            f"{dist}: batch shapes do not broadcast: df {tuple(df.shape)}, "
            f"loc {tuple(loc.shape[:-1])} (+ event ({dim},)), radial scale {tuple(scale.shape)}"
        ) from err
    return (
        df.expand(batch_shape),
        loc.expand(batch_shape + torch.Size((dim,))),
        scale.expand(batch_shape),
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
                "loc/||loc|| (the centre of the directional factor) is undefined"
            )
        if scale is not None and not bool(torch.isfinite(scale).all()):
            raise ValueError(f"{name}: argument 'scale' contains infinite entries")
