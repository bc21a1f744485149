"""Method options: the dataclass every method's own settings derive from, and their registry.

A method's settings are a dataclass of :func:`setting` fields (default, help text)
decorated with :func:`register_method_options`; :class:`~pyro_vje.training.config.TrainConfig`
reads the registry :data:`METHOD_OPTIONS` to accept the chosen method's keys in config
files and the command line generates one flag per field. The registry lives here, below
``training/``, so that each method module (``pyro_vje/methods/*.py``) can own and
register its options without importing the trainer; ``training/config.py`` re-exports
these names and registers VJE's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = ["METHOD_OPTIONS", "MethodOptions", "register_method_options", "setting"]


def setting(default: Any, help: str, group: str = "", **kwargs: Any) -> Any:
    """A dataclass field with its help text and CLI section (``metadata``): the only copy of both."""
    return field(default=default, metadata={"help": help, "group": group}, **kwargs)


@dataclass
class MethodOptions:
    """Base of a method's own settings; a subclass is a dataclass of :func:`setting` fields."""

    group: ClassVar[str] = ""  # the CLI section of its flags; empty: "<method> options"

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad option."""

    def _positive_int(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")

    def _positive(self, *names: str, allow_zero: bool = False) -> None:
        for name in names:
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            ok = ok and (value >= 0 if allow_zero else value > 0)
            if not ok:
                raise ValueError(
                    f"{name} must be a finite number {'>= 0' if allow_zero else '> 0'}, got {value!r}"
                )


METHOD_OPTIONS: dict[str, type[MethodOptions]] = {}


def register_method_options(name: str) -> Callable[[type[MethodOptions]], type[MethodOptions]]:
    """Class decorator: ``name``'s settings are the fields of the decorated dataclass.

    A method registers its own options next to its builder in
    :data:`~pyro_vje.training.methods.METHOD_BUILDERS`; its keys become valid in config
    files only when ``method`` names it. A key must not repeat a shared setting of
    ``TrainConfig`` (it would never reach the options).
    """

    def register(cls: type[MethodOptions]) -> type[MethodOptions]:
        if name in METHOD_OPTIONS:
            raise ValueError(f"method {name!r} already registered its options")
        METHOD_OPTIONS[name] = cls
        return cls

    return register
