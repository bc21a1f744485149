"""Compare two output trees of benchmarks/same_outputs.sh: ``python same_outputs.py BEFORE AFTER``.

Every array (npz, checkpoint tensors) with numpy.array_equal, every JSON value exactly, except
wall-clock fields, the runs' own paths and TensorBoard's file names (named by time and pid)."""

import json
import sys
from pathlib import Path

import numpy as np
import torch

A, B = Path(sys.argv[1]), Path(sys.argv[2])
TIMING = ("seconds", "second", "time", "elapsed", "per_sec", "images_per_second", "peak", "date", "started")
arrays = scalars = 0
bad = []


def skip(key):
    k = str(key).lower()
    return any(t in k for t in TIMING) or k in ("out", "run", "path", "checkpoint", "data_dir", "host", "pid")


def same(x, y, where):
    global arrays, scalars
    if isinstance(x, torch.Tensor) or isinstance(x, np.ndarray):
        arrays += 1
        xa = x.numpy() if isinstance(x, torch.Tensor) else x
        ya = y.numpy() if isinstance(y, torch.Tensor) else y
        if not np.array_equal(xa, ya, equal_nan=xa.dtype.kind == "f"):
            bad.append(where)
        return
    if isinstance(x, dict):
        if set(x) != set(y):
            bad.append(f"{where}: keys {sorted(set(x) ^ set(y))}")
        for k in x:
            if k in y and not skip(k):
                same(x[k], y[k], f"{where}/{k}")
        return
    if isinstance(x, (list, tuple)):
        if len(x) != len(y):
            bad.append(f"{where}: length")
            return
        for i, (u, v) in enumerate(zip(x, y)):
            same(u, v, f"{where}[{i}]")
        return
    scalars += 1
    if isinstance(x, str) and (str(A) in x or str(B) in x):
        return
    if x != y and not (isinstance(x, float) and x != x and y != y):
        bad.append(f"{where}: {x!r} vs {y!r}")


def named_by_time(p):  # TensorBoard names its event files by wall-clock time and pid
    return p.name.startswith("events.out.tfevents.")


files = sorted(p.relative_to(A) for p in A.rglob("*") if p.is_file() and not named_by_time(p))
compared = 0
for rel in files:
    pa, pb = A / rel, B / rel
    if not pb.exists():
        bad.append(f"{rel}: missing after")
        continue
    if rel.suffix == ".npz":
        xa, xb = np.load(pa, allow_pickle=False), np.load(pb, allow_pickle=False)
        keys_a, keys_b = (k for k in xa.files if k != "meta"), (k for k in xb.files if k != "meta")
        same({k: xa[k] for k in keys_a}, {k: xb[k] for k in keys_b}, str(rel))
    elif rel.suffix == ".pt":
        same(torch.load(pa, weights_only=True), torch.load(pb, weights_only=True), str(rel))
    elif rel.suffix == ".json":
        same(json.loads(pa.read_text()), json.loads(pb.read_text()), str(rel))
    elif rel.suffix == ".jsonl":
        ra = [json.loads(line) for line in pa.read_text().splitlines() if line.strip()]
        rb = [json.loads(line) for line in pb.read_text().splitlines() if line.strip()]
        same(ra, rb, str(rel))
    else:
        continue
    compared += 1
extra = sorted(
    str(p.relative_to(B))
    for p in B.rglob("*")
    if p.is_file() and not named_by_time(p) and not (A / p.relative_to(B)).exists()
)
print(f"files compared: {compared}; arrays: {arrays}; scalars: {scalars}; files only after: {extra}")
print("IDENTICAL" if not bad else "DIFFERENT:\n  " + "\n  ".join(bad[:40]))
