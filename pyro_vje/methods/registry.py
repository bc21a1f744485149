"""The method registry: every trainable method's name -> its options, its builder, what it is.

One entry per method, VJE first; ``pyro-vje train --method``, ``pyro-vje compare``, the
command line's flags and ``--help``, the config checks and docs/methods.md all read
:data:`METHODS`, and no other list of methods is written anywhere. Adding a method is
one module in ``pyro_vje/methods/`` (its ``nn.Module``), its options dataclass in
:mod:`.options`, and one :class:`MethodEntry` here (or :func:`register_method` from
outside the package).

The registry imports no torch: a builder is named by ``"module:attribute"`` inside this
package and imported when a method is built, so the command line reads every method's
options without importing torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import options as o

if TYPE_CHECKING:
    from torch import nn

__all__ = ["METHODS", "MethodEntry", "method_entry", "register_method"]

#: ``builder(encoder, options) -> nn.Module``: the method on the run's encoder f (with ``.dim``)
Builder = Callable[["nn.Module", o.MethodOptions], "nn.Module"]


@dataclass(frozen=True)
class MethodEntry:
    """A trainable method: what ``pyro-vje train --method NAME`` builds and how it is used.

    ``builder`` is ``"module:attribute"`` relative to :mod:`pyro_vje.methods` (imported when
    the method is built) or a callable; it is called as ``builder(encoder, options)`` and
    returns an ``nn.Module`` with the trainer's interface: ``encoder``,
    ``training_loss(x1, x2) -> (loss, terms)`` and ``features(x) -> {"z": ...}``.
    """

    options: type[o.MethodOptions]
    builder: str | Builder
    title: str  # as tables and printed results name it
    summary: str  # one line, for docs and --help
    #: scores inputs with its own likelihood (``pyro-vje score``/``one-class`` posterior samples
    #: and TTA; the one-class preset's likelihood-only encoder recipe applies to it)
    likelihood: bool = False
    #: accepts the encoder's Section 5.2 projection head (the others bring their own heads)
    projector: bool = False
    #: among the methods ``pyro-vje compare`` runs without ``--methods``
    compared: bool = True

    def build(self, encoder: nn.Module, options: o.MethodOptions) -> nn.Module:
        builder = self.builder
        if isinstance(builder, str):
            module, _, name = builder.partition(":")
            builder = getattr(importlib.import_module(module, __package__), name)
        return builder(encoder, options)


METHODS: dict[str, MethodEntry] = {
    "vje": MethodEntry(
        o.VJEOptions,
        ".vje:build_vje",
        "VJE",
        "Variational Joint Embedding: Student-t likelihood of the other view, Eq. 37/38",
        likelihood=True,
        projector=True,
    ),
    "simsiam": MethodEntry(
        o.SimSiamOptions, ".simsiam:SimSiam", "SimSiam", "negative cosine with predictor and stop-gradient"
    ),
    "vicreg": MethodEntry(o.VICRegOptions, ".vicreg:VICReg", "VICReg", "variance / invariance / covariance"),
    "vsimsiam": MethodEntry(
        o.VSimSiamOptions, ".vsimsiam:VSimSiam", "VSimSiam", "Power Spherical likelihood + KL to uniform"
    ),
    "vcl": MethodEntry(
        o.VCLOptions, ".vcl:VCL", "VCL", "projected-normal posterior, InfoNCE, KL bound to uniform"
    ),
    "gje": MethodEntry(o.GJEOptions, ".gje:GJE", "GJE", "Gaussian (mixture) joint embeddings"),
    "supervised": MethodEntry(
        o.SupervisedOptions,
        ".supervised:Supervised",
        "supervised",
        "the same encoder trained with labels (a ceiling)",
        compared=False,
    ),
}


def method_entry(name: str) -> MethodEntry:
    """The entry of method ``name``; an error listing the registered methods otherwise."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(METHODS)}")
    return METHODS[name]


def register_method(name: str, entry: MethodEntry) -> MethodEntry:
    """Add a method from outside the package. Its options must not repeat a shared setting of
    :class:`~pyro_vje.config.TrainConfig` (they would never reach the options): a config of
    the method says so when it is validated."""
    if name in METHODS:
        raise ValueError(f"method {name!r} is already registered")
    METHODS[name] = entry
    return entry
