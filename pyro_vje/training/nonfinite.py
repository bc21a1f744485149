"""Non-finite values in a training step: the error, and where the NaN/inf first appears.

Detection checks tensors, never error text: the loss and the gradient norm are
checked with ``torch.isfinite``; when Pyro's distribution validation rejects a
batch (a ``ValueError``, raised before the loss exists), :func:`first_non_finite`
looks for a non-finite parameter, input, or submodule output, and only then is
the step's failure a :class:`NonFiniteLossError`; any other ``ValueError`` is a
bug and propagates unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the run stopped and kept its last good checkpoint."""


def _tensors(value: Any) -> Iterable[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from _tensors(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)


def is_finite(value: Any) -> bool:
    """Whether every floating-point tensor in ``value`` (a tensor or a nest of them) is finite."""
    return all(bool(torch.isfinite(t).all()) for t in _tensors(value) if t.is_floating_point())


def first_non_finite(
    method: nn.Module, inputs: dict[str, torch.Tensor], forward: Callable[[], Any]
) -> str | None:
    """The first non-finite parameter, input or submodule output of ``forward()``, or ``None``.

    ``forward`` reruns the failed step (under ``torch.no_grad``); hooks on every
    submodule of ``method`` record the first output holding NaN or inf.
    """
    for name, p in method.named_parameters():
        if not is_finite(p):
            return f"parameter {name}"
    for name, x in inputs.items():
        if not is_finite(x):
            return f"input {name}"
    found: list[str] = []

    def hook(name: str) -> Callable[..., None]:
        def check(module: nn.Module, args: Any, output: Any) -> None:
            if not found and not is_finite(output):
                found.append(f"output of {name or type(method).__name__}")

        return check

    handles = [m.register_forward_hook(hook(name)) for name, m in method.named_modules()]
    try:
        with torch.no_grad():
            forward()
    except ValueError:
        pass  # the validation error again: the hooks have seen what led to it
    finally:
        for h in handles:
            h.remove()
    return found[0] if found else None
