"""Train one architecture on a prepared data folder, track it in MLflow, log the raw-text model.

    python -m models.train --arch cnn --dataset synthetic --epochs 1
    python -m models.train --arch cnn --dataset synthetic --epochs 1 \
        --accelerator cpu --devices 2 --strategy ddp --limit-batches 4

One MLflow run per call in the experiment `imdb-sentiment`. The run is created by Lightning's
MLFlowLogger on global rank 0 once the processes exist (so DDP never opens a second run), and
everything after training (test metrics, the temperature fitted on the validation split, figures,
the pyfunc model) is logged by rank 0 only.
The command line is models/cli.py; the callbacks and figures are models/callbacks.py and
models/figures.py.
"""

from __future__ import annotations

import json
import logging
import math
import runpy
import subprocess
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import mlflow
import pytorch_lightning as pl
import torch
from mlflow import MlflowClient
from pydantic import ValidationError
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
from pytorch_lightning.loggers import MLFlowLogger
from torch import nn

from config import PROJECT_ROOT, check_choice, describe_validation_error, get_settings
from data.prepare import PreparedData
from data.text import Vocabulary
from models.calibration import Calibration, binary_logits, fit_calibration
from models.callbacks import ReleaseMemory, RunSetup, progress_bar
from models.datamodule import IMDBDataModule
from models.figures import confusion_figure, curves_figure
from models.module import SentimentClassifier
from models.networks import SentimentNet, build_net
from models.presets import DEFAULT_PRESET, Arch, Preset, PresetName, check_seed, get_preset
from models.pyfunc import log_sentiment_model
from models.recovery import ProcessOwner
from models.registry import registered_name
from models.scores import SplitScores
from models.tracking import configure_tracking, fail_run_if_not_finite, log_datasets

log = logging.getLogger(__name__)

EARLY_STOPPING_PATIENCE = 2
LOG_EVERY_N_STEPS = 10  # MLflow writes and progress-bar refreshes (a GPU sync) per this many steps
# Per-batch curve points per epoch at least (when an epoch has that many batches): a one-epoch
# run of 352 batches logged 35 points at every 10 steps, too few to read a curve from.
MIN_LOGGED_POINTS = 100
TEST_METRICS = ("test_loss", "test_acc", "test_f1", "test_roc_auc")


@dataclass(frozen=True)
class TrainResult:
    arch: Arch
    run_id: str
    model_uri: str  # models:/m-<id>, the logged model (runs:/<run_id>/model on ranks > 0)
    registered_version: int | None  # None when not registered (or on DDP ranks other than 0)
    metrics: dict[str, float]  # test_* on the whole test split, best_val_loss
    best_checkpoint: str
    train_seconds: float  # wall time of `fit` (training and validation epochs)
    epochs_trained: int
    n_parameters: int
    # The test pass's per-review scores (`models.scores.SplitScores`), for the analysis to reuse;
    # None on DDP ranks other than 0.
    test_scores: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_preset(arch: Arch, preset: PresetName, overrides: Mapping[str, Any] | None) -> Preset:
    """The preset with overrides applied; any problem is one readable ValueError."""
    try:
        return get_preset(arch, preset, **dict(overrides or {}))
    except ValidationError as error:
        problems = describe_validation_error(error)
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
    """Every 10 steps, or more often when an epoch has fewer than 10 x MIN_LOGGED_POINTS batches,
    so every run's per-batch curves have MIN_LOGGED_POINTS points, or every batch, per epoch."""
    n_batches = math.ceil(n_train / batch_size)
    if isinstance(limit_batches, int):
        n_batches = min(n_batches, limit_batches)
    elif isinstance(limit_batches, float):
        n_batches = math.ceil(n_batches * limit_batches)
    return max(1, min(LOG_EVERY_N_STEPS, n_batches // MIN_LOGGED_POINTS))


def init_ngram_branch(net: nn.Module, spec: Preset, data: IMDBDataModule) -> dict[str, float]:
    """Fit the n-gram branch (if the preset has one) on the training split: naive-Bayes ratios and
    a logistic regression (`SentimentNet.fit_ngram_weights`), at fit time; the fitted weights are
    frozen and kept in the net's state dict. Returns its training loss, accuracy and seconds."""
    if not isinstance(net, SentimentNet) or net.ngram_weight is None or net.ngram_bias is None:
        return {}  # also any other module mapping ids to logits (a test may wrap the net)
    start = time.perf_counter()
    assert data.data is not None
    if net.ngram_negation_scope:
        net.set_negation_words(data.data.vocab)
    # The branch depends on the training split and its own settings only: the dense model and the
    # CNN of one flow run share one fit (the second model reuses the first's weights).
    key = (data.data.data_hash, data.data.data_version, spec.vocab_size, net.ngram_buckets,
           net.ngram_order, net.ngram_negation_scope, spec.ngram_c, spec.ngram_scale)  # fmt: skip
    if key in _NGRAM_FITS:
        weight, bias, fit = _NGRAM_FITS[key]
        net.set_ngram_weights(weight, bias)
    else:
        train_split = data.datasets["train"]
        fit = net.fit_ngram_weights(
            train_split.ids, train_split.labels, c=spec.ngram_c, scale=spec.ngram_scale
        )
        _NGRAM_FITS.clear()  # one entry: a flow run's data
        _NGRAM_FITS[key] = (
            net.ngram_weight.weight.detach().clone(),
            net.ngram_bias.detach().clone(),
            fit,
        )
    return {**fit, "ngram_fit_seconds": time.perf_counter() - start}


_NGRAM_FITS: dict[tuple, tuple[torch.Tensor, torch.Tensor, dict[str, float]]] = {}


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


def train(
    arch: Arch,
    prepared_dir: str | Path,
    *,
    preset: PresetName = DEFAULT_PRESET,
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
    check_seed(seed)
    if log_every_n_steps is not None and not (
        isinstance(log_every_n_steps, int) and log_every_n_steps >= 1
    ):
        raise ValueError(f"log_every_n_steps must be a positive integer, got {log_every_n_steps!r}")
    settings = get_settings()
    configure_tracking(settings)  # fails fast if the tracking server is unreachable

    pl.seed_everything(seed, workers=True)
    data = IMDBDataModule(prepared_dir, spec.batch_size, seed=seed, batching=spec.batching)
    data.setup()
    assert data.data is not None
    net = build_net(arch, spec.vocab_size, **spec.net_kwargs())
    ngram_fit = init_ngram_branch(net, spec, data)  # its seconds count as training time
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
        "data_version": data.data.data_version,
        "preset": spec.name,
        "git_commit": git_commit(),
        # The owner, so a run left RUNNING by a killed process can be told from a live one.
        **ProcessOwner.current().as_tags(),
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
        # Training reviews set aside as likely mislabelled (0 unless `drop_label_issues`).
        "label_issues_dropped": data.data.dropped_label_issues,
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
    run_setup = RunSetup(params, checkpoint, settings.output_dir / "checkpoints")
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
    metrics = {k: float(test_metrics[k]) for k in TEST_METRICS} | ngram_fit
    if best_val is not None:
        metrics["best_val_loss"] = float(best_val)
    # A diverged model (inf/nan metrics) ends its run FAILED and is never logged or registered.
    fail_run_if_not_finite(run_id, metrics, mark_run=trainer.is_global_zero)

    model_uri, registered_version, test_scores = f"runs:/{run_id}/model", None, None
    if trainer.is_global_zero:
        test_scores = str(_save_test_scores(module, data.data, settings.output_dir, run_id))
        calibration = _fit_calibration(module, data)
        model_uri, registered_version = _log_outputs(
            run_id,
            module,
            spec,
            data.data,
            {**metrics, "n_parameters": n_parameters, "train_seconds": train_seconds},
            registered_name(arch) if register else None,
            calibration,
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
        test_scores=test_scores,
    )


def _save_test_scores(
    module: SentimentClassifier, data: PreparedData, output_dir: Path, run_id: str
) -> Path:
    """The test pass's P(positive) and latent vectors, beside the ids of the reviews they score."""
    assert module.test_prob_positive is not None
    assert module.test_logit is not None and module.test_latent is not None
    samples, _ = data.split("test")
    scores = SplitScores(
        samples["review_id"].astype(str).to_numpy(),
        module.test_prob_positive.float().numpy(),
        module.test_logit.float().numpy(),
        module.test_latent.float().numpy(),
    )
    return scores.save(output_dir / "test_scores" / f"{run_id}.npz")


def _fit_calibration(module: SentimentClassifier, data: IMDBDataModule) -> Calibration:
    """Temperature scaling fitted on the whole validation split with the best checkpoint's net
    (`trainer.test` reloaded it), so served probabilities are calibrated (models/calibration.py)."""
    val = data.datasets["val"]
    logits = binary_logits(module.net, val.ids.numpy())
    calibration = fit_calibration(logits, val.labels.numpy(), split="val")
    log.info(
        "temperature %.3f fitted on %d validation reviews: NLL %.4f -> %.4f",
        calibration.temperature,
        calibration.n_reviews,
        calibration.nll,
        calibration.nll_calibrated,
    )
    return calibration


def _log_outputs(
    run_id: str,
    module: SentimentClassifier,
    preset: Preset,
    data: PreparedData,
    metrics: dict[str, float],
    registered_model_name: str | None,
    calibration: Calibration,
) -> tuple[str, int | None]:
    """Figures, summary metrics and the raw-text model; the run ends FAILED if any of it fails."""
    client = MlflowClient()
    assert module.test_confusion is not None
    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics(metrics)
        # temperature, val_nll, val_nll_calibrated; T also as a parameter of the logged model.
        mlflow.log_metrics(calibration.metrics())
        mlflow.log_param("temperature", calibration.temperature)
        log_datasets(data)
        for name, figure in (
            ("training_curves.png", curves_figure(client, run_id)),
            ("confusion_matrix.png", confusion_figure(module.test_confusion)),
        ):
            mlflow.log_figure(figure, name)
        info = log_sentiment_model(
            module.net.cpu(),
            preset,
            data.vocab,
            registered_model_name=registered_model_name,
            calibration=calibration,
        )
    # MLflow 3 logs models as their own entities: `models:/m-<id>` names this one exactly.
    return info.model_uri, info.registered_model_version


def register_model(run_id: str, arch: Arch) -> int:
    """Register `runs:/<run_id>/model` as `imdb-sentiment-<arch>`; returns the new version.

    Aliases are left alone: promotion is decided elsewhere (models.registry).
    """
    check_choice(arch, Arch, "architecture")
    configure_tracking()
    return int(mlflow.register_model(f"runs:/{run_id}/model", registered_name(arch)).version)


if __name__ == "__main__":
    # The command line is models.cli, which imports this module: run it as the script instead of
    # importing it back (`python -m models.train` stays the documented way to call it).
    runpy.run_module("models.cli", run_name="__main__")
