"""Train one architecture on a prepared data folder, track it in MLflow, log the raw-text model.

    python -m models.train --arch cnn --dataset synthetic --epochs 1
    python -m models.train --arch cnn --dataset synthetic --epochs 1 \
        --accelerator cpu --devices 2 --strategy ddp --limit-batches 4

One MLflow run per call in the experiment `imdb-sentiment`. The run is created by Lightning's
MLFlowLogger on global rank 0 once the processes exist (so DDP never opens a second run), and
everything after training (test metrics, figures, the pyfunc model) is logged by rank 0 only.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import subprocess
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytorch_lightning as pl
import torch
from matplotlib.figure import Figure
from mlflow import MlflowClient
from pydantic import ValidationError
from pytorch_lightning.callbacks import (
    Callback,
    EarlyStopping,
    ModelCheckpoint,
    ProgressBar,
    RichProgressBar,
    TQDMProgressBar,
)
from pytorch_lightning.loggers import MLFlowLogger
from pytorch_lightning.utilities import rank_zero_only
from torch import Tensor

from config import PROJECT_ROOT, get_settings, require_choice
from data.prepare import DATASETS, PreparedData, prepare_dataset
from data.text import Vocabulary
from models.datamodule import IMDBDataModule
from models.memory import TRIM_EVERY, release_free_memory
from models.module import SentimentClassifier
from models.networks import build_net
from models.presets import ARCHS, DEFAULT_PRESET, PRESETS, Preset, get_preset
from models.pyfunc import log_sentiment_model
from models.registry import registered_name
from models.tracking import TrackingUnavailableError, check_tracking_server, configure_tracking

log = logging.getLogger(__name__)

EARLY_STOPPING_PATIENCE = 2
LOG_EVERY_N_STEPS = 10  # MLflow writes and progress-bar refreshes (a GPU sync) per this many steps
TEST_METRICS = ("test_loss", "test_acc", "test_f1", "test_roc_auc")


@dataclass(frozen=True)
class TrainResult:
    arch: str
    run_id: str
    model_uri: str  # models:/m-<id>, the logged model (runs:/<run_id>/model on ranks > 0)
    registered_version: int | None  # None when not registered (or on DDP ranks other than 0)
    metrics: dict[str, float]  # test_* on the whole test split, best_val_loss
    best_checkpoint: str
    train_seconds: float  # wall time of `fit` (training and validation epochs)
    epochs_trained: int
    n_parameters: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_preset(arch: str, preset: str, overrides: Mapping[str, Any] | None) -> Preset:
    """The preset with overrides applied; any problem is one readable ValueError."""
    try:
        return get_preset(arch, preset, **dict(overrides or {}))
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'preset'}: {e['msg'].removeprefix('Value error, ')}"
            f" (got {e['input']!r})"
            for e in error.errors()
        )
        raise ValueError(f"invalid hyperparameters for {arch}/{preset}: {problems}") from None


def check_prepared(prepared_dir: Path, preset: Preset) -> None:
    """The folder holds prepared data encoded the way the preset expects."""
    meta_path = prepared_dir / "meta.json"
    if not meta_path.exists():
        raise FileNotFoundError(f"no prepared data in {prepared_dir} (see data.prepare)")
    max_len = json.loads(meta_path.read_text(encoding="utf-8"))["max_len"]
    n_tokens = len(Vocabulary.load(prepared_dir / "vocab.json"))
    if max_len != preset.max_len or n_tokens > preset.vocab_size:
        raise ValueError(
            f"{prepared_dir} was prepared with max_len {max_len} and {n_tokens} vocabulary ids, "
            f"but preset {preset.name!r} expects max_len {preset.max_len} and at most "
            f"{preset.vocab_size}: prepare the data with the preset's vocab_size and max_len"
        )


def check_limit(limit_batches: int | float | None) -> None:
    if limit_batches is None:
        return
    valid_int = isinstance(limit_batches, int) and not isinstance(limit_batches, bool)
    if not (
        (valid_int and limit_batches >= 1)
        or (isinstance(limit_batches, float) and 0 < limit_batches <= 1)
    ):
        raise ValueError(
            f"limit_batches must be a positive number of batches or a fraction in (0, 1], "
            f"got {limit_batches!r}"
        )


def log_interval(n_train: int, batch_size: int, limit_batches: int | float | None) -> int:
    """Every 10 steps, or more often when an epoch is short, so every run has per-batch curves."""
    n_batches = math.ceil(n_train / batch_size)
    if isinstance(limit_batches, int):
        n_batches = min(n_batches, limit_batches)
    elif isinstance(limit_batches, float):
        n_batches = math.ceil(n_batches * limit_batches)
    return max(1, min(LOG_EVERY_N_STEPS, n_batches // 20))


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


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
        self, trainer, pl_module, outputs, batch, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._batch_end(batch_idx)

    def on_test_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._batch_end(batch_idx)

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        release_free_memory()

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        release_free_memory()


class _RunSetup(Callback):
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


def train(
    arch: str,
    prepared_dir: str | Path,
    *,
    preset: str = DEFAULT_PRESET,
    overrides: Mapping[str, Any] | None = None,
    seed: int = 42,
    accelerator: str = "auto",
    devices: int | str | list[int] = "auto",
    strategy: str = "auto",
    num_nodes: int = 1,
    register: bool = True,
    run_name: str | None = None,
    extra_tags: Mapping[str, str] | None = None,
    extra_params: Mapping[str, Any] | None = None,
    limit_batches: int | float | None = None,
    log_every_n_steps: int | None = None,
) -> TrainResult:
    """Train `arch` with `preset` (+ `overrides`) on the prepared data and log it to MLflow.

    `limit_batches` caps the train and val batches per epoch (quick runs); the test metrics are
    always computed on the whole test split, with the best checkpoint (min val_loss) reloaded.
    With `register`, the model is registered as `imdb-sentiment-<arch>`; otherwise call
    `register_model(run_id, arch)` later. `log_every_n_steps` defaults to every 10 steps, or
    more often when epochs are short. Everything is validated before any work starts.
    """
    prepared_dir = Path(prepared_dir)
    spec = resolve_preset(arch, preset, overrides)
    check_prepared(prepared_dir, spec)
    check_limit(limit_batches)
    if log_every_n_steps is not None and not (
        isinstance(log_every_n_steps, int) and log_every_n_steps >= 1
    ):
        raise ValueError(f"log_every_n_steps must be a positive integer, got {log_every_n_steps!r}")
    settings = get_settings()
    configure_tracking(settings)  # fails fast if the tracking server is unreachable

    pl.seed_everything(seed, workers=True)
    data = IMDBDataModule(prepared_dir, spec.batch_size, seed=seed)
    data.setup()
    assert data.data is not None
    net = build_net(arch, spec.vocab_size, **spec.net_kwargs())
    module = SentimentClassifier(net, spec.learning_rate, spec.weight_decay, spec.lr_schedule)
    n_parameters = sum(p.numel() for p in net.parameters())
    if log_every_n_steps is None:
        log_every_n_steps = log_interval(
            len(data.datasets["train"]), spec.batch_size, limit_batches
        )

    tags = {
        **{k: str(v) for k, v in (extra_tags or {}).items()},
        "arch": arch,
        "dataset": data.data.dataset,
        "data_hash": data.data.data_hash,
        "preset": spec.name,
        "git_commit": git_commit(),
    }
    params = {
        **{"preset": spec.name, **spec.model_dump(exclude={"name"})},
        "seed": seed,
        "accelerator": accelerator,
        "devices": devices,
        "strategy": strategy,
        "num_nodes": num_nodes,
        "dataset": data.data.dataset,
        "prepared_dir": str(prepared_dir),
        "limit_batches": limit_batches,
        **{f"n_{split}": len(ds) for split, ds in data.datasets.items()},
        "n_vocab": len(data.data.vocab),
        **dict(extra_params or {}),
    }
    logger = MLFlowLogger(
        experiment_name=settings.experiment_name,
        run_name=run_name or f"{arch}-{spec.name}",
        tracking_uri=settings.mlflow_tracking_uri,  # never Lightning's file:./mlruns default
        tags=tags,
    )
    checkpoint = ModelCheckpoint(
        monitor="val_loss", mode="min", save_top_k=1, filename="best-{epoch}-{step}"
    )
    run_setup = _RunSetup(params, checkpoint, settings.output_dir / "checkpoints")
    trainer = pl.Trainer(
        accelerator=accelerator,
        devices=devices,
        strategy=strategy,
        num_nodes=num_nodes,
        max_epochs=spec.epochs,
        # "warn": deterministic algorithms everywhere; a GPU op without one warns, not crashes.
        deterministic="warn",
        logger=logger,
        callbacks=[
            run_setup,
            checkpoint,
            EarlyStopping(monitor="val_loss", mode="min", patience=EARLY_STOPPING_PATIENCE),
            progress_bar(log_every_n_steps),
            ReleaseMemory(),
        ],
        log_every_n_steps=log_every_n_steps,
        limit_train_batches=limit_batches,
        limit_val_batches=limit_batches,
        use_distributed_sampler=False,  # the data module shards train/val itself, never test
        default_root_dir=settings.output_dir,
    )

    start = time.perf_counter()
    trainer.fit(module, datamodule=data)
    train_seconds = time.perf_counter() - start
    epochs_trained = trainer.current_epoch
    # Reloads the best checkpoint into `module`; every rank scores the whole test split.
    (test_metrics,) = trainer.test(module, datamodule=data, ckpt_path="best")
    assert run_setup.run_id is not None
    run_id = run_setup.run_id
    best_val = checkpoint.best_model_score
    metrics = {k: float(test_metrics[k]) for k in TEST_METRICS}
    if best_val is not None:
        metrics["best_val_loss"] = float(best_val)

    model_uri, registered_version = f"runs:/{run_id}/model", None
    if trainer.is_global_zero:
        model_uri, registered_version = _log_outputs(
            run_id,
            module,
            spec,
            data.data,
            {**metrics, "n_parameters": n_parameters, "train_seconds": train_seconds},
            registered_name(arch) if register else None,
        )
    log.info("%s run %s: %s, %.1fs of training", arch, run_id, metrics, train_seconds)
    return TrainResult(
        arch=arch,
        run_id=run_id,
        model_uri=model_uri,
        registered_version=registered_version,
        metrics=metrics,
        best_checkpoint=checkpoint.best_model_path,
        train_seconds=train_seconds,
        epochs_trained=epochs_trained,
        n_parameters=n_parameters,
    )


def _log_outputs(
    run_id: str,
    module: SentimentClassifier,
    preset: Preset,
    data: PreparedData,
    metrics: dict[str, float],
    registered_model_name: str | None,
) -> tuple[str, int | None]:
    """Figures, summary metrics and the raw-text model; the run ends FAILED if any of it fails."""
    client = MlflowClient()
    assert module.test_confusion is not None
    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics(metrics)
        for name, figure in (
            ("training_curves.png", curves_figure(client, run_id)),
            ("confusion_matrix.png", confusion_figure(module.test_confusion)),
        ):
            mlflow.log_figure(figure, name)
        info = log_sentiment_model(
            module.net.cpu(), preset, data.vocab, registered_model_name=registered_model_name
        )
    # MLflow 3 logs models as their own entities: `models:/m-<id>` names this one exactly.
    return info.model_uri, info.registered_model_version


def register_model(run_id: str, arch: str) -> int:
    """Register `runs:/<run_id>/model` as `imdb-sentiment-<arch>`; returns the new version.

    Aliases are left alone: promotion is decided elsewhere (models.registry).
    """
    require_choice("architecture", arch, ARCHS)
    configure_tracking()
    return int(mlflow.register_model(f"runs:/{run_id}/model", registered_name(arch)).version)


def _history(client: MlflowClient, run_id: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    points = sorted(client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp))
    return np.array([m.step for m in points]), np.array([m.value for m in points])


def curves_figure(client: MlflowClient, run_id: str) -> Figure:
    """Loss and accuracy against the optimizer step: per-batch training, per-epoch validation."""
    # Figure objects, not pyplot: no global state, no GUI backend, nothing to close.
    figure = Figure(figsize=(12, 4.5), layout="constrained")
    axes = figure.subplots(1, 2)
    for ax, what in zip(axes, ("loss", "acc"), strict=True):
        steps, values = _history(client, run_id, f"train_{what}")
        ax.plot(steps, values, color="tab:blue", alpha=0.35, lw=1, label="train (per batch)")
        if len(values) >= 20:  # a moving average keeps the trend readable over noisy batches
            window = len(values) // 20
            trend = np.convolve(values, np.ones(window) / window, mode="valid")
            ax.plot(steps[window - 1 :], trend, color="tab:blue", lw=2, label="train (smoothed)")
        steps, values = _history(client, run_id, f"val_{what}")
        ax.plot(steps, values, "o-", color="tab:orange", lw=2, label="validation (per epoch)")
        ax.set_xlabel("batch (optimizer step)")
        ax.set_ylabel("cross-entropy loss" if what == "loss" else "accuracy")
        ax.set_title("Loss" if what == "loss" else "Accuracy")
        ax.grid(alpha=0.3)
        ax.legend()
    return figure


def confusion_figure(matrix: Tensor) -> Figure:
    """The 2x2 test confusion matrix with counts and row percentages."""
    counts = matrix.numpy().astype(int)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    labels = ("negative", "positive")
    figure = Figure(figsize=(5, 4.5), layout="constrained")
    ax = figure.subplots()
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (i, j), n in np.ndenumerate(counts):
        ax.text(
            j,
            i,
            f"{n}\n{share[i, j]:.1%}",
            ha="center",
            va="center",
            fontsize=12,
            color="white" if share[i, j] > 0.5 else "black",
        )
    ax.set_xticks([0, 1], labels)
    ax.set_yticks([0, 1], labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"Test confusion matrix (n={counts.sum()})")
    return figure


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _parse_override(item: str) -> tuple[str, Any]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {item!r}")
    return key.strip(), _parse_value(value)


def _parse_devices(text: str) -> int | str | list[int]:
    if text.isdigit():
        return int(text)
    if "," in text:
        return [int(part) for part in text.split(",") if part]
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m models.train",
        description="Train one sentiment architecture and log it to MLflow (experiment "
        "imdb-sentiment). The data is prepared (cached) with the preset's vocabulary size and "
        "length first.",
    )
    parser.add_argument("--arch", required=True, choices=ARCHS)
    parser.add_argument("--dataset", default="imdb", choices=DATASETS)
    parser.add_argument("--data-path", help="IMDB archive or aclImdb/ folder (default: settings)")
    parser.add_argument("--preset", default=DEFAULT_PRESET, choices=PRESETS)
    parser.add_argument("--epochs", type=int, help="override the preset's epochs")
    parser.add_argument(
        "--set",
        dest="overrides",
        metavar="KEY=VALUE",
        action="append",
        type=_parse_override,
        default=[],
        help="override any preset field, e.g. --set embedding_dim=32 --set channels=[8,8,8]",
    )
    parser.add_argument("--limit", type=int, help="reviews per split (class-balanced), quick runs")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--accelerator", default="auto", help="auto, cpu, gpu, ...")
    parser.add_argument("--devices", default="auto", type=_parse_devices, help="auto, N or 0,1")
    parser.add_argument("--strategy", default="auto", help="auto, ddp, ...")
    parser.add_argument("--num-nodes", type=int, default=1)
    parser.add_argument(
        "--limit-batches", type=_parse_value, help="train/val batches per epoch (N or fraction)"
    )
    parser.add_argument(
        "--log-every-n-steps", type=int, help=f"default {LOG_EVERY_N_STEPS}, less on short epochs"
    )
    parser.add_argument("--run-name")
    parser.add_argument("--no-register", action="store_true", help="do not register the model")
    return parser


def main(argv: list[str] | None = None) -> TrainResult:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    overrides = dict(args.overrides)
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    try:  # before preparing any data
        spec = resolve_preset(args.arch, args.preset, overrides)
        check_limit(args.limit_batches)
        check_tracking_server(get_settings().mlflow_tracking_uri)
    except (ValueError, TrackingUnavailableError) as error:
        raise SystemExit(f"error: {error}") from None
    prepared_dir = prepare_dataset(
        args.dataset,
        args.data_path,
        vocab_size=spec.vocab_size,
        max_len=spec.max_len,
        limit=args.limit,
        seed=args.seed,
    )
    result = train(
        args.arch,
        prepared_dir,
        preset=args.preset,
        overrides=overrides,
        seed=args.seed,
        accelerator=args.accelerator,
        devices=args.devices,
        strategy=args.strategy,
        num_nodes=args.num_nodes,
        register=not args.no_register,
        run_name=args.run_name,
        extra_params={"limit": args.limit},
        limit_batches=args.limit_batches,
        log_every_n_steps=args.log_every_n_steps,
    )
    if rank_zero_only.rank == 0:
        print(json.dumps(result.as_dict(), indent=2))
    return result


if __name__ == "__main__":
    main()
