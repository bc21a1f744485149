"""The optimizer of a run (paper Section 5.2: SGD with momentum) and its parameter groups.

The parameter groups are built here only. A method whose recipe exempts
normalization layers and biases from weight decay (as solo-learn's SimSiam and
VICReg recipes do) says so with a class attribute
``exclude_norms_and_biases_from_weight_decay = True``; VJE does not (the paper
decays every weight), so its optimizer has one group, as it always had.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)


def wants_norm_and_bias_exclusion(method: nn.Module) -> bool:
    """Whether ``method`` declared that norms and biases get no weight decay."""
    return bool(getattr(method, "exclude_norms_and_biases_from_weight_decay", False))


def parameter_groups(
    method: nn.Module, weight_decay: float, exclude_norms_and_biases: bool = False
) -> list[dict[str, Any]]:
    """``method``'s trainable parameters as optimizer groups, in ``parameters()`` order.

    With ``exclude_norms_and_biases`` the weights and biases of normalization layers
    and every other bias (any parameter with one dimension) form a second group with
    no weight decay; otherwise one group decays everything.
    """
    params = [(name, p) for name, p in method.named_parameters() if p.requires_grad]
    if not exclude_norms_and_biases:
        return [{"params": [p for _, p in params], "weight_decay": weight_decay}]
    in_norm = {id(p) for m in method.modules() if isinstance(m, _NORMS) for p in m.parameters(recurse=False)}
    plain = [p for _, p in params if p.ndim <= 1 or id(p) in in_norm]
    plain_ids = {id(p) for p in plain}
    decayed = [p for _, p in params if id(p) not in plain_ids]
    groups = [{"params": decayed, "weight_decay": weight_decay}]
    if plain:
        groups.append({"params": plain, "weight_decay": 0.0})
    return groups


def build_optimizer(method: nn.Module, lr: float, momentum: float, weight_decay: float) -> torch.optim.SGD:
    """SGD with momentum over :func:`parameter_groups` (the method's own exclusion choice)."""
    groups = parameter_groups(method, weight_decay, wants_norm_and_bias_exclusion(method))
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
