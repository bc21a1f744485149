"""One training loop for every method (paper Section 5): run directory, logs, checkpoints, DDP.

:func:`train` runs a :class:`~pyro_vje.training.config.TrainConfig` end to end:

1. the run directory (``config.out``, default ``runs/<dataset>-<method>-<arch>-<time>``)
   gets ``config.json`` (the resolved config), ``train.log``, ``metrics.jsonl`` /
   ``metrics.csv``, TensorBoard events under ``tb/``, ``figures/``, ``last.pt``
   (every epoch) and ``best.pt`` (best kNN accuracy of z), ``backbone.pt`` and
   ``results.json`` at the end;
2. SGD with momentum, the linear scaling rule, linear warm-up and cosine decay
   per step; bf16 autocast and channels-last on CUDA;
3. every ``eval_every`` epochs and at the end: weighted kNN of z and mu, the
   posterior's Table-7 statistics and the collapse diagnostics (effective
   rank, std of normalized embeddings);
4. a non-finite loss stops the run with a message and leaves the last good
   checkpoint untouched; ``resume=True`` continues from ``last.pt`` exactly.

Under ``torchrun`` every process runs :func:`train`; gradients are averaged by
DistributedDataParallel, rank 0 evaluates, logs and writes checkpoints.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pyro
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from ..evaluation import autocast, evaluate_method, flatten_pixels, knn_evaluate
from .checkpoint import atomic_save, load_checkpoint, rng_state, set_rng_state
from .config import TrainConfig, config_from_dict
from .distributed import (
    DistInfo,
    all_reduce_mean,
    any_true,
    barrier,
    broadcast_object,
    init_distributed,
    resolve_device,
)
from .export import export_backbone
from .figures import plot_training_curves
from .loaders import RunData, build_run_data
from .logger import MetricsLogger, json_safe
from .methods import TrainStep, build_method
from .schedule import lr_at, scaled_lr

log = logging.getLogger("pyro_vje")

CHECKPOINT_FORMAT = 1
# Settings that may differ on --resume without changing the trajectory.
RESUMABLE_OVERRIDES = frozenset(
    {"progress", "num_workers", "tensorboard", "figures", "out", "device", "cache"}
)


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the run stopped and kept its last good checkpoint."""


def default_run_dir(config: TrainConfig) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{config.dataset}-{config.method}-{config.arch}-{stamp}"


def _check_run_dir(config: TrainConfig, resume: bool) -> tuple[Path, TrainConfig]:
    """Check (do not create yet) the run directory; return it and the config to use."""
    run_dir = Path(config.out) if config.out else default_run_dir(config)
    config_path = run_dir / "config.json"
    if resume:
        if not (run_dir / "last.pt").is_file():
            raise FileNotFoundError(f"cannot resume: {run_dir / 'last.pt'} not found (give the run's --out)")
        saved = config_from_dict(_load_json_config(config_path))
        differing = [
            f.name
            for f in dataclasses.fields(TrainConfig)
            if f.name not in RESUMABLE_OVERRIDES and getattr(saved, f.name) != getattr(config, f.name)
        ]
        if differing:
            detail = ", ".join(
                f"{k}: run {getattr(saved, k)!r} vs now {getattr(config, k)!r}" for k in differing
            )
            raise ValueError(f"cannot resume {run_dir} with a different config ({detail})")
        return run_dir, config
    if run_dir.exists() and any(run_dir.iterdir()):
        raise FileExistsError(
            f"run directory {run_dir} already exists and is not empty: pass --resume to continue it "
            "or choose another --out"
        )
    return run_dir, dataclasses.replace(config, out=str(run_dir))


def _create_run_dir(run_dir: Path, config: TrainConfig) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / "config.json"
    tmp = config_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    os.replace(tmp, config_path)


def _on_main(fn: Callable[[], Any], dist: DistInfo) -> Any:
    """Run ``fn`` on rank 0 and hand its result, or its error, to every rank (so none hangs)."""
    result, error = None, None
    if dist.is_main:
        try:
            result = fn()
        except Exception as err:  # re-raised on every rank below
            error = err
    if dist.enabled:
        result, error = broadcast_object((result, error), dist)
    if error is not None:
        raise error
    return result


def _load_json_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: not a pyro-vje run directory")
    return json.loads(path.read_text())


def _add_file_log(run_dir: Path) -> logging.Handler:
    handler = logging.FileHandler(run_dir / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


def _to_cpu(obj: Any) -> Any:
    """Tensors moved to the CPU, so that checkpoints load on machines without a GPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def _is_non_finite_error(err: ValueError, model: nn.Module) -> bool:
    text = str(err).lower()
    if "invalid values" in text or "nan" in text or "finite" in text:
        return True
    return any(not torch.isfinite(p).all() for p in model.parameters())


class Trainer:
    """See the module docstring. Most users call :func:`train`."""

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
        self.amp = config.amp
        self.channels_last = (
            config.channels_last if config.channels_last is not None else self.device.type == "cuda"
        )

        self._handler: logging.Handler | None = None
        self.logger: MetricsLogger | None = None
        run_dir, self.config = _on_main(lambda: _check_run_dir(config, resume), self.dist)
        self.run_dir = Path(run_dir)

        pyro.set_rng_seed(self.config.seed)  # torch, numpy and random: same initial weights on every rank
        self.data: RunData = build_run_data(
            self.config, self.dist, self.per_rank_batch, pin_memory=self.device.type == "cuda"
        )
        self.method = build_method(self.config, self.data.info.channels, self.data.image_size)
        if self.config.sync_bn and self.dist.enabled:
            self.method = nn.SyncBatchNorm.convert_sync_batchnorm(self.method)
        self.method.to(self.device)
        if self.channels_last:
            self.method.to(memory_format=torch.channels_last)
        self.base_lr = scaled_lr(self.config.lr, self.config.batch_size)
        self.optimizer = torch.optim.SGD(
            self.method.parameters(),
            lr=self.base_lr,
            momentum=self.config.momentum,
            weight_decay=self.config.weight_decay,
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
        self.epoch, self.step = 0, 0
        self.best: float = -math.inf
        self.baselines: dict[str, float] = {}
        if resume:
            self._load(self.run_dir / "last.pt")
        else:
            _on_main(lambda: _create_run_dir(self.run_dir, self.config), self.dist)
        if self.dist.is_main:  # the directory exists only now that data and model were built
            self._handler = _add_file_log(self.run_dir)
            self.logger = MetricsLogger(
                self.run_dir, self.config.tensorboard, resume_step=self.step if resume else None
            )

    # ------------------------------------------------------------ checkpoints
    def _state(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "epoch": self.epoch,
            "step": self.step,
            "best": self.best,
            "baselines": self.baselines,
            "model": _to_cpu(self.method.state_dict()),
            "optimizer": _to_cpu(self.optimizer.state_dict()),
            "rng": rng_state(),
            "config": self.config.to_dict(),
        }

    def _load(self, path: Path) -> None:
        state = load_checkpoint(path, map_location="cpu")
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

    def _baselines(self) -> dict[str, float]:
        """kNN on raw (normalized) pixels and on the randomly initialized encoder: no training.

        Raw pixels are skipped when the bank would not fit comfortably in memory (ImageNet)."""
        cfg = self.config
        if cfg.normal_class is not None:  # one class in the bank: kNN classification is undefined
            return {}
        size = self.data.image_size
        n_floats = len(self.data.bank_loader.dataset) * self.data.info.channels * size * size
        if n_floats > 2e8:
            log.info("raw-pixel kNN baseline skipped (%.1e pixel values)", n_floats)
            return {"knn_z_random_init": self.evaluate()["knn_z"]}
        pixels = {
            "bank": flatten_pixels(self.data.bank_loader),
            "test": flatten_pixels(self.data.test_loader),
        }
        raw = knn_evaluate(
            pixels["bank"][0],
            pixels["bank"][1],
            pixels["test"][0],
            pixels["test"][1],
            self.data.num_classes,
            cfg.knn_k,
            cfg.knn_temperature,
        )["top1"]
        init = self.evaluate()
        return {"knn_raw_pixels": raw, "knn_z_random_init": init["knn_z"]}

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
        bar = tqdm(
            total=self.steps_per_epoch,
            desc=f"epoch {self.epoch + 1}/{cfg.epochs}",
            disable=not (cfg.progress and self.dist.is_main),
            leave=False,
            unit="step",
        )
        start = time.perf_counter()
        for i, ((x1, x2), _) in enumerate(self.data.train_loader):
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
            problem = None
            try:
                with autocast(self.device, self.amp):
                    loss, terms = self.step_module(x1, x2)
            except ValueError as err:  # Pyro's validation sees NaN/inf before the loss does
                if not _is_non_finite_error(err, self.method):
                    raise
                problem = f"non-finite values in the forward pass ({str(err).splitlines()[0]})"
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

    def fit(self, on_epoch_end: Callable[[Trainer, dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Train from the current epoch to ``config.epochs``; return the final results."""
        cfg = self.config
        try:
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
            if not self.resume and self.dist.is_main and cfg.baselines:
                self.baselines = self._baselines()
                log.info("baselines: %s", json.dumps(self.baselines))
            barrier(self.dist)
            epochs_bar = tqdm(
                range(self.epoch, cfg.epochs),
                desc=f"{cfg.method} on {cfg.dataset}",
                disable=not (cfg.progress and self.dist.is_main),
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
                        plot_training_curves(self.logger.rows, self.run_dir / "figures")
                    state = self._state()
                    if improved:
                        self._save("best.pt", state)
                    self._save("last.pt", state)
                    epochs_bar.set_postfix(
                        {k: f"{row[k]:.3f}" for k in ("loss", "knn_z", "knn_mu") if k in row}
                    )
                    log.info("epoch %d: %s", self.epoch, json.dumps({k: row[k] for k in row if k != "epoch"}))
                barrier(self.dist)
                if on_epoch_end is not None:
                    on_epoch_end(self, row)
            return self._finish(row)
        finally:
            self.close()

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
        results["train_seconds"] = sum(r.get("epoch_seconds", 0.0) for r in rows)
        results["run_dir"] = str(self.run_dir)
        export_backbone(self.method, cfg, self.run_dir / "backbone.pt")
        tmp = self.run_dir / "results.json.tmp"
        tmp.write_text(json.dumps(json_safe(results), indent=2) + "\n")
        os.replace(tmp, self.run_dir / "results.json")
        log.info("results: %s", json.dumps(results, default=str))
        return results

    def close(self) -> None:
        if self.logger is not None:
            self.logger.close()
        if self._handler is not None:
            log.removeHandler(self._handler)
            self._handler.close()
            self._handler = None


def train(config: TrainConfig, resume: bool = False, **fit_kwargs) -> dict[str, Any]:
    """Train ``config`` (see the module docstring) and return the final results.

    PyroModules keep their parameters local (``pyro.settings`` ``module_local_params``)
    while the run lasts: no global param-store traffic per forward pass.
    """
    with pyro.settings.context(module_local_params=True):
        trainer = Trainer(config, resume=resume)
        return trainer.fit(**fit_kwargs)
