"""Run ``pyro-vje train`` with deterministic posterior samples (used by test_distributed.py).

Started either by torchrun (2 processes, gloo) or as one plain process. The
guide's Normal draws are replaced by their means, and the views are not
augmented, so the objective is a deterministic function of the global batch:
what remains to compare is DDP's sharding and gradient averaging.
"""

import sys

import torch
from torch.distributions import Normal


def _mean_sample(self, sample_shape=torch.Size()):
    return self.loc.expand(self._extended_shape(sample_shape))


if __name__ == "__main__":
    Normal.rsample = _mean_sample
    from pyro_vje.cli import main

    sys.exit(main(["train", *sys.argv[1:]]))
