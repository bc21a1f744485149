"""Train VJE on CIFAR-10 with the paper's recipe (Section 5.2, Table 2) and print kNN and linear accuracy.

The defaults are configs/cifar10_resnet18.yaml: ResNet-18 with the CIFAR stem, 800 epochs,
batch 256, SGD lr 0.05 x batch/256 with a 10-epoch warm-up and cosine decay, MoCo v2 views
without blur, beta 1, nu 3, then a 100-epoch linear probe on frozen z and mu.

    python examples/train_cifar.py --download                     # torchvision's CIFAR-10 into ./data
    python examples/train_cifar.py --data-dir /path/to/cifar10     # ImageFolder tree or torchvision files
    python examples/train_cifar.py --data-dir ../shared/data/cifar10 --epochs 1 --subset 1000 \\
        --eval-subset 1000 --linear-probe fast --device cpu  # CPU smoke run

Every flag of ``pyro-vje train`` is accepted and overrides the config (see --help). Without
``--num-workers``, the config's 8 data-loading workers are capped at the CPU cores this process
may use. A warm-up at least as long as the run (``--epochs 1`` under the config's 10 warm-up
epochs) is warned about; lower it with ``--warmup-epochs``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pyro_vje.cli import main as cli_main

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "cifar10_resnet18.yaml"


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        print(f"It runs: pyro-vje train --config {CONFIG.relative_to(CONFIG.parents[1])} [FLAGS];")
        print("the defaults below are that file's.\n")
    elif "--download" in argv and not any(a.startswith("--data-dir") for a in argv):
        argv += ["--data-dir", "data"]
    elif not any(a.startswith("--data-dir") for a in argv) and "--resume" not in argv:
        print(
            "train_cifar.py: give --data-dir DIR (a CIFAR-10 ImageFolder tree or torchvision's files) "
            "or --download (torchvision's CIFAR-10 into ./data)",
            file=sys.stderr,
        )
        return 2
    if not any(a.startswith("--num-workers") for a in argv):
        from pyro_vje.config import load_config_file

        workers = load_config_file(CONFIG).get("num_workers", 0)
        argv += ["--num-workers", str(min(workers, available_cores()))]
    return cli_main(["train", "--config", str(CONFIG), *argv])


if __name__ == "__main__":
    sys.exit(main())
