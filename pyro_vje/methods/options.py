"""Method options: the dataclass every method's own settings derive from, and each method's.

A method's settings are a dataclass of :func:`setting` fields (default, help text), named
in the method's entry of :data:`pyro_vje.methods.registry.METHODS`;
:class:`~pyro_vje.config.TrainConfig` accepts the chosen method's keys in config files and
the command line generates one flag per field. They live here, in one torch-free module,
so that the command line reads every method's settings (and ``--help``) without importing
torch; each method's module (``pyro_vje/methods/*.py``) builds the method from them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = [
    "DEFAULT_HIDDEN",
    "check_at_least_one",
    "check_choice",
    "check_finite_non_negative",
    "check_positive_finite",
    "GJE_ESTIMATORS",
    "KL_BOUNDS",
    "GJEOptions",
    "MethodOptions",
    "SimSiamOptions",
    "SiameseHeads",
    "SupervisedOptions",
    "VCLOptions",
    "VICRegOptions",
    "VJEOptions",
    "VSimSiamOptions",
    "setting",
]


def setting(default: Any, help: str, group: str = "", **kwargs: Any) -> Any:
    """A dataclass field with its help text and CLI section (``metadata``): the only copy of both."""
    return field(default=default, metadata={"help": help, "group": group}, **kwargs)


def check_choice(name: str, value: Any, allowed) -> None:
    """``ValueError`` naming ``name`` unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; choose from {', '.join(map(str, allowed))}")


def check_at_least_one(name: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def check_positive_finite(name: str, value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a positive finite number, got {value}")


def check_finite_non_negative(name: str, value: float) -> None:
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")


@dataclass
class MethodOptions:
    """Base of a method's own settings; a subclass is a dataclass of :func:`setting` fields."""

    group: ClassVar[str] = ""  # the CLI section of its flags; empty: "<method> options"

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad option."""

    def fill_defaults(self, arch: str) -> None:
        """Set the options left unset whose default depends on the encoder ``arch`` (recorded in
        ``config.json`` as chosen); called by :meth:`~pyro_vje.config.TrainConfig.validate`."""

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


# ---------------------------------------------------------------------------- VJE
#: the inference network's width when ``hidden`` is left unset, per encoder: the paper's 128 for
#: ResNet-18 and 512 for ResNet-50 (Section 5.1), and 512 for the small CNN (D = 128), where
#: 64 -> 512 lifted digits kNN of z from 0.931 to 0.978 at 1,000 steps and CIFAR-10's too
#: (docs/results.md, issue 8).
DEFAULT_HIDDEN: dict[str, int] = {"small_cnn": 512, "resnet18": 128, "resnet50": 512}
ELBOS = ("meanfield", "trace")


@dataclass
class VJEOptions(MethodOptions):
    """VJE's settings (Sections 3-4): the inference network and the variational objective."""

    group: ClassVar[str] = "model"

    hidden: int | None = setting(
        None,
        "inference-network bottleneck width (unset: 512 for small_cnn, the paper's 128 for resnet18 "
        "and 512 for resnet50)",
    )
    depth: int = setting(3, "inference-network layers")
    df: float = setting(3.0, "Student-t degrees of freedom nu (inf: the Gaussian limit)")
    beta: float = setting(1.0, "KL weight beta")
    radial_scale: float = setting(1.0, "scale sqrt(lambda) of the radial Student-t")
    elbo: str = setting("meanfield", "meanfield (analytic KL, the paper) or trace (Monte-Carlo KL)")
    num_particles: int = setting(1, "posterior samples per view")
    terms: str = setting(
        "dir,rad,kl", "loss terms kept (Table 6 ablation): a comma-separated subset of dir, rad, kl"
    )

    def validate(self) -> None:
        check_choice("elbo", self.elbo, ELBOS)
        for name in ("hidden", "depth", "num_particles"):
            if getattr(self, name) is not None:  # hidden unset: fill_defaults picks it
                check_at_least_one(name, getattr(self, name))
        check_positive_finite("radial_scale", self.radial_scale)
        if not self.df > 0:  # inf is the Gaussian limit
            raise ValueError(f"df must be > 0 (inf allowed), got {self.df}")
        check_finite_non_negative("beta", self.beta)
        from ..model import check_terms

        check_terms(self.terms)

    def fill_defaults(self, arch: str) -> None:
        if self.hidden is None:
            self.hidden = DEFAULT_HIDDEN[arch]


# ---------------------------------------------------------------- the other methods

#: VCL's bounds on the KL to the uniform distribution on the sphere (docs/methods.md).
KL_BOUNDS = ("scale_free", "standard")
#: GJE's estimators of the joint Gaussian: the prototype mixture (GMJE) or the naive batch one.
GJE_ESTIMATORS = ("prototype", "batch")


@dataclass
class SiameseHeads(MethodOptions):
    """The projector and predictor SimSiam and VSimSiam share (CIFAR recipe of Chen & He 2021)."""

    proj_dim: int = setting(2048, "SimSiam/VSimSiam: width of the projector's layers")
    proj_layers: int = setting(2, "SimSiam/VSimSiam: projector layers (CIFAR 2, ImageNet 3)")
    pred_hidden: int = setting(512, "SimSiam/VSimSiam: bottleneck of the predictor")

    def validate(self) -> None:
        self._positive_int("proj_dim", "proj_layers", "pred_hidden")


@dataclass
class SimSiamOptions(SiameseHeads):
    """SimSiam's heads (CIFAR recipe of Chen & He 2021)."""


@dataclass
class VICRegOptions(MethodOptions):
    """VICReg's expander and loss weights (Bardes et al. 2022)."""

    expander_dim: int = setting(2048, "VICReg: expander width (the VJE paper's CIFAR baseline: 4096)")
    expander_layers: int = setting(3, "VICReg: expander layers")
    sim_weight: float = setting(25.0, "VICReg: invariance weight lambda")
    var_weight: float = setting(25.0, "VICReg: variance weight mu")
    cov_weight: float = setting(1.0, "VICReg: covariance weight nu")
    gamma: float = setting(1.0, "VICReg: target standard deviation of the variance hinge")
    eps: float = setting(1e-4, "VICReg: epsilon inside the variance hinge's square root")

    def validate(self) -> None:
        self._positive_int("expander_dim", "expander_layers")
        self._positive("sim_weight", "var_weight", "cov_weight", allow_zero=True)
        self._positive("gamma", "eps")


@dataclass
class VSimSiamOptions(SiameseHeads):
    """VSimSiam: SimSiam's heads (:class:`SiameseHeads`), the KL weight, the floor."""

    kl_weight: float = setting(
        0.1, "VSimSiam: weight w < 1 of the KL to the uniform; VCL: weight of the KL bound"
    )
    concentration_floor: float = setting(
        0.5, "VSimSiam: kappa >= rho (D - 1) keeps the alignment gradient alive"
    )

    def validate(self) -> None:
        super().validate()
        self._positive("kl_weight", allow_zero=True)
        self._positive("concentration_floor", allow_zero=True)
        if self.kl_weight >= 1:
            raise ValueError(
                f"VSimSiamOptions.kl_weight must be < 1, got {self.kl_weight}: with weight >= 1 the KL to "
                "the uniform distribution outweighs the likelihood's reward for concentration and kappa -> 0"
            )


@dataclass
class VCLOptions(MethodOptions):
    """VSimCLR: SimCLR's projector split into mean and variance heads, the temperature and the KL weight."""

    proj_hidden: int = setting(2048, "VCL/GJE: hidden width of the projector")
    out_dim: int = setting(128, "VCL/GJE: output dimension d (embeddings on S^(d-1))")
    nce_temperature: float = setting(0.5, "VCL: NT-Xent temperature (SimCLR's CIFAR-10 value)")
    kl_weight: float = setting(
        1.0, "VSimSiam: weight w < 1 of the KL to the uniform; VCL: weight of the KL bound"
    )
    kl_bound: str = setting(
        "scale_free", "VCL: KL bound to the uniform: scale_free or standard (docs/methods.md)"
    )
    min_var: float = setting(1e-6, "VCL: floor on the posterior variance (networks.MIN_VAR, Appendix A)")

    def validate(self) -> None:
        self._positive_int("proj_hidden", "out_dim")
        self._positive("nce_temperature", "min_var")
        self._positive("kl_weight", allow_zero=True)
        if self.out_dim < 2:
            raise ValueError(f"VCLOptions.out_dim must be >= 2 (a sphere S^(d-1)), got {self.out_dim}")
        if self.kl_bound not in KL_BOUNDS:
            raise ValueError(f"VCLOptions.kl_bound: unknown {self.kl_bound!r}; choose from {KL_BOUNDS}")


@dataclass
class GJEOptions(MethodOptions):
    """GJE / GMJE: projector, the estimator and its settings."""

    estimator: str = setting("prototype", "GJE: prototype (GMJE, trained by default) or batch (naive GJE)")
    proj_hidden: int = setting(2048, "VCL/GJE: hidden width of the projector")
    out_dim: int = setting(64, "VCL/GJE: output dimension d (embeddings on S^(d-1))")
    num_prototypes: int = setting(32, "GJE: prototypes K of the joint mixture")
    min_std: float = setting(1e-2, "GJE: floor on the prototypes' standard deviations")
    balance_weight: float = setting(1.0, "GJE: weight of the equipartition KL(mean responsibilities || pi)")
    learn_weights: bool = setting(False, "GJE: learn the mixture weights pi (default: uniform)")
    jitter: float = setting(1e-4, "GJE batch estimator: S + jitter I")

    def validate(self) -> None:
        self._positive_int("proj_hidden", "out_dim", "num_prototypes")
        self._positive("min_std", "jitter")
        self._positive("balance_weight", allow_zero=True)
        if self.estimator not in GJE_ESTIMATORS:
            raise ValueError(f"GJEOptions.estimator: unknown {self.estimator!r}; choose {GJE_ESTIMATORS}")
        if self.min_std >= 1.0 / math.sqrt(self.out_dim):
            raise ValueError(
                f"GJEOptions.min_std must be below 1/sqrt(out_dim) = {1 / math.sqrt(self.out_dim):.4g} "
                f"(the coordinate scale of unit vectors), got {self.min_std}"
            )


@dataclass
class SupervisedOptions(MethodOptions):
    """The supervised reference: a linear classifier on the encoder, trained with the labels."""

    num_classes: int = setting(10, "supervised: classes of the linear classifier head (the data set's)")
    label_smoothing: float = setting(0.0, "supervised: label smoothing of the cross-entropy")

    def validate(self) -> None:
        self._positive_int("num_classes")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(
                f"SupervisedOptions.label_smoothing must be in [0, 1), got {self.label_smoothing}"
            )
