"""One training loop for every method (paper Section 5): set-up, the epoch loop, results.

:func:`train` runs a :class:`~pyro_vje.config.TrainConfig` end to end
(the run directory's files are :mod:`.rundir`'s and :mod:`.logger`'s, the
optimizer :mod:`.optim`'s, the non-finite checks :mod:`.nonfinite`'s):

1. the run directory (``config.out``, default ``runs/<dataset>-<method>-<arch>-<time>``)
   gets ``config.json`` (the resolved config), ``train.log``, ``metrics.jsonl`` /
   ``metrics.csv``, TensorBoard events under ``tb/``, ``figures/``, ``last.pt``
   (every epoch) and ``best.pt`` (best kNN accuracy of z, weights only), ``backbone.pt``
   and ``results.json`` at the end; ``.lock`` while it trains (a second process is
   refused);
2. SGD with momentum, the linear scaling rule, linear warm-up and cosine decay
   per step; bf16 autocast and channels-last on CUDA;
3. every ``eval_every`` epochs and at the end: weighted kNN of z and mu, the
   posterior's Table-7 statistics and the collapse diagnostics (effective
   rank, std of normalized embeddings);
4. a non-finite loss stops the run with a message and leaves the last good
   checkpoint untouched; ``resume=True`` continues from ``last.pt`` exactly, and
   returns a finished run's ``results.json`` unchanged;
5. Ctrl-C raises :class:`TrainingInterrupted` (a ``KeyboardInterrupt``) naming the
   last checkpoint, after releasing the lock.

Under ``torchrun`` every process runs :func:`train`; gradients are averaged by
DistributedDataParallel, rank 0 evaluates, logs and writes checkpoints.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyro
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..config import TrainConfig, config_from_dict
from ..data.unreadable import take_skip_messages
from ..evaluation import autocast, evaluate_method
from ..methods.build import build_method, module_local_params
from ..progress import progress_bar
from ..runs.checkpoints import (
    CHECKPOINT_FORMAT,
    CorruptCheckpointError,
    load_checkpoint,
    rng_state,
    set_rng_state,
    to_cpu,
)
from ..runs.export import export_backbone
from ..runs.files import atomic_save, atomic_write_json, json_safe
from ..runs.lock import RunDirLock, lock_run_dir
from ..runs.metrics import MetricsLogger
from ..runs.rundir import add_file_log, check_run_dir, clear_failed_attempt, create_run_dir, remove_file_log
from ..threads import set_threads, wait_policy_state
from .distributed import (
    TrainStep,
    all_reduce_mean,
    any_true,
    barrier,
    init_distributed,
    on_main,
    resolve_device,
)
from .figures import plot_training_curves
from .loaders import RunData, build_run_data
from .nonfinite import NonFiniteLossError, first_non_finite
from .optim import build_optimizer
from .precision import resolve_amp
from .schedule import lr_at, scaled_lr
from .untrained_knn import untrained_knn

__all__ = ["NonFiniteLossError", "Trainer", "TrainingInterrupted", "train"]

log = logging.getLogger("pyro_vje")
#: the schedule warnings already printed on stderr by this process
_WARNED: set[str] = set()


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during :meth:`Trainer.fit`: where the run is and its last checkpoint (None: none yet)."""

    def __init__(self, run_dir: Path, checkpoint: Path | None, epoch: int):
        self.run_dir, self.checkpoint, self.epoch = run_dir, checkpoint, epoch
        if checkpoint is None:
            what = f"interrupted before the first checkpoint of {run_dir}; rerun the same command to restart"
        else:
            what = f"interrupted; the last checkpoint is {checkpoint} (epoch {epoch})"
        super().__init__(what)


class Trainer:
    """See the module docstring. Most users call :func:`train`."""

    @module_local_params()
    def __init__(self, config: TrainConfig, resume: bool = False):
        self.config = config.validate()
        self.resume = resume
        probe_device = resolve_device(config.device)
        self.dist = init_distributed(probe_device.type)
        self.device = resolve_device(config.device, self.dist)
        if config.batch_size % self.dist.world_size:
            raise ValueError(
                f"batch_size {config.batch_size} is not divisible by the {self.dist.world_size} processes"
            )
        self.per_rank_batch = config.batch_size // self.dist.world_size
        if config.sync_bn and self.dist.enabled and self.device.type != "cuda":
            raise ValueError("sync_bn needs CUDA (torch's SyncBatchNorm does not run on CPU)")
        self.threads = set_threads(config.threads)  # docs/training.md, "CPU threads"
        self.amp = resolve_amp(config.amp, self.device)  # "bf16" or "none"
        self.channels_last = (
            config.channels_last if config.channels_last is not None else self.device.type == "cuda"
        )

        self._handler: logging.Handler | None = None
        self.logger: MetricsLogger | None = None
        self._lock: RunDirLock | None = None
        run_dir, self.config = on_main(lambda: check_run_dir(config, resume), self.dist)
        self.run_dir = Path(run_dir)
        if self.dist.is_main and self.run_dir.is_dir():  # a new run's folder is locked when made
            self._lock = lock_run_dir(self.run_dir)
        try:
            self._build(resume)
        except BaseException:
            self.close()
            raise

    def _build(self, resume: bool) -> None:
        pyro.set_rng_seed(self.config.seed)  # torch, numpy and random: same initial weights on every rank
        take_skip_messages()  # forget those of an earlier run in this process
        self.data: RunData = build_run_data(
            self.config,
            self.dist,
            self.per_rank_batch,
            pin_memory=self.device.type == "cuda",
            device=self.device,
        )
        if self.config.augment_backend == "auto":  # config.json records the choice; resume keeps it
            self.config = config_from_dict({"augment_backend": self.data.augment_backend}, base=self.config)
        if self.config.amp == "auto":  # likewise the precision auto chose (training/precision.py)
            self.config = config_from_dict({"amp": self.amp}, base=self.config)
        self.method = build_method(self.config, self.data.info.channels, self.data.image_size)
        if self.config.sync_bn and self.dist.enabled:
            self.method = nn.SyncBatchNorm.convert_sync_batchnorm(self.method)
        self.method.to(self.device)
        if self.channels_last:
            self.method.to(memory_format=torch.channels_last)
        if self.config.freeze_encoder:  # before the optimizer: it takes trainable parameters only
            self.method.encoder.requires_grad_(False)
            if not any(p.requires_grad for p in self.method.parameters()):
                raise ValueError(
                    f"freeze_encoder leaves method {self.config.method!r} with no trainable parameters"
                )
        self.base_lr = scaled_lr(self.config.lr, self.config.batch_size)
        self.optimizer = build_optimizer(
            self.method, self.base_lr, self.config.momentum, self.config.weight_decay
        )
        step_module: nn.Module = TrainStep(self.method)
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            step_module = DistributedDataParallel(step_module, device_ids=ids)
        self.step_module = step_module

        n_batches = len(self.data.train_loader)
        self.steps_per_epoch = min(n_batches, self.config.max_steps_per_epoch or n_batches)
        self.total_steps = self.steps_per_epoch * self.config.epochs
        self.warmup_steps = self.steps_per_epoch * self.config.warmup_epochs
        #: the highest rate the schedule reaches (below ``base_lr`` when the warm-up outlasts the run)
        peak_step = min(max(self.warmup_steps, 1), self.total_steps) - 1
        self.lr_reached = (
            lr_at(peak_step, self.total_steps, self.warmup_steps, self.base_lr)
            if self.total_steps >= 1
            else self.base_lr
        )
        self.epoch, self.step = 0, 0
        self.best: float = -math.inf
        self.baselines: dict[str, float] = {}
        if resume:
            self._load(self.run_dir / "last.pt")
        else:
            on_main(self._start_run_dir, self.dist)
        if self.dist.is_main:  # the directory exists only now that data and model were built
            self._handler = add_file_log(self.run_dir)
            for message in take_skip_messages():  # unreadable files left out (--skip-unreadable)
                log.warning(message)
            self.logger = MetricsLogger(
                self.run_dir, self.config.tensorboard, resume_step=self.step if resume else None
            )

    def _start_run_dir(self) -> None:
        if self._lock is None:
            self._lock = lock_run_dir(self.run_dir)
        clear_failed_attempt(self.run_dir)  # a previous attempt that died before its first checkpoint
        create_run_dir(self.run_dir, self.config, {"peak_lr": self.base_lr})

    # ------------------------------------------------------------ checkpoints
    def _state(self, resumable: bool = True) -> dict[str, Any]:
        """``last.pt``'s contents; ``resumable=False``: ``best.pt``'s (no optimizer or RNG state)."""
        state = {
            "format": CHECKPOINT_FORMAT,
            "epoch": self.epoch,
            "step": self.step,
            "best": self.best,
            "baselines": self.baselines,
            "model": to_cpu(self.method.state_dict()),
            "config": self.config.to_dict(),
        }
        if resumable:
            state["optimizer"] = to_cpu(self.optimizer.state_dict())
            state["rng"] = rng_state()
        return state

    def _load(self, path: Path) -> None:
        try:
            state = load_checkpoint(path, map_location="cpu")
        except CorruptCheckpointError as err:
            raise CorruptCheckpointError(
                f"cannot resume: {err}; to train again, start a new run with another --out"
            ) from None
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path}: unknown checkpoint format {state.get('format')!r}")
        self.method.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch, self.step, self.best = state["epoch"], state["step"], state["best"]
        self.baselines = dict(state.get("baselines", {}))
        set_rng_state(state["rng"])
        log.info("resumed %s at epoch %d (step %d)", path, self.epoch, self.step)

    def _save(self, name: str, state: dict[str, Any]) -> None:
        atomic_save(state, self.run_dir / name)

    # ------------------------------------------------------------- evaluation
    @module_local_params()
    def evaluate(self, with_probe: str = "none") -> dict[str, float]:
        """kNN (z and mu), posterior statistics and collapse diagnostics; optional linear probe."""
        cfg = self.config
        return evaluate_method(
            self.method,
            self.data.bank_loader,
            self.data.test_loader,
            self.data.num_classes,
            self.device,
            amp=self.amp,
            channels_last=self.channels_last,
            progress=cfg.progress,
            knn_k=cfg.knn_k,
            knn_temperature=cfg.knn_temperature,
            probe=with_probe,
            seed=cfg.seed,
        )

    # ----------------------------------------------------------------- train
    def _train_epoch(self) -> dict[str, float]:
        cfg = self.config
        self.method.train()
        self.data.set_epoch(self.epoch, cfg.seed, self.dist.rank)
        if (
            self.dist.enabled
        ):  # each process its own augmentations and noise, a function of (seed, rank, epoch)
            pyro.set_rng_seed(cfg.seed + 1_000 * self.dist.rank + 7_919 * self.epoch)
        sums: dict[str, torch.Tensor] = {}
        bar = progress_bar(
            total=self.steps_per_epoch,
            desc=f"epoch {self.epoch + 1}/{cfg.epochs}",
            enabled=cfg.progress and self.dist.is_main,
            leave=False,
            unit="step",
        )
        start = time.perf_counter()
        uses_labels = getattr(self.method, "uses_labels", False)
        for i, ((x1, x2), y) in enumerate(self.data.train_loader):
            if i >= self.steps_per_epoch:
                break
            lr = lr_at(self.step, self.total_steps, self.warmup_steps, self.base_lr)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            x1 = x1.to(self.device, non_blocking=True)
            x2 = x2.to(self.device, non_blocking=True)
            if self.channels_last and x1.dim() == 4:
                x1 = x1.contiguous(memory_format=torch.channels_last)
                x2 = x2.contiguous(memory_format=torch.channels_last)
            labels = y.to(self.device, non_blocking=True) if uses_labels else None
            problem = None
            try:
                with autocast(self.device, self.amp):
                    loss, terms = self.step_module(x1, x2, labels)
            except ValueError:  # Pyro's validation sees NaN/inf before the loss does
                where = first_non_finite(self.method, {"x1": x1, "x2": x2}, self._forward(x1, x2, labels))
                if where is None:
                    raise
                problem = f"non-finite values in the forward pass (first at the {where})"
            if problem is None and not bool(torch.isfinite(loss).item()):
                problem = f"non-finite loss ({loss.item()})"
            if any_true(problem is not None, self.device, self.dist):
                raise self._non_finite(problem or "a non-finite loss on another process")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            max_norm = cfg.grad_clip if cfg.grad_clip is not None else math.inf
            grad_norm = nn.utils.clip_grad_norm_(self.method.parameters(), max_norm)
            if any_true(not bool(torch.isfinite(grad_norm).item()), self.device, self.dist):
                raise self._non_finite(f"non-finite gradients (norm {grad_norm.item()})")
            self.optimizer.step()
            self.step += 1
            for key, value in {"loss": loss.detach(), **terms}.items():
                value = torch.as_tensor(value, device=self.device).float()
                sums[key] = sums[key] + value if key in sums else value
            bar.update(1)
            if self.dist.is_main and (i % 10 == 0 or i + 1 == self.steps_per_epoch):
                bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{lr:.4f}")
                if self.logger is not None:
                    self.logger.log_step(self.step, {"loss": loss.item(), "lr": lr})
        bar.close()
        seconds = time.perf_counter() - start
        n = max(1, min(i + 1, self.steps_per_epoch))
        keys = sorted(sums)
        means = all_reduce_mean(torch.stack([sums[k] for k in keys]) / n, self.dist).tolist()
        row = dict(zip(keys, means))
        row.update(
            lr=lr,
            epoch_seconds=seconds,
            images_per_second=n * self.config.batch_size / seconds,
        )
        return row

    def _forward(
        self, x1: torch.Tensor, x2: torch.Tensor, labels: torch.Tensor | None = None
    ) -> Callable[[], Any]:
        step = TrainStep(self.method)  # the step's own call, outside any DDP wrapper

        def run() -> Any:
            with autocast(self.device, self.amp):
                return step(x1, x2, labels)

        return run

    def _non_finite(self, what: str) -> NonFiniteLossError:
        if self.epoch > 0 or self.resume:
            kept = f"The last good checkpoint is {self.run_dir / 'last.pt'} (epoch {self.epoch})"
        else:
            kept = "No checkpoint was written yet (it failed in the first epoch)"
        err = NonFiniteLossError(
            f"{what} at epoch {self.epoch + 1}, step {self.step}; the run stopped, nothing was updated "
            f"with it. {kept}; try a lower lr, a longer warm-up, or amp='none'"
        )
        log.error("%s", err)
        return err

    @module_local_params()
    def fit(self, on_epoch_end: Callable[[Trainer, dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Train from the current epoch to ``config.epochs``; return the final results."""
        cfg = self.config
        try:
            if self.resume and self.epoch >= cfg.epochs:
                return self._finished()
            if self.dist.is_main:
                log.info(
                    "run %s: %s on %s, %s, %d steps/epoch x %d epochs, global batch %d (%d processes), "
                    "device %s",
                    self.run_dir,
                    cfg.method,
                    cfg.dataset,
                    cfg.arch,
                    self.steps_per_epoch,
                    cfg.epochs,
                    cfg.batch_size,
                    self.dist.world_size,
                    self.device,
                )
                log.info("CPU threads %d, OpenMP wait policy %s", self.threads, wait_policy_state())
            if self.dist.is_main and 0 < self.total_steps <= self.warmup_steps:
                message = (
                    f"warmup_epochs {cfg.warmup_epochs} >= epochs {cfg.epochs}: the learning rate reaches "
                    f"{self.lr_reached:.4g} of its peak {self.base_lr:.4g} (at the last step) and never "
                    "decays; lower --warmup-epochs (results.json records lr_reached)"
                )
                log.warning("%s", message)
                if message not in _WARNED:  # once per process (a protocol trains many models alike)
                    _WARNED.add(message)
                    print(f"warning: {message}", file=sys.stderr)
            if not self.resume and self.dist.is_main and cfg.baselines:
                self.baselines = untrained_knn(cfg, self.data, self.evaluate)
                log.info("baselines: %s", json.dumps(self.baselines))
            barrier(self.dist)
            epochs_bar = progress_bar(
                range(self.epoch, cfg.epochs),
                desc=f"{cfg.method} on {cfg.dataset}",
                enabled=cfg.progress and self.dist.is_main,
                unit="epoch",
                initial=self.epoch,
                total=cfg.epochs,
            )
            row: dict[str, Any] = {}
            for _ in epochs_bar:
                row = {"epoch": self.epoch + 1, **self._train_epoch()}
                self.epoch += 1
                row["step"] = self.step
                is_eval = self.epoch % cfg.eval_every == 0 or self.epoch == cfg.epochs
                if self.dist.is_main:
                    if not all(torch.isfinite(p).all() for p in self.method.parameters()):
                        raise self._non_finite("non-finite weights")
                    if is_eval:
                        self._save("last.pt", self._state())  # evaluation can be long: save first
                        row.update(self.evaluate())
                    improved = is_eval and row.get("knn_z", -math.inf) > self.best
                    if improved:
                        self.best = row["knn_z"]
                    self.logger.log_epoch(row)
                    if cfg.figures and is_eval:
                        plot_training_curves(self.logger.rows, self.run_dir / "figures", self.baselines)
                    if improved:
                        self._save("best.pt", self._state(resumable=False))
                    self._save("last.pt", self._state())
                    epochs_bar.set_postfix(
                        {k: f"{row[k]:.3f}" for k in ("loss", "knn_z", "knn_mu") if k in row}
                    )
                    log.info("epoch %d: %s", self.epoch, json.dumps({k: row[k] for k in row if k != "epoch"}))
                barrier(self.dist)
                if on_epoch_end is not None:
                    on_epoch_end(self, row)
            return self._finish(row)
        except KeyboardInterrupt:
            last = self.run_dir / "last.pt"
            err = TrainingInterrupted(self.run_dir, last if last.is_file() else None, self.epoch)
            if self.dist.is_main:
                log.warning("%s", err)
            raise err from None
        finally:
            self.close()

    def _finished(self) -> dict[str, Any]:
        """A resumed run that had already finished: its results, unchanged (written now only if
        the process died between the last checkpoint and ``results.json``)."""
        if not self.dist.is_main:
            return {}
        path = self.run_dir / "results.json"
        message = (
            f"run {self.run_dir} already finished ({self.epoch} epochs): nothing to train, "
            "its results are unchanged"
        )
        log.warning("%s", message)
        print(f"warning: {message}", file=sys.stderr)  # train.log alone is not where one looks
        if path.is_file():
            return json.loads(path.read_text())
        rows = self.logger.rows
        return self._finish(rows[-1] if rows else {})

    def _finish(self, last_row: dict[str, Any]) -> dict[str, Any]:
        cfg = self.config
        if not self.dist.is_main:
            return {}
        results: dict[str, Any] = dict(self.baselines)
        final = {k: v for k, v in last_row.items() if k not in ("epoch",)} or self.evaluate()
        if cfg.linear_probe != "none":
            final.update(self.evaluate(with_probe=cfg.linear_probe))
        results.update(final)
        rows = self.logger.rows
        results["epochs"] = self.epoch
        results["peak_lr"] = self.base_lr
        results["lr_reached"] = self.lr_reached
        results["train_seconds"] = sum(r.get("epoch_seconds", 0.0) for r in rows)
        results["run_dir"] = str(self.run_dir)
        export_backbone(self.method, cfg, self.run_dir / "backbone.pt")
        atomic_write_json(json_safe(results), self.run_dir / "results.json")
        log.info("results: %s", json.dumps(results, default=str))
        return results

    def close(self) -> None:
        """Close the logs and release the run directory's lock (safe to call twice)."""
        if self.logger is not None:
            self.logger.close()
        if self._handler is not None:
            remove_file_log(self._handler)
            self._handler = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def train(config: TrainConfig, resume: bool = False, **fit_kwargs) -> dict[str, Any]:
    """Train ``config`` (see the module docstring) and return the final results.

    :class:`Trainer` builds, trains and evaluates under :func:`module_local_params`
    (PyroModules keep their parameters local: no global param-store traffic per
    forward pass), whoever calls it.
    """
    return Trainer(config, resume=resume).fit(**fit_kwargs)
