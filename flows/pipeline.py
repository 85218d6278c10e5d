"""The `imdb-sentiment` flow: data -> metadata -> train -> analyse -> compare -> register, promote.

    python -m flows.pipeline --help                  # run locally, no server needed
    prefect deployment run 'imdb-sentiment/weekly-retrain'   # run through a deployment

Parameters are validated before any work starts; training runs are never retried; models are
registered, and the champion alias moved, only after every model has trained and been analysed.
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

from prefect import flow, get_run_logger
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationError,
    create_model,
)

from analysis.behaviour.suite import BehaviourReport
from analysis.common.thresholds import DEFAULT_THRESHOLDS, Thresholds
from analysis.errors.analyse import AnalysisSummary
from analysis.paired.champion import RegressionCheck
from config import describe_validation_error, get_settings
from data.prepare import DatasetName
from flows.hooks import explain_tracking_failure
from models.lifeline import start_lifeline
from models.presets import ARCHS, DEFAULT_PRESET, SEED_LIMIT, Arch, PresetName, get_preset
from models.registry import PromotionDecision
from models.tracking import TrackingUnavailableError, check_tracking_store, configure_tracking
from models.train import TrainResult, git_commit
from tasks.analysis import analyse_model, behaviour_tests
from tasks.comparison import ModelComparison, check_regression, compare_models
from tasks.data import (
    clean_training_split,
    compute_text_metadata,
    data_version,
    drain_intake,
    locate_data,
    prepare_data,
    train_label_probs,
)
from tasks.drift import drift_report
from tasks.registry import (
    nothing_new,
    recover_interrupted_registrations,
    register_and_promote_model,
)
from tasks.summary import publish_summary
from tasks.training import recover_interrupted_runs, train_model

# The flow's signature is the one declaration of its parameters: Prefect builds the deployment's
# parameter schema from it, `PipelineParams` (validation before any work) is built from it, and
# so is the command line. The checks that need code are attached to the types below, so Prefect
# applies them too when a deployment run starts.


def _unique(archs: Sequence[Arch]) -> list[Arch]:
    """Each architecture once, in the order given."""
    return list(dict.fromkeys(archs))


def _none_is_empty(epochs: dict[Arch, int] | None) -> dict[Arch, int]:
    """None (the default) and {} both mean each preset's own epochs; the flow reads a mapping."""
    return epochs or {}


def _device_count(value: object) -> object:
    """'auto' or a positive count; a count given as text (the CLI, `--param`) becomes an int."""
    if isinstance(value, str) and value != "auto":
        if not value.isdigit():
            raise ValueError("must be 'auto' or a positive count")
        value = int(value)
    if isinstance(value, int) and value < 1:
        raise ValueError("must be 'auto' or a positive count")
    return value


def _existing(path: str | None) -> str | None:
    """A given data path must exist: a typo fails here, not after minutes of other work."""
    if path is not None and not Path(path).expanduser().exists():
        raise ValueError("no such file or folder")
    return path


@dataclass(frozen=True)
class PipelineResult:
    """What one run of the flow produced, per architecture."""

    trained: dict[str, TrainResult]
    analyses: dict[str, AnalysisSummary]
    behaviour: dict[str, BehaviourReport]
    regressions: dict[str, RegressionCheck]
    comparison: ModelComparison | None  # None unless both architectures trained
    decisions: dict[str, PromotionDecision]
    skipped: str | None = None  # why nothing was trained ("nothing new to learn from")
    notes: list[str] = field(default_factory=list)  # intake, data version, drift: one line each


Archs = Annotated[Sequence[Arch], Field(min_length=1), AfterValidator(_unique)]
EpochsPerArch = Annotated[dict[Arch, PositiveInt] | None, AfterValidator(_none_is_empty)]
Devices = Annotated[Literal["auto"] | PositiveInt, BeforeValidator(_device_count)]
DataPath = Annotated[str | None, AfterValidator(_existing)]


@flow(name="imdb-sentiment", log_prints=True, on_failure=[explain_tracking_failure])
def imdb_sentiment(
    dataset: Annotated[DatasetName, Field(description="the corpus")] = "imdb",
    data_path: Annotated[
        DataPath,
        Field(
            description="aclImdb_v1.tar.gz or aclImdb/ folder (default: IMDB_ARCHIVE, else download)"
        ),
    ] = None,
    archs: Annotated[Archs, Field(description="architectures to train")] = ARCHS,
    preset: Annotated[PresetName, Field(description="hyperparameter preset")] = DEFAULT_PRESET,
    epochs: Annotated[
        EpochsPerArch, Field(description="epochs per architecture (default: the preset's)")
    ] = None,
    limit: Annotated[
        int | None, Field(ge=4, description="reviews per split, class-balanced (quick runs)")
    ] = None,
    seed: Annotated[
        int,
        Field(
            ge=0,
            lt=SEED_LIMIT,
            description="seed of the data split, sampling and training (0 <= seed < 2**32)",
        ),
    ] = 42,
    devices: Annotated[Devices, Field(description="'auto' or a device count")] = "auto",
    promote: Annotated[
        bool,
        Field(description="move the champion alias to a new version that scores at least as well"),
    ] = True,
    allow_regression: Annotated[
        bool, Field(description="promote even when the regression check raised an alert")
    ] = False,
    thresholds: Annotated[
        Thresholds, Field(description="what the analysis calls weak, a regression or confident")
    ] = DEFAULT_THRESHOLDS,
    use_intake: Annotated[
        bool, Field(description="train on the accepted intake batches too (data.intake)")
    ] = True,
    intake_version: Annotated[
        int | None,
        Field(ge=0, description="intake store version to train on (default: the latest)"),
    ] = None,
    force: Annotated[
        bool,
        Field(description="train even when nothing changed since the champions were trained"),
    ] = False,
    drop_label_issues: Annotated[
        bool,
        Field(
            description="train without the training reviews flagged as likely mislabelled "
            "(cleanlab over grouped cross-validation); the data version gets +clean.<digest>"
        ),
    ] = False,
) -> PipelineResult:
    """Prepare data; train, analyse and behaviour-test each model; compare; register and promote."""
    # The first statement, so `locals()` holds exactly the flow's parameters.
    params = validate_params(**locals())
    configure_tracking()  # fails fast, naming the URI, if the tracking server is unreachable
    logger = get_run_logger()
    start_lifeline()  # what this process starts dies with it, even on SIGKILL (models/lifeline.py)
    # Before any training: end what killed runs left RUNNING or half-registered.
    recover_interrupted_runs()
    recover_interrupted_registrations(params.archs)
    encoding = get_preset(params.archs[0], params.preset)  # vocab/length shared by both archs

    # New labelled reviews first: files waiting in the inbox become batches of the intake store.
    notes = drain_intake(params.dataset, params.data_path, params.seed) if params.use_intake else []
    source, source_hash = locate_data(params.dataset, params.data_path, params.seed)
    version = data_version(params.dataset, source_hash, params.intake_version, params.use_intake)
    notes.append(f"Data version: {version.name} ({version.intake_rows:,} intake reviews)")
    if not params.force:
        # What defines each model, as its training run records it (tags and params).
        defining = {
            arch: {
                "data_version": version.name,
                "preset": params.preset,
                "git_commit": git_commit(),
                "seed": str(params.seed),
                "limit": str(params.limit),
                "epochs": str(params.epochs.get(arch) or get_preset(arch, params.preset).epochs),
            }
            for arch in params.archs
        }
        unchanged = nothing_new(defining)
        if unchanged:
            publish_summary({}, {}, skipped=unchanged, notes=notes)
            logger.info("Nothing new to learn from: %s", unchanged)
            return PipelineResult({}, {}, {}, {}, None, {}, skipped=unchanged, notes=notes)
    prepared_dir = prepare_data(
        params.dataset,
        source,
        source_hash,
        encoding.vocab_size,
        encoding.max_len,
        params.limit,
        params.seed,
        version,
    )
    metadata_path = compute_text_metadata(prepared_dir)
    # Out-of-sample probabilities of the training reviews, once per data version: both analyses
    # report the training split's likely label errors from them, and the option below drops them.
    label_probs = train_label_probs(prepared_dir)
    train_dir = (
        clean_training_split(prepared_dir, label_probs)
        if params.drop_label_issues
        else prepared_dir
    )

    trained = {
        arch: train_model(
            arch,
            train_dir,
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
            run.run_id,
            run.model_uri,
            prepared_dir,
            metadata_path,
            model_name=arch,
            thresholds=params.thresholds,
            label_probs=label_probs,
            test_scores=run.test_scores,
        )
        for arch, run in trained.items()
    }
    behaviour = {arch: behaviour_tests(run.run_id, run.model_uri) for arch, run in trained.items()}
    regressions = {
        arch: check_regression(run.run_id, arch, params.thresholds) for arch, run in trained.items()
    }
    comparison = (
        compare_models({arch: trained[arch].run_id for arch in ARCHS}, prepared_dir, regressions)
        if set(ARCHS) <= set(trained)
        else None
    )
    # How the data moved since the champion was trained (before a new champion is chosen).
    notes += drift_report(
        params.archs[0], train_dir, {a: r.run_id for a, r in trained.items()}
    ).splitlines()
    # Only now, with every model trained and analysed, are versions registered.
    decisions = {
        arch: register_and_promote_model(
            run.run_id,
            run.model_uri,
            arch,
            prepared_dir,
            promote=params.promote,
            block_reason=regressions[arch].blocks_promotion(params.allow_regression),
        )
        for arch, run in trained.items()
    }
    summary = publish_summary(
        trained,
        decisions,
        behaviour,
        comparison.run_id if comparison else None,
        regressions,
        notes=notes,
    )
    logger.info("\n%s", summary)
    return PipelineResult(
        trained, analyses, behaviour, regressions, comparison, decisions, notes=notes
    )


def _params_model(fn: Callable[..., Any]) -> type[BaseModel]:
    """A model with one field per parameter of `fn`: its annotated type (checks included), default.

    The defaults are validated too, so `archs` is always a list and `epochs` always a mapping.
    """
    hints = get_type_hints(fn, include_extras=True)
    fields: dict[str, Any] = {
        name: (hints[name], parameter.default)
        for name, parameter in inspect.signature(fn).parameters.items()
    }
    return create_model(
        "PipelineParams",
        __config__=ConfigDict(extra="forbid", validate_default=True),
        __doc__="Flow parameters, checked before any work: a bad value is named with the choices.",
        **fields,
    )


PipelineParams = _params_model(imdb_sentiment.fn)


def validate_params(**raw: Any) -> BaseModel:
    """The parameters as a `PipelineParams`; a ValueError naming every bad parameter and value."""
    try:
        return PipelineParams(**raw)
    except ValidationError as error:
        raise ValueError(
            f"invalid pipeline parameters: {describe_validation_error(error)}"
        ) from None


def parse_epochs(text: str | None, archs: Sequence[str]) -> dict[str, int]:
    """`3` (every architecture) or `dense=3,cnn=5`."""
    if not text:
        return {}
    try:
        if "=" not in text:
            return dict.fromkeys(archs, int(text))
        return {arch.strip(): int(n) for arch, n in (item.split("=") for item in text.split(","))}
    except ValueError:
        raise SystemExit(f"--epochs: expected N or ARCH=N[,ARCH=N], got {text!r}") from None


def _comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(
            f"expected a JSON object, got {text!r} ({error})"
        ) from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def _show(value: object) -> str:
    """A default as it would be typed on the command line."""
    if isinstance(value, BaseModel):
        return json.dumps(value.model_dump())
    if isinstance(value, tuple | list):
        return ",".join(map(str, value))
    return str(value)


def build_parser() -> argparse.ArgumentParser:
    """One flag per flow parameter, from `PipelineParams`: `--data-path` for `data_path`.

    Values stay text and pydantic converts them (`--limit 120`), so every bad value is reported
    the same way. The exceptions: `--archs dense,cnn`; `--epochs N` or `dense=N,cnn=M` (see
    `parse_epochs`); a JSON object for a model (`--thresholds '{"loss_rise": 0.2}'`); a boolean
    is a switch away from its default (`--no-promote`, `--allow-regression`).
    """
    parser = argparse.ArgumentParser(
        prog="python -m flows.pipeline",
        description="Run the imdb-sentiment flow locally: data, training, analysis, registration.",
        argument_default=argparse.SUPPRESS,  # absent flags take the flow's defaults
    )
    for name, info in PipelineParams.model_fields.items():
        flag = "--" + name.replace("_", "-")
        kind, default = info.annotation, info.default
        help_text = info.description or ""
        if default is not None and kind is not bool:
            help_text += f" (default: {_show(default)})"
        if kind is bool and default:
            parser.add_argument(
                f"--no-{flag[2:]}", dest=name, action="store_false", help=f"do not {help_text}"
            )
        elif kind is bool:
            parser.add_argument(flag, action="store_true", help=help_text)
        elif name == "archs":
            metavar = "{" + ",".join(ARCHS) + "}[,...]"
            parser.add_argument(flag, type=_comma_list, metavar=metavar, help=help_text)
        elif name == "epochs":
            parser.add_argument(flag, metavar="N|ARCH=N,...", help=help_text)
        elif isinstance(kind, type) and issubclass(kind, BaseModel):
            parser.add_argument(flag, type=_json_object, metavar="JSON", help=help_text)
        elif get_origin(kind) is Literal:
            metavar = "{" + ",".join(map(str, get_args(kind))) + "}"
            parser.add_argument(flag, metavar=metavar, help=help_text)
        else:
            parser.add_argument(flag, help=help_text)
    return parser


def main(argv: list[str] | None = None) -> PipelineResult:
    parser = build_parser()
    raw = vars(parser.parse_args(argv))
    if "epochs" in raw:
        raw["epochs"] = parse_epochs(raw["epochs"], raw.get("archs", ARCHS))
    try:  # validate here too, so a bad flag fails before Prefect starts a server
        params = validate_params(**raw)
    except ValueError as error:
        parser.error(str(error))
    try:  # and the tracking store, in a second rather than after Prefect's start-up
        check_tracking_store(get_settings().mlflow_tracking_uri)
    except TrackingUnavailableError as error:
        parser.exit(1, f"error: {error}\n")
    start_lifeline()  # before Prefect starts its temporary server, so that dies with us too
    return imdb_sentiment(**dict(params))


if __name__ == "__main__":
    # The temporary server's telemetry heartbeat races its own first database migration and
    # prints a "database is locked" traceback; it sends nothing useful offline anyway.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # The temporary server's first start migrates a new database; on a busy 2-core machine that
    # took longer than Prefect's 20 s default and the run failed before it began.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    logging.basicConfig(level=logging.INFO)
    main()
