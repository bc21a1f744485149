"""Metrics of a run: JSON lines, CSV and TensorBoard, written by rank 0.

``metrics.jsonl`` is the record (one line per epoch, with the kNN and
diagnostic columns on evaluation epochs); ``metrics.csv`` is rewritten from
it after every epoch so that its header always covers every column; scalars
also go to TensorBoard under ``tb/``. On ``--resume`` the rows after the
checkpoint's step are dropped, and TensorBoard purges the steps after it,
so a resumed run's logs read like an uninterrupted one's.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from pathlib import Path
from typing import Any

from .files import atomic_write_text, json_scalar

__all__ = ["MetricsLogger", "read_metrics"]

log = logging.getLogger("pyro_vje")


def read_metrics(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of a ``metrics.jsonl`` file ([] if absent)."""
    path = Path(path)
    if not path.exists():
        return []
    with path.open() as f:
        return [json.loads(line) for line in f if line.strip()]


class MetricsLogger:
    """Per-epoch rows to ``metrics.jsonl``/``metrics.csv``, scalars to TensorBoard."""

    def __init__(self, run_dir: str | os.PathLike, tensorboard: bool = True, resume_step: int | None = None):
        self.run_dir = Path(run_dir)
        self.jsonl = self.run_dir / "metrics.jsonl"
        self.csv = self.run_dir / "metrics.csv"
        self.rows = read_metrics(self.jsonl)
        if resume_step is not None:
            self.rows = [r for r in self.rows if r.get("step", 0) <= resume_step]
            self._rewrite_jsonl()
        elif self.rows:
            raise ValueError(f"{self.jsonl} already has rows; resume the run or choose a new run directory")
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # pragma: no cover - tensorboard is a dependency
                log.warning("tensorboard is not installed: no TensorBoard logs (pip install tensorboard)")
            else:
                purge = None if resume_step is None else resume_step + 1
                self.writer = SummaryWriter(str(self.run_dir / "tb"), purge_step=purge)

    def _rewrite_jsonl(self) -> None:
        atomic_write_text("".join(json.dumps(row) + "\n" for row in self.rows), self.jsonl)

    def log_epoch(self, row: dict[str, Any]) -> None:
        row = {k: json_scalar(v) for k, v in row.items()}
        self.rows.append(row)
        with self.jsonl.open("a") as f:
            f.write(json.dumps(row) + "\n")
        self._write_csv()
        if self.writer is not None:  # x axis: the optimizer step, shared with the step/ curves
            step = row["step"]
            for key, value in row.items():
                if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.writer.add_scalar(f"epoch/{key}", value, step)
            self.writer.flush()

    def log_step(self, step: int, values: dict[str, float]) -> None:
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(f"step/{key}", value, step)

    def _write_csv(self) -> None:
        columns: list[str] = []
        for row in self.rows:
            columns += [k for k in row if k not in columns]
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=columns)
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(text.getvalue(), self.csv)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
