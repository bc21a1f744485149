"""Throughput of VJE training: images per second and seconds per epoch, per-image vs batched views.

For each encoder (``--archs``) and augmentation backend (``--backends``) it measures

* **augmentation alone**: batches of two views per second from the loader, as images/s --
  ``per_image``: today's path, a DataLoader (``--num-workers``, DistributedSampler) over the
  cached images with ``TwoViews(moco_v2_transform)`` on PIL images; ``batched``:
  :class:`~pyro_vje.data.tensor_loader.TwoViewTensorLoader` with
  :class:`~pyro_vje.data.batched_views.BatchedMocoV2` on ``--device``;
* **the full training step**: loader + VJE step (Pyro ELBO, backward, SGD), images/s, the
  time to the first batch (DataLoader workers start each epoch unless ``--persistent-workers``)
  and the seconds per epoch this projects for ``--epoch-images`` images (50,000: CIFAR-10);
* **peak memory** of the configuration: CPU -- the process's peak resident set size
  (``getrusage``; the peak is reset before each configuration through ``/proc/self/clear_refs``
  where Linux allows it) and the DataLoader workers' peaks; CUDA -- ``max_memory_allocated``.

and per encoder, on one fixed batch, steps interleaved so machine noise hits all alike (medians):

* **Pyro ELBO vs the reference objective** (``pyro_vje.reference.vje_loss``, Algorithm 4):
  the ratio of step times, as benchmarks/step_time.py;
* **speed options**, each alone against the fp32 baseline: ``channels_last``, ``bf16``
  (autocast), ``fused`` (fused SGD), ``compile`` (``torch.compile`` of the encoder). On CPU
  ``compile`` is skipped unless ``--compile`` is given (inductor compiles for minutes on a small
  CPU); anything the device cannot run is listed under ``skipped`` with the reason.

Images: the CIFAR-10 image folder ``--data-dir`` (a balanced ``--subset``, decoded once) or,
without it, random uint8 images of ``--image-size``. Prints a Markdown row per configuration
and writes everything (with the provenance) to ``--json``.

    python benchmarks/throughput.py --data-dir ../shared/data/cifar10 --subset 8000 --json t.json
    python benchmarks/throughput.py --device cuda --batch 512 --archs resnet18 --compile --json gpu.json
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyro
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from pyro_vje.data import (
    DATASET_INFO,
    TwoViews,
    balanced_subset_indices,
    build_dataset,
    dataset_labels,
    train_transform,
)
from pyro_vje.data.batched_views import BatchedMocoV2
from pyro_vje.data.tensor_loader import TwoViewTensorLoader, in_memory_images
from pyro_vje.model import VJE, InferenceNetwork
from pyro_vje.networks import build_encoder
from pyro_vje.reference import vje_loss

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import provenance  # noqa: E402  (benchmarks/provenance.py)

VARIANTS = ("channels_last", "bf16", "fused", "compile")


class ArrayImages(Dataset):
    """``uint8`` images ``(N, H, W, C)`` served as PIL images through ``transform``, as
    :class:`~pyro_vje.data.datasets.CachedImageFolder` serves its cache."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: Callable):
        self.images, self.targets, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return self.transform(Image.fromarray(self.images[index])), int(self.targets[index])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _load_images(args: argparse.Namespace) -> tuple[Dataset, torch.Tensor, torch.Tensor]:
    """A per-image data set (TwoViews of the MoCo v2 recipe) and the same images as uint8 tensors."""
    info = DATASET_INFO["cifar10"]
    per_image = TwoViews(train_transform(info, args.image_size))
    if args.data_dir:
        plain = build_dataset("cifar10", "train", root=args.data_dir)
        indices = balanced_subset_indices(dataset_labels(plain), args.subset, seed=args.seed)
        ds = build_dataset("cifar10", "train", root=args.data_dir, cache=True, indices=indices)
        ds.transform = per_image
        images, labels = in_memory_images(ds)
        return ds, images, labels
    g = torch.Generator().manual_seed(args.seed)
    size = args.image_size
    images = torch.randint(0, 256, (args.subset, 3, size, size), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (args.subset,), generator=g)
    array = images.permute(0, 2, 3, 1).contiguous().numpy()
    return ArrayImages(array, labels.numpy(), per_image), images, labels


def _per_image_loader(ds: Dataset, args: argparse.Namespace, workers: int) -> DataLoader:
    """Today's training loader (pyro_vje/training/loaders.py): DistributedSampler, drop_last."""
    sampler = DistributedSampler(ds, num_replicas=1, rank=0, shuffle=True, seed=args.seed, drop_last=True)
    return DataLoader(
        ds,
        batch_size=args.batch,
        sampler=sampler,
        num_workers=workers,
        pin_memory=args.device.startswith("cuda"),
        drop_last=True,
        generator=torch.Generator(),
        prefetch_factor=4 if workers > 0 else None,
        persistent_workers=args.persistent_workers and workers > 0,
    )


class _Batches:
    """Batches of ``loader`` over as many epochs as asked for (``set_epoch`` between passes)."""

    def __init__(self, loader):
        self.loader, self.epoch, self.iterator = loader, 0, None

    def __next__(self):
        while True:
            if self.iterator is None:
                sampler = getattr(self.loader, "sampler", None)
                if hasattr(sampler, "set_epoch"):
                    sampler.set_epoch(self.epoch)
                self.iterator = iter(self.loader)
            try:
                return next(self.iterator)
            except StopIteration:
                self.iterator, self.epoch = None, self.epoch + 1


def _build_model(arch: str, device: torch.device) -> VJE:
    kwargs = {"cifar_stem": True} if arch.startswith("resnet") else {}
    encoder = build_encoder(arch, in_channels=3, **kwargs)
    hidden = 64 if arch == "small_cnn" else 128
    return VJE(encoder, InferenceNetwork(encoder.dim, hidden), df=3.0, beta=1.0).to(device)


def _autocast(device: torch.device, bf16: bool):
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _make_step(
    vje: VJE, device: torch.device, *, bf16=False, fused=False, channels_last=False, reference=False
):
    """One SGD step on ``(x1, x2)`` through the Pyro ELBO (or Algorithm 4); no host synchronization."""
    if channels_last:
        vje.to(memory_format=torch.channels_last)
    kwargs = {"fused": True} if fused else {}
    opt = torch.optim.SGD(vje.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4, **kwargs)

    def step(x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        if channels_last:
            x1 = x1.contiguous(memory_format=torch.channels_last)
            x2 = x2.contiguous(memory_format=torch.channels_last)
        with _autocast(device, bf16):
            if reference:
                z1, loc1, scale1 = vje.encode(x1)
                z2, loc2, scale2 = vje.encode(x2)
                loss = vje_loss(z1, z2, loc1, scale1**2, loc2, scale2**2, df=3.0, beta=1.0)
            else:
                loss = vje.loss(x1, x2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    return step


# ------------------------------------------------------------------------------------------ memory
def _reset_peak_memory(device: torch.device) -> str:
    """Reset the peak counter this configuration is measured with; returns how it is measured."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return "torch.cuda.max_memory_allocated"
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # Linux: reset the peak RSS (VmHWM) to the current RSS
        return "getrusage ru_maxrss after resetting VmHWM (/proc/self/clear_refs)"
    except OSError:
        return "getrusage ru_maxrss (process peak so far: could not be reset)"


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _current_memory_mb(device: torch.device) -> float:
    """What the peak starts from: allocated CUDA memory, or the process's resident set (``VmRSS``)."""
    if device.type == "cuda":
        return torch.cuda.memory_allocated(device) / 2**20
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return float(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _workers_peak_mb(iterator) -> float | None:
    """Sum of the DataLoader workers' peak RSS (``VmHWM``; pages they share are counted in each)."""
    workers = getattr(iterator, "_workers", None)
    if not workers:
        return None
    total = 0.0
    for worker in workers:
        try:
            for line in Path(f"/proc/{worker.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += float(line.split()[1]) / 1024
        except OSError:
            return None
    return total


# ------------------------------------------------------------------------------------- measuring
def _time_loader(loader, args: argparse.Namespace, device: torch.device, step=None) -> dict:
    """Time to the first batch, then ``warmup`` untimed and timed batches (each with ``step`` if given)."""
    _sync(device)
    start = time.perf_counter()
    batches = _Batches(loader)

    def next_views():
        (x1, x2), _ = next(batches)
        return x1.to(device, non_blocking=True), x2.to(device, non_blocking=True)

    x1, x2 = next_views()
    _sync(device)
    first = time.perf_counter() - start
    timed = args.steps if step is not None else args.aug_steps
    for i in range(args.warmup + timed):
        if i == args.warmup:
            _sync(device)
            start = time.perf_counter()
        if step is not None:
            step(x1, x2)
        x1, x2 = next_views()
    _sync(device)
    seconds = time.perf_counter() - start
    workers_mb = _workers_peak_mb(batches.iterator)
    batches.iterator = None  # shuts the workers down
    return {"first_batch_s": first, "seconds": seconds, "batches": timed, "workers_peak_mb": workers_mb}


def _measure_config(arch, backend, workers, ds, images, labels, args, device) -> dict:
    if backend == "per_image":
        make_loader = lambda: _per_image_loader(ds, args, workers)  # noqa: E731
    else:
        augment = BatchedMocoV2(args.image_size, DATASET_INFO["cifar10"].mean, DATASET_INFO["cifar10"].std)
        make_loader = lambda: TwoViewTensorLoader(  # noqa: E731
            images, labels, augment, args.batch, device=device, seed=args.seed
        )
    row: dict = {"arch": arch, "backend": backend, "workers": workers if backend == "per_image" else 0}
    aug = _time_loader(make_loader(), args, device)
    row["augment_images_per_s"] = aug["batches"] * args.batch / aug["seconds"]
    memory = _reset_peak_memory(device)
    row["memory_at_start_mb"] = _current_memory_mb(device)
    torch.manual_seed(args.seed)
    vje = _build_model(arch, device)
    step = _make_step(vje, device, **_default_precision(device))
    train = _time_loader(make_loader(), args, device, step=step)
    row["train_images_per_s"] = train["batches"] * args.batch / train["seconds"]
    row["step_ms"] = 1e3 * train["seconds"] / train["batches"]
    row["first_batch_s"] = train["first_batch_s"]
    row["epoch_s"] = args.epoch_images / row["train_images_per_s"] + train["first_batch_s"]
    row["subset_epoch_s"] = (len(labels) // args.batch) * row["step_ms"] / 1e3 + train["first_batch_s"]
    row["peak_memory_mb"] = _peak_memory_mb(device)
    row["workers_peak_mb"] = train["workers_peak_mb"]
    row["memory_measured_by"] = memory
    return row


def _default_precision(device: torch.device) -> dict:
    """The trainer's defaults: bf16 autocast and channels_last on CUDA, fp32 contiguous on CPU."""
    on_cuda = device.type == "cuda"
    return {"bf16": on_cuda, "channels_last": on_cuda}


def _interleaved(steps: dict[str, Callable], x1, x2, args, device) -> dict[str, float]:
    """Median milliseconds of each step, run in turn (A, B, C, A, B, C, ...)."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for i in range(args.warmup + args.objective_steps):
        for name, step in steps.items():
            _sync(device)
            start = time.perf_counter()
            step(x1, x2)
            _sync(device)
            if i >= args.warmup:
                times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def _fixed_batch(images: torch.Tensor, args, device) -> tuple[torch.Tensor, torch.Tensor]:
    augment = BatchedMocoV2(args.image_size, DATASET_INFO["cifar10"].mean, DATASET_INFO["cifar10"].std)
    generator = torch.Generator().manual_seed(args.seed)
    batch = images[: args.batch]
    return augment(batch, generator).to(device), augment(batch, generator).to(device)


def _measure_objective(arch, images, args, device) -> dict:
    x1, x2 = _fixed_batch(images, args, device)
    torch.manual_seed(args.seed)
    base = _build_model(arch, device)
    precision = _default_precision(device)
    steps = {
        "pyro": _make_step(base, device, **precision),
        "reference": _make_step(copy.deepcopy(base), device, reference=True, **precision),
    }
    ms = _interleaved(steps, x1, x2, args, device)
    return {
        "arch": arch,
        "pyro_step_ms": ms["pyro"],
        "reference_step_ms": ms["reference"],
        "ratio": ms["pyro"] / ms["reference"],
        **precision,
    }


def _variant_support(device: torch.device, args) -> tuple[list[str], dict[str, str]]:
    wanted = [v for v in args.variants if v in VARIANTS]
    skipped: dict[str, str] = {}
    if "compile" in wanted and device.type == "cpu" and not args.compile:
        skipped["compile"] = "CPU: inductor compiles for minutes on a small CPU; pass --compile to measure it"
    if "bf16" in wanted and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        skipped["bf16"] = f"{torch.cuda.get_device_name(device)} has no bf16 support"
    if "fused" in wanted:
        try:
            probe = torch.nn.Linear(2, 2).to(device)
            torch.optim.SGD(probe.parameters(), lr=0.1, fused=True)
        except (RuntimeError, ValueError) as e:
            skipped["fused"] = f"fused SGD unavailable on {device.type}: {e}"
    return [v for v in wanted if v not in skipped], skipped


def _measure_variants(arch, variants, images, args, device) -> dict:
    """The fp32 contiguous baseline and each option alone, Pyro ELBO steps interleaved."""
    x1, x2 = _fixed_batch(images, args, device)
    torch.manual_seed(args.seed)
    base = _build_model(arch, device)
    steps = {"baseline": _make_step(copy.deepcopy(base), device)}
    for v in variants:
        model = copy.deepcopy(base)
        if v == "compile":
            model.encoder = torch.compile(model.encoder)
        steps[v] = _make_step(
            model, device, bf16=v == "bf16", fused=v == "fused", channels_last=v == "channels_last"
        )
    ms = _interleaved(steps, x1, x2, args, device)
    return {
        "arch": arch,
        **{f"{k}_ms": v for k, v in ms.items()},
        **{f"{k}_speedup": ms["baseline"] / v for k, v in ms.items() if k != "baseline"},
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", help="CIFAR-10 image folder (default: random uint8 images)")
    parser.add_argument("--subset", type=int, default=8000, help="images decoded and trained on")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--archs", nargs="+", default=["small_cnn", "resnet18"])
    parser.add_argument(
        "--backends", nargs="+", default=["per_image", "batched"], choices=["per_image", "batched"]
    )
    parser.add_argument(
        "--num-workers", type=int, nargs="+", default=[0, 2], help="per_image DataLoader workers"
    )
    parser.add_argument("--persistent-workers", action="store_true")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per configuration")
    parser.add_argument("--aug-steps", type=int, default=10, help="timed loader batches (augmentation alone)")
    parser.add_argument(
        "--objective-steps", type=int, default=10, help="timed steps of each objective/variant"
    )
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--epoch-images", type=int, default=50_000, help="epoch size of the projection")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--compile", action="store_true", help="measure torch.compile on CPU too")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    if args.subset < args.batch:
        parser.error(f"--subset {args.subset} is smaller than one batch ({args.batch})")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here")
    pyro.enable_validation(False)  # as the trainer runs
    # PyroModules keep their parameters to themselves, as the trainer runs them
    with pyro.settings.context(module_local_params=True):
        return _run(args, device)


def _run(args: argparse.Namespace, device: torch.device) -> dict:
    ds, images, labels = _load_images(args)

    configs = []
    for arch in args.archs:
        for backend in args.backends:
            for workers in args.num_workers if backend == "per_image" else [0]:
                configs.append(_measure_config(arch, backend, workers, ds, images, labels, args, device))
                _print_config(configs[-1], args, device, header=len(configs) == 1)
    objective = [_measure_objective(arch, images, args, device) for arch in args.archs]
    variants, skipped = _variant_support(device, args)
    options = [_measure_variants(arch, variants, images, args, device) for arch in args.archs]
    _print_tables(objective, options, skipped)
    result = {
        "configs": configs,
        "objective": objective,
        "variants": options,
        "skipped": skipped,
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "images": "cifar10 image folder" if args.data_dir else "random uint8",
        "device": str(device),
        **provenance(device),
    }
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


def _print_config(row: dict, args, device, header: bool) -> None:
    if header:
        print(
            "| encoder | views | workers | device | batch | augment img/s | train img/s | step ms "
            f"| epoch s ({args.epoch_images:,} img) | peak MB (at start) | workers peak MB |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|")
    workers_mb = f"{row['workers_peak_mb']:.0f}" if row["workers_peak_mb"] is not None else "-"
    print(
        f"| {row['arch']} | {row['backend']} | {row['workers']} | {device.type} | {args.batch} "
        f"| {row['augment_images_per_s']:.0f} | {row['train_images_per_s']:.0f} | {row['step_ms']:.1f} "
        f"| {row['epoch_s']:.1f} | {row['peak_memory_mb']:.0f} ({row['memory_at_start_mb']:.0f}) "
        f"| {workers_mb} |",
        flush=True,
    )


def _print_tables(objective: list[dict], options: list[dict], skipped: dict[str, str]) -> None:
    print("\n| encoder | Pyro ELBO step ms | reference step ms | ratio |")
    print("|---|---|---|---|")
    for row in objective:
        pyro_ms, reference_ms = row["pyro_step_ms"], row["reference_step_ms"]
        print(f"| {row['arch']} | {pyro_ms:.1f} | {reference_ms:.1f} | {row['ratio']:.3f} |")
    for row in options:
        cells = ", ".join(f"{k[:-8]} {row[k]:.2f}x" for k in row if k.endswith("_speedup"))
        base = row["baseline_ms"]
        print(f"\n{row['arch']}: baseline {base:.1f} ms/step; speed-up of each option: {cells or 'none'}")
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")


if __name__ == "__main__":
    main()
