"""VJE as a trainable method: the run's encoder f, the inference network, the model/guide pair.

The probabilistic model itself lives in :mod:`pyro_vje.model` (:class:`~pyro_vje.model.VJE`:
the Student-t likelihood of Eq. 23/28, the diagonal Gaussian posterior, the symmetric
conditional ELBO of Eq. 37/38) and :mod:`pyro_vje.distributions`; this module is VJE's entry
among the methods of :data:`pyro_vje.methods.registry.METHODS`, as ``simsiam.py`` is SimSiam's.
"""

from __future__ import annotations

from torch import nn

from ..model import VJE, check_terms
from ..networks import InferenceNetwork
from .options import VJEOptions

__all__ = ["build_vje"]


def build_vje(encoder: nn.Module, options: VJEOptions) -> VJE:
    """VJE on ``encoder`` (with ``.dim``): the inference network q(w | z) of width
    ``options.hidden`` and the ELBO's settings (df nu, beta, the radial scale, the terms)."""
    if options.hidden is None:
        raise ValueError(
            "VJEOptions.hidden is unset: validate the config first (TrainConfig.validate picks the "
            "encoder's default, methods.options.DEFAULT_HIDDEN)"
        )
    inference = InferenceNetwork(encoder.dim, options.hidden, depth=options.depth)
    return VJE(
        encoder,
        inference,
        df=options.df,
        beta=options.beta,
        radial_scale=options.radial_scale,
        elbo=options.elbo,
        num_particles=options.num_particles,
        terms=check_terms(options.terms),
    )
