"""One VJE training step through the Pyro ELBO vs the same step with Algorithm 4.

Both steps use the same encoder, inference network, optimizer and batch; they
are interleaved (Pyro, reference, Pyro, ...) so that machine noise hits both,
and the median over many steps is reported with their ratio. The difference is
what the Pyro formulation (tracing, distribution objects, validation, the KL
through ``TraceMeanField_ELBO``) costs on top of the arithmetic.

    python benchmarks/step_time.py                 # small CNN on 8x8 inputs, CPU
    python benchmarks/step_time.py --json out.json --no-validation
    python benchmarks/step_time.py --arch resnet18 --image-size 32 --batch 32   # the issue's target
    python benchmarks/step_time.py --arch resnet18 --image-size 32 --batch 256 --device cuda --amp

The issue's target is Pyro's overhead <= 3% of a ResNet-18 step. ``--module-local-params``
runs as the trainer does (``pyro.settings`` ``module_local_params=True``: PyroModules
keep their parameters out of the global param store).

Prints a table and, with ``--json``, writes the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path

import pyro
import torch

from pyro_vje.methods.build import module_local_params
from pyro_vje.model import VJE, InferenceNetwork
from pyro_vje.networks import build_encoder
from pyro_vje.reference import vje_loss

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import provenance  # noqa: E402  (benchmarks/provenance.py)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--image-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=60, help="timed steps of each kind")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-validation", action="store_true", help="pyro.enable_validation(False)")
    parser.add_argument("--arch", default="small_cnn", choices=("small_cnn", "resnet18", "resnet50"))
    parser.add_argument("--module-local-params", action="store_true", help="as the trainer runs")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA), as the trainer on GPU")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    pyro.enable_validation(not args.no_validation)
    torch.manual_seed(0)
    local = module_local_params() if args.module_local_params else None
    with local or contextlib.nullcontext():
        return _run(args, device)


def _run(args: argparse.Namespace, device: torch.device) -> dict:
    kwargs = {"cifar_stem": args.image_size <= 64} if args.arch.startswith("resnet") else {}
    encoder = build_encoder(args.arch, in_channels=3, **kwargs)
    hidden = 64 if args.arch == "small_cnn" else 128
    vje = VJE(encoder, InferenceNetwork(encoder.dim, hidden), df=3.0, beta=1.0).to(device)
    if device.type == "cuda":
        vje = vje.to(memory_format=torch.channels_last)
    amp = (
        torch.autocast(device_type=device.type, dtype=torch.bfloat16)
        if args.amp
        else contextlib.nullcontext()
    )
    opt = torch.optim.SGD(vje.parameters(), lr=1e-3, momentum=0.9)
    x1, x2 = (torch.randn(args.batch, 3, args.image_size, args.image_size, device=device) for _ in range(2))

    def pyro_step() -> None:
        with amp:
            loss = vje.loss(x1, x2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def reference_step() -> None:
        with amp:
            z1, loc1, scale1 = vje.encode(x1)
            z2, loc2, scale2 = vje.encode(x2)
            loss = vje_loss(z1, z2, loc1, scale1**2, loc2, scale2**2, df=3.0, beta=1.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    times: dict[str, list[float]] = {"pyro": [], "reference": []}
    for i in range(args.warmup + args.steps):
        for name, step in (("pyro", pyro_step), ("reference", reference_step)):
            _sync(device)
            start = time.perf_counter()
            step()
            _sync(device)
            if i >= args.warmup:
                times[name].append(time.perf_counter() - start)

    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "pyro_step_ms": 1e3 * med["pyro"],
        "reference_step_ms": 1e3 * med["reference"],
        "ratio": med["pyro"] / med["reference"],
        "overhead_ms": 1e3 * (med["pyro"] - med["reference"]),
        "batch": args.batch,
        "image_size": args.image_size,
        "encoder": args.arch,
        "steps": args.steps,
        "validation": not args.no_validation,
        "module_local_params": args.module_local_params,
        "amp": args.amp,
        **provenance(device),
    }
    print(f"{'step':<12}{'median ms':>12}")
    print(f"{'Pyro ELBO':<12}{result['pyro_step_ms']:>12.2f}")
    print(f"{'Algorithm 4':<12}{result['reference_step_ms']:>12.2f}")
    print(f"ratio {result['ratio']:.3f}  (overhead {result['overhead_ms']:.2f} ms per step)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
