"""The Lightning callbacks `models.train` adds to every run: progress, memory, run set-up."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import (
    Callback,
    ModelCheckpoint,
    ProgressBar,
    RichProgressBar,
    TQDMProgressBar,
)
from pytorch_lightning.loggers import MLFlowLogger

from models.memory import TRIM_EVERY, release_free_memory


def progress_bar(refresh_rate: int) -> ProgressBar:
    """Lightning's terminal progress bar, refreshed every `refresh_rate` batches.

    Each refresh reads the logged values (`.item()`), a device sync on GPU: refreshing at the
    logging interval keeps syncs off most steps.
    """
    try:
        return RichProgressBar(refresh_rate=refresh_rate)
    except ModuleNotFoundError:  # rich is optional in Lightning
        return TQDMProgressBar(refresh_rate=refresh_rate)


class ReleaseMemory(Callback):
    """Give freed heap memory back every few validation/test batches (see models/memory.py)."""

    def __init__(self, every: int = TRIM_EVERY) -> None:
        self.every = every

    def _batch_end(self, batch_idx: int) -> None:
        if (batch_idx + 1) % self.every == 0:
            release_free_memory()

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._batch_end(batch_idx)

    def on_test_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._batch_end(batch_idx)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        release_free_memory()

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        release_free_memory()


class RunSetup(Callback):
    """Open the MLflow run (rank 0) and put the checkpoints under `<root>/<run_id>` on every rank.

    Runs in `setup`, i.e. after DDP has started its processes and fixed the ranks, and before
    the ModelCheckpoint callback's own setup (Lightning orders checkpoint callbacks last).
    """

    def __init__(self, params: dict[str, Any], checkpoint: ModelCheckpoint, root: Path) -> None:
        self.params = params
        self.checkpoint = checkpoint
        self.root = root
        self.run_id: str | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.run_id is not None:
            return
        if trainer.strategy.root_device.type == "cpu" and trainer.num_devices > 1:
            # Several CPU processes on one machine: split the cores between them. Each process
            # defaulting to all cores oversubscribes them, and torch's threads then wait on each
            # other (measured here: a step 50x slower with 2 threads on a busy 2-core machine).
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // trainer.num_devices))
        logger = trainer.logger
        assert isinstance(logger, MLFlowLogger)
        if trainer.is_global_zero:
            logger.log_hyperparams(self.params)  # creates the run, with its tags
        self.run_id = trainer.strategy.broadcast(logger.run_id)
        self.checkpoint.dirpath = str(self.root / self.run_id)
