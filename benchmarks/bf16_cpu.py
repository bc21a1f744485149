"""bf16 autocast against float32 for one VJE training step on this CPU, interleaved.

What ``amp: auto`` decides on a CPU (pyro_vje/training/precision.py) rests on two facts this
script prints for the machine it runs on: whether the CPU computes bf16 natively
(``cpu_bf16_native``: oneDNN's bf16 support and an AVX-512 BF16 / AMX flag), and how long a
step takes in each precision. The two steps alternate (fp32, bf16, fp32, ...) on the same
batch, model and optimizer state, so machine noise hits both; the medians and their ratio are
reported, with the CPU model and torch's capability string.

    python benchmarks/bf16_cpu.py                          # Fashion-MNIST's small CNN, 28x28
    python benchmarks/bf16_cpu.py --batch 256 --steps 5 --json bf16.json

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

import torch

from pyro_vje.methods.build import module_local_params
from pyro_vje.model import VJE, InferenceNetwork
from pyro_vje.networks import build_encoder
from pyro_vje.training.precision import cpu_bf16_native

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import provenance  # noqa: E402  (benchmarks/provenance.py)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--image-size", type=int, default=28)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument(
        "--width", type=int, default=16, help="small CNN's first block (configs/fashion_mnist_*)"
    )
    parser.add_argument("--steps", type=int, default=8, help="timed steps of each precision")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    with module_local_params():
        encoder = build_encoder("small_cnn", in_channels=args.channels, width=args.width)
        vje = VJE(encoder, InferenceNetwork(encoder.dim, 64), df=3.0, beta=1.0)
        opt = torch.optim.SGD(vje.parameters(), lr=1e-3, momentum=0.9)
        shape = (args.batch, args.channels, args.image_size, args.image_size)
        x1, x2 = torch.randn(shape), torch.randn(shape)
        precisions = {
            "fp32": contextlib.nullcontext,
            "bf16": lambda: torch.autocast(device_type="cpu", dtype=torch.bfloat16),
        }
        times: dict[str, list[float]] = {name: [] for name in precisions}
        for i in range(args.warmup + args.steps):
            for name, context in precisions.items():
                start = time.perf_counter()
                with context():
                    loss = vje.loss(x1, x2)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if i >= args.warmup:
                    times[name].append(time.perf_counter() - start)
    med = {name: statistics.median(values) for name, values in times.items()}
    result = {
        "fp32_step_s": med["fp32"],
        "bf16_step_s": med["bf16"],
        "bf16_over_fp32": med["bf16"] / med["fp32"],
        "cpu_bf16_native": cpu_bf16_native(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "batch": args.batch,
        "image_size": args.image_size,
        "width": args.width,
        "steps": args.steps,
        **provenance(torch.device("cpu")),
    }
    print(
        f"CPU capability {result['cpu_capability']}, native bf16: {result['cpu_bf16_native']}, "
        f"{result['threads']} threads, batch {args.batch} of {args.image_size}x{args.image_size}"
    )
    print(f"{'precision':<10}{'median s/step':>15}")
    print(f"{'fp32':<10}{med['fp32']:>15.3f}")
    print(f"{'bf16':<10}{med['bf16']:>15.3f}")
    print(f"bf16 / fp32 = {result['bf16_over_fp32']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
