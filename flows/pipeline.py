"""The `imdb-sentiment` flow: data -> metadata -> train -> analyse -> compare -> register, promote.

    python -m flows.pipeline --help                  # run locally, no server needed
    prefect deployment run 'imdb-sentiment/weekly-retrain'   # run through a deployment

Parameters are validated before any work starts; training runs are never retried; models are
registered, and the champion alias moved, only after every model has trained and been analysed.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from prefect import flow, get_run_logger
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from config import require_choice
from data.prepare import DATASETS
from models.presets import ARCHS, DEFAULT_PRESET, PRESETS, get_preset
from models.tracking import configure_tracking
from tasks.analysis import analyse_model, behaviour_tests
from tasks.comparison import check_regression, compare_models
from tasks.data import compute_text_metadata, locate_data, prepare_data
from tasks.registry import register_and_promote_model
from tasks.report import publish_summary
from tasks.training import train_model


class PipelineParams(BaseModel):
    """Flow parameters, checked before any work: a bad value is named with the valid choices."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = "imdb"
    data_path: str | None = None
    archs: list[str] = Field(default_factory=lambda: list(ARCHS))
    preset: str = DEFAULT_PRESET
    epochs: dict[str, int] = Field(default_factory=dict)  # per architecture; empty = preset's
    limit: int | None = None  # reviews per split, for quick runs
    seed: int = 42
    devices: str | int = "auto"
    promote: bool = True
    allow_regression: bool = False  # promote even when the regression check raised an alert

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, value: str) -> str:
        return require_choice("dataset", value, DATASETS)

    @field_validator("archs")
    @classmethod
    def _archs(cls, value: list[str]) -> list[str]:
        unknown = [arch for arch in value if arch not in ARCHS]
        if unknown or not value:
            raise ValueError(
                f"unknown architecture {', '.join(map(repr, unknown)) or '(none given)'}; "
                f"choose from {', '.join(ARCHS)}"
            )
        return list(dict.fromkeys(value))

    @field_validator("preset")
    @classmethod
    def _preset(cls, value: str) -> str:
        return require_choice("preset", value, PRESETS)

    @field_validator("epochs")
    @classmethod
    def _epochs(cls, value: dict[str, int]) -> dict[str, int]:
        for arch, count in value.items():
            if arch not in ARCHS:
                raise ValueError(f"epochs given for unknown architecture {arch!r}")
            if count < 1:
                raise ValueError(f"epochs for {arch} must be at least 1, got {count}")
        return value

    @field_validator("limit")
    @classmethod
    def _limit(cls, value: int | None) -> int | None:
        if value is not None and value < 4:
            raise ValueError(f"limit must be at least 4 reviews per split, got {value}")
        return value

    @field_validator("devices")
    @classmethod
    def _devices(cls, value: str | int) -> str | int:
        if isinstance(value, str) and value != "auto":
            if not value.isdigit():
                raise ValueError(f"devices must be 'auto' or a positive count, got {value!r}")
            value = int(value)
        if isinstance(value, int) and value < 1:
            raise ValueError(f"devices must be 'auto' or a positive count, got {value}")
        return value

    def check_data_path(self) -> None:
        if self.data_path is not None and not Path(self.data_path).expanduser().exists():
            raise ValueError(f"data_path {self.data_path!r} does not exist")


def validate_params(**raw: object) -> PipelineParams:
    """Turn pydantic's report into one readable line per bad parameter."""
    try:
        params = PipelineParams(**raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'parameters'}: {e['msg'].removeprefix('Value error, ')}"
            for e in error.errors()
        )
        raise ValueError(f"invalid pipeline parameters: {problems}") from None
    params.check_data_path()
    return params


@flow(name="imdb-sentiment", log_prints=True)
def imdb_sentiment(
    dataset: str = "imdb",
    data_path: str | None = None,
    archs: list[str] | None = None,
    preset: str = DEFAULT_PRESET,
    epochs: dict[str, int] | None = None,
    limit: int | None = None,
    seed: int = 42,
    devices: str | int = "auto",
    promote: bool = True,
    allow_regression: bool = False,
) -> dict:
    """Prepare data; train, analyse and behaviour-test each model; compare; register and promote."""
    params = validate_params(
        dataset=dataset,
        data_path=data_path,
        archs=archs or list(ARCHS),
        preset=preset,
        epochs=epochs or {},
        limit=limit,
        seed=seed,
        devices=devices,
        promote=promote,
        allow_regression=allow_regression,
    )
    configure_tracking()  # fails fast, naming the URI, if the tracking server is unreachable
    logger = get_run_logger()
    encoding = get_preset(params.archs[0], params.preset)  # vocab/length shared by both archs

    source, source_hash = locate_data(params.dataset, params.data_path, params.seed)
    prepared_dir = prepare_data(
        params.dataset,
        source,
        source_hash,
        encoding.vocab_size,
        encoding.max_len,
        params.limit,
        params.seed,
    )
    metadata_path = compute_text_metadata(prepared_dir)

    trained = {
        arch: train_model(
            arch,
            prepared_dir,
            params.preset,
            params.epochs.get(arch),
            params.seed,
            params.devices,
            limit=params.limit,
        )
        for arch in params.archs
    }
    analyses = {
        arch: analyse_model(
            result["run_id"], result["model_uri"], prepared_dir, metadata_path, model_name=arch
        )
        for arch, result in trained.items()
    }
    behaviour = {
        arch: behaviour_tests(result["run_id"], result["model_uri"])
        for arch, result in trained.items()
    }
    regressions = {
        arch: check_regression(result["run_id"], arch) for arch, result in trained.items()
    }
    comparison = (
        compare_models(trained, prepared_dir, regressions)
        if set(trained) == {"dense", "cnn"}
        else None
    )
    # Only now, with every model trained and analysed, are versions registered.
    decisions = {
        arch: register_and_promote_model(
            result["run_id"],
            result["model_uri"],
            arch,
            prepared_dir,
            promote=params.promote,
            block_reason=(
                regressions[arch]["reason"]
                if regressions[arch]["alert"] and not params.allow_regression
                else None
            ),
        )
        for arch, result in trained.items()
    }
    summary = publish_summary(
        trained, decisions, behaviour, comparison["run_id"] if comparison else None, regressions
    )
    logger.info("\n%s", summary)
    return {
        "trained": trained,
        "analyses": analyses,
        "behaviour": behaviour,
        "regressions": regressions,
        "comparison": comparison,
        "decisions": decisions,
    }


def parse_epochs(text: str | None, archs: list[str]) -> dict[str, int]:
    """`3` (every architecture) or `dense=3,cnn=5`."""
    if not text:
        return {}
    try:
        if "=" not in text:
            return dict.fromkeys(archs, int(text))
        return {arch.strip(): int(n) for arch, n in (item.split("=") for item in text.split(","))}
    except ValueError:
        raise SystemExit(f"--epochs: expected N or ARCH=N[,ARCH=N], got {text!r}") from None


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m flows.pipeline",
        description="Run the imdb-sentiment flow locally: data, training, analysis, registration.",
    )
    parser.add_argument("--dataset", default="imdb", help=f"one of {', '.join(DATASETS)}")
    parser.add_argument("--data-path", default=None, help="aclImdb_v1.tar.gz or aclImdb/ folder")
    parser.add_argument("--archs", default=",".join(ARCHS), help="comma-separated: dense,cnn")
    parser.add_argument("--preset", default=DEFAULT_PRESET, help=f"one of {', '.join(PRESETS)}")
    parser.add_argument("--epochs", default=None, help="N for every model, or dense=N,cnn=M")
    parser.add_argument("--limit", type=int, default=None, help="reviews per split (quick runs)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--devices", default="auto", help="'auto' or a device count")
    parser.add_argument("--no-promote", action="store_true", help="register without promoting")
    parser.add_argument(
        "--allow-regression", action="store_true", help="promote despite a regression alert"
    )
    args = parser.parse_args(argv)
    archs = [a.strip() for a in args.archs.split(",") if a.strip()]
    params = {
        "dataset": args.dataset,
        "data_path": args.data_path,
        "archs": archs,
        "preset": args.preset,
        "epochs": parse_epochs(args.epochs, archs),
        "limit": args.limit,
        "seed": args.seed,
        "devices": args.devices,
        "promote": not args.no_promote,
        "allow_regression": args.allow_regression,
    }
    try:  # validate here too, so a bad flag fails before Prefect starts a server
        validate_params(**params)
    except ValueError as error:
        parser.error(str(error))
    return imdb_sentiment(**params)


if __name__ == "__main__":
    # The temporary server's telemetry heartbeat races its own first database migration and
    # prints a "database is locked" traceback; it sends nothing useful offline anyway.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    logging.basicConfig(level=logging.INFO)
    main()
