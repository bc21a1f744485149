"""CPU threads: a command's wall time idle and beside one competing process, per thread policy.

Runs ``COMMAND`` (default: the README's digits job shortened to 3 epochs) ``--repeats`` times
under each policy (:data:`POLICIES`: the checkout's own, or an explicit wait policy, or one
thread), first on an idle machine, then beside a busy process: a pure-Python loop (one core
busy, no OpenMP), and another torch training run under the same policy (two OpenMP pools on
the same cores, the case that hurts). Prints the median wall time of each cell and its ratio
to the same policy's idle time, and writes JSON (docs/results.md, "CPU threads").

The commands run with ``PYTHONPATH`` set to ``--code`` (default: this checkout), so an older
checkout's behaviour can be measured the same way. Start it on an otherwise idle machine::

    python benchmarks/threads.py --json threads.json
    python benchmarks/threads.py --command "python -m pyro_vje train --dataset cifar10 \\
        --data-dir ../shared/data/cifar10 --cache --subset 2000 --eval-subset 500 --epochs 1 \\
        --no-baselines --no-progress --out {out}" --json threads_cifar.json
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.provenance import provenance  # noqa: E402

DIGITS = "python -m pyro_vje train --epochs 3 --no-baselines --eval-every 3 --no-progress --out {out}"
HOG_TORCH = "python -m pyro_vje train --epochs 100000 --no-baselines --no-progress --out {out}"
HOG_PYTHON = "python -c 'while True: pass'"
#: environment variables per policy; "as shipped" sets none (the checkout's own policy: before
#: issue 26 OpenMP's spinning default, since then passive), "spinning" asks for OpenMP's active wait.
POLICIES = {
    "as shipped": {},
    "spinning": {"OMP_WAIT_POLICY": "ACTIVE"},
    "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
    "one thread": {"OMP_NUM_THREADS": "1"},
}


def _env(code: Path, policy: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    return {**env, "PYTHONPATH": str(code), **policy}


def timed(command: str, env: dict[str, str], scratch: Path) -> float:
    out = scratch / "run"
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run(shlex.split(command.format(out=out)), env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def start_hog(kind: str, env: dict[str, str], scratch: Path) -> subprocess.Popen | None:
    if kind == "idle":
        return None
    command = HOG_PYTHON if kind == "python loop" else HOG_TORCH.format(out=scratch / "hog")
    hog = subprocess.Popen(
        shlex.split(command),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    time.sleep(8)  # past its start-up: measure beside a process that computes
    return hog


def stop(hog: subprocess.Popen | None) -> None:
    if hog is not None:
        os.killpg(hog.pid, signal.SIGKILL)
        hog.wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--command", default=DIGITS, help="the job to time; {out} is its run folder")
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout whose pyro_vje runs")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--policies", default="as shipped,one thread", help="comma-separated names of POLICIES"
    )
    parser.add_argument("--loads", default="idle,python loop,torch run")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict[str, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        for load in args.loads.split(","):
            for name in args.policies.split(","):
                env = _env(args.code, POLICIES[name])
                hog = start_hog(load, env, scratch)
                try:
                    times = [timed(args.command, env, scratch) for _ in range(args.repeats)]
                finally:
                    stop(hog)
                results.setdefault(load, {})[name] = {"median_s": statistics.median(times), "runs_s": times}
                print(
                    f"{load:12s} {name:26s} median {statistics.median(times):7.2f} s  runs {times}",
                    flush=True,
                )
    print("\nratio to the same policy's idle time:")
    for load, row in results.items():
        for name, cell in row.items():
            idle = results.get("idle", {}).get(name)
            if idle:
                cell["ratio_to_idle"] = cell["median_s"] / idle["median_s"]
                print(f"  {load:12s} {name:26s} {cell['ratio_to_idle']:.2f}x")
    if args.json:
        report = {"command": args.command, "code": str(args.code), "results": results, **provenance()}
        args.json.write_text(json.dumps(report, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
