"""Project settings and paths, resolved from the repository root (never the working directory).

A Prefect worker runs flows from wherever it was started, so every path here is absolute.
Values come from environment variables (or a `.env` file at the root) and fall back to the
defaults below; `get_settings()` is the one entry point.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar, get_args

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent

# MLflow draws a progress bar for every artifact download, which buries the pipeline's own logs.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
IMDB_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
EXPERIMENT_NAME = "imdb-sentiment"

T = TypeVar("T")


def check_choice(value: T, choices: Any, what: str) -> T:
    """`value` if it is one of the values of the `Literal` type `choices`, else a ValueError.

    For plain functions that take a name from callers (an architecture, a preset, a dataset):
    pydantic checks `Literal` fields itself, a function call is checked here, and both name the
    bad value and the valid choices.
    """
    valid = get_args(choices)
    if not valid:
        raise TypeError(f"choices must be a Literal type, got {choices!r}")
    if value not in valid:
        raise ValueError(f"unknown {what} {value!r}; choose one of {', '.join(map(str, valid))}")
    return value


def describe_validation_error(error: ValidationError) -> str:
    """Pydantic's report as one line: "field: message (got value)" per problem, joined by "; ".

    A problem with the whole object (a model validator) has no field: it is named by the model,
    and its input (every field) is left out.
    """
    problems: list[str] = []
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        if item["loc"]:
            problems.append(f"{'.'.join(map(str, item['loc']))}: {message} (got {item['input']!r})")
        else:
            problems.append(f"{error.title}: {message}")
    return "; ".join(problems)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=PROJECT_ROOT / ".env", env_file_encoding="utf-8", extra="ignore"
    )

    # Data
    imdb_archive: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("IMDB_ARCHIVE", "imdb_archive"),
        description="IMDB archive (.tar.gz) or extracted aclImdb/ folder to use instead of downloading.",
    )
    imdb_url: str = Field(default=IMDB_URL, validation_alias=AliasChoices("IMDB_URL", "imdb_url"))
    imdb_sha256: str = Field(
        default=IMDB_SHA256, validation_alias=AliasChoices("IMDB_SHA256", "imdb_sha256")
    )
    cache_dir: Path = Field(
        default=PROJECT_ROOT / ".cache",
        validation_alias=AliasChoices("IMDB_SENTIMENT_CACHE_DIR", "cache_dir"),
        description="Downloaded archives, parsed tables and text metadata, keyed by content hash.",
    )
    train_subset: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("IMDB_SENTIMENT_TRAIN_SUBSET", "train_subset"),
        description="Keep only these source training reviews (one review id a line, or a "
        "`python -m data.intake simulate` manifest.json: its baseline); recorded in data_version.",
    )
    # Intake of new labelled reviews (data/intake.py); None: a folder under cache_dir.
    intake_store: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("IMDB_SENTIMENT_INTAKE_STORE", "intake_store"),
        description="Delta table of accepted new reviews (default <cache_dir>/intake/reviews).",
    )
    intake_inbox: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("IMDB_SENTIMENT_INBOX", "intake_inbox"),
        description="Folder `python -m data.intake drain` ingests (default <cache_dir>/inbox).",
    )

    # Tracking
    mlflow_tracking_uri: str = Field(
        default=f"sqlite:///{PROJECT_ROOT / 'mlflow' / 'mlflow.db'}",
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "mlflow_tracking_uri"),
    )
    mlflow_artifact_root: Path = Field(
        default=PROJECT_ROOT / "mlflow" / "artifacts",
        validation_alias=AliasChoices("IMDB_SENTIMENT_ARTIFACT_ROOT", "mlflow_artifact_root"),
        description="Artifact location of the experiment when it is created on a local store.",
    )
    experiment_name: str = Field(
        default=EXPERIMENT_NAME,
        validation_alias=AliasChoices("IMDB_SENTIMENT_EXPERIMENT", "experiment_name"),
    )

    # Outputs that are not tracked (checkpoints, local reports)
    output_dir: Path = Field(
        default=PROJECT_ROOT / "reports",
        validation_alias=AliasChoices("IMDB_SENTIMENT_OUTPUT_DIR", "output_dir"),
    )

    @property
    def data_cache_dir(self) -> Path:
        return self.cache_dir / "data"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings. Tests that change the environment call `get_settings.cache_clear()`."""
    return Settings()
