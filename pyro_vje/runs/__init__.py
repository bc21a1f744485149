"""Run directories: what training writes and every other command reads.

A run directory holds ``config.json``, ``train.log``, ``metrics.jsonl``/``metrics.csv``,
``last.pt``/``best.pt``, ``backbone.pt`` and ``results.json``. Training creates and locks it
(:mod:`.rundir`, :mod:`.lock`), logs into it (:mod:`.metrics`) and checkpoints into it
(:mod:`.checkpoints`); ``evaluate``, ``embed``, ``score``, ``one-class``, ``uncertainty`` and
``compare`` read it back (:func:`load_run`, :func:`read_metrics`, :func:`config_differences`)
and write their own results the same way (:mod:`.files`: atomic, valid JSON).
"""

from .checkpoints import CorruptCheckpointError, load_checkpoint, resolve_checkpoint
from .export import embed_dataset, export_backbone, save_npz
from .files import atomic_save, atomic_write, atomic_write_json, atomic_write_text, check_out_path, json_safe
from .load import load_run
from .lock import RunDirLockedError, lock_run_dir
from .metrics import MetricsLogger, read_metrics
from .rundir import check_run_dir, config_differences, create_run_dir, read_run_config

__all__ = [
    "CorruptCheckpointError",
    "MetricsLogger",
    "RunDirLockedError",
    "atomic_save",
    "atomic_write",
    "atomic_write_json",
    "atomic_write_text",
    "check_out_path",
    "check_run_dir",
    "config_differences",
    "create_run_dir",
    "embed_dataset",
    "export_backbone",
    "json_safe",
    "load_checkpoint",
    "load_run",
    "lock_run_dir",
    "read_metrics",
    "read_run_config",
    "resolve_checkpoint",
    "save_npz",
]
