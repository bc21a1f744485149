"""Score the finished classes of a ``pyro-vje one-class`` run again with today's scores.

Loads each ``class-<c>/last.pt``, rebuilds the class's loaders from its config, and runs the
protocol's own :func:`pyro_vje.protocols.one_class.score_class` (BatchNorm re-estimated on the
class's clean training images unless ``--bn-stats train``), so a score added after the run
(e.g. ``aggregate_gaussian``) is measured on the same models without training them again. The
run directory is not modified: the AUROCs go to stdout and to ``--json``.

``--select`` splits the classes into the ones a choice between scores is made on and the ones it
is then reported on (the issue's "classes you then exclude"): the table is printed for each part.

    PYTHONPATH=. python benchmarks/rescore_one_class.py RUN --select 0,1,2,3,4 --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.provenance import provenance  # noqa: E402
from pyro_vje.methods.build import module_local_params  # noqa: E402
from pyro_vje.protocols.one_class import class_aurocs, markdown_table, score_class, summarize  # noqa: E402
from pyro_vje.runs import load_run  # noqa: E402
from pyro_vje.training.distributed import DistInfo  # noqa: E402
from pyro_vje.training.loaders import build_run_data  # noqa: E402


def rescore(run: Path, bn_stats: str, knn_k: int) -> dict[str, dict[str, float]]:
    per_class: dict[str, dict[str, float]] = {}
    dirs = sorted(run.glob("class-*"), key=lambda p: int(p.name.split("-")[1]))
    if not dirs:
        raise SystemExit(f"{run}: no class-<c> folders (is it a pyro-vje one-class run directory?)")
    for class_dir in dirs:
        if not (class_dir / "last.pt").is_file():
            print(f"{class_dir.name}: no last.pt, skipped", file=sys.stderr)
            continue
        with module_local_params():
            config, vje = load_run(class_dir)
            data = build_run_data(config, DistInfo(), config.batch_size, pin_memory=False)
            cpu = torch.device("cpu")
            arrays = score_class(vje, data, cpu, bn_stats=bn_stats, seed=config.seed, knn_k=knn_k)
        arrays["normal_class"] = np.array(config.normal_class)
        per_class[str(config.normal_class)] = class_aurocs(arrays)
        print(f"{class_dir.name}: scored", file=sys.stderr, flush=True)
    return per_class


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a pyro-vje one-class run directory")
    parser.add_argument("--bn-stats", choices=("clean", "train"), default="clean")
    parser.add_argument("--knn-k", type=int, default=5)
    parser.add_argument("--select", default="", help="classes to choose a score on (the rest: report)")
    parser.add_argument("--json", type=Path, help="write the per-class AUROCs and provenance here")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    per_class = rescore(args.run, args.bn_stats, args.knn_k)
    chosen = [c for c in args.select.split(",") if c.strip()]
    parts = {"all classes": list(per_class)}
    if chosen:
        parts["selection classes " + ",".join(chosen)] = [c for c in per_class if c in chosen]
        parts["reported classes (the rest)"] = [c for c in per_class if c not in chosen]
    for title, classes in parts.items():
        if classes:
            print(f"\n## {title}\n")
            print(markdown_table(summarize({c: per_class[c] for c in classes}), reported=None))
    if args.json:
        record = {"run": str(args.run), "bn_stats": args.bn_stats, "knn_k": args.knn_k, **provenance()}
        args.json.write_text(json.dumps({**record, "per_class": per_class}, indent=1))


if __name__ == "__main__":
    main()
