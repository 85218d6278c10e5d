"""MLflow set-up shared by training, analysis and the flow: tracking URI, experiment, fail-fast probe.

Two MLflow defaults are wrong for this project and are overridden here:
- an http(s) tracking server that is down makes MLflow retry for minutes; we probe `/health` with
  a short timeout first and fail at once, naming the URI;
- on a database store (the default local SQLite) a new experiment's artifacts go to ./mlruns of
  whatever directory the process runs in; we create the experiment with an explicit
  `artifact_location` (settings.mlflow_artifact_root) instead;
- a SQLite store that cannot be written (read-only file or folder, a path under a regular file)
  fails deep inside SQLAlchemy with a long traceback; we check it first and name the path.

A run whose metrics are not finite (it diverged) is marked FAILED here and never registered
(`fail_run_if_not_finite`).
"""

from __future__ import annotations

import logging
import math
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import mlflow
import mlflow.data
import sqlalchemy.engine
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode

from config import Settings, get_settings
from data.prepare import PreparedData

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 3.0
# Stores whose server chooses the artifact location itself; everything else is a database or file
# store where MLflow would fall back to ./mlruns of the current directory.
_SERVER_SCHEMES = ("http", "https", "databricks")


class TrackingUnavailableError(RuntimeError):
    """The MLflow tracking server named by the settings cannot be reached."""


def check_tracking_server(uri: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Raise `TrackingUnavailableError` naming `uri` if an http(s) server does not answer `/health`.

    Non-http stores (sqlite, files) need no server and pass. A 4xx answer still proves the server
    is up (a proxy without `/health`, say); connection errors, timeouts and 5xx do not.
    """
    if urllib.parse.urlsplit(uri).scheme not in ("http", "https"):
        return
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return
    except urllib.error.HTTPError as error:
        if error.code < 500:
            log.warning(
                "MLflow server %s answered %s on /health; assuming it is up", uri, error.code
            )
            return
        reason: object = f"HTTP {error.code}"
    except (urllib.error.URLError, OSError) as error:  # refused, DNS failure, timeout
        reason = getattr(error, "reason", error)
    raise TrackingUnavailableError(
        f"MLflow tracking server {uri} is unreachable ({reason}); start it or point "
        "MLFLOW_TRACKING_URI at a reachable server or a sqlite:/// store"
    )


def _sqlite_problem(path: Path) -> str | None:
    """Why SQLite could not write a database at `path` (None: it can)."""
    if path.exists():
        if not path.is_file():
            return "it is not a file"
        if not os.access(path, os.W_OK):
            return "the file is read-only"
        if not os.access(path.parent, os.W_OK | os.X_OK):
            # SQLite writes its journal next to the database.
            return f"its folder {path.parent} is read-only"
        return None
    ancestor = path.parent  # MLflow creates missing folders: the nearest existing one matters
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{ancestor} is a file, not a folder"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"the folder {ancestor} is read-only"
    return None


def check_sqlite_store(uri: str) -> None:
    """Raise `TrackingUnavailableError` naming the path if a `sqlite:` store cannot be written.

    Other stores pass (a server checks its own storage); so does an in-memory database.
    """
    if urllib.parse.urlsplit(uri).scheme.partition("+")[0] != "sqlite":
        return
    database = sqlalchemy.engine.make_url(uri).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database).expanduser().absolute()
    problem = _sqlite_problem(path)
    if problem:
        raise TrackingUnavailableError(
            f"MLflow store {path} cannot be written: {problem}; fix the path or its permissions "
            "(chmod/chown), or point MLFLOW_TRACKING_URI at a writable sqlite:/// path or a server"
        )


def check_tracking_store(uri: str) -> None:
    """The store at `uri` is usable for writing: a server answers, a SQLite file is writable."""
    check_tracking_server(uri)
    check_sqlite_store(uri)


def needs_artifact_location(uri: str) -> bool:
    return urllib.parse.urlsplit(uri).scheme not in _SERVER_SCHEMES


# MLflow 3's UI opens an experiment on the page its kind names; without the tag it guesses, and
# guessed the GenAI overview (traces, token usage: all empty) for this experiment of training runs.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


def get_or_create_experiment(client: MlflowClient, settings: Settings) -> str:
    """Id of `settings.experiment_name`, created with an explicit artifact location if needed,
    and tagged as a model-training experiment (an older experiment gets the tag too)."""
    name = settings.experiment_name
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        location = None
        if needs_artifact_location(client.tracking_uri):
            settings.mlflow_artifact_root.mkdir(parents=True, exist_ok=True)
            location = settings.mlflow_artifact_root.resolve().as_uri()
        try:
            return client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_KIND)
        except MlflowException as error:  # another process created it in between
            if error.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
                raise
            experiment = client.get_experiment_by_name(name)
            assert experiment is not None
    if experiment.lifecycle_stage == "deleted":
        raise MlflowException(
            f"experiment {name!r} is deleted in {client.tracking_uri}; restore it "
            "(mlflow experiments restore) or set IMDB_SENTIMENT_EXPERIMENT to another name"
        )
    for key, value in EXPERIMENT_KIND.items():
        if experiment.tags.get(key) != value:
            client.set_experiment_tag(experiment.experiment_id, key, value)
    return experiment.experiment_id


def configure_tracking(settings: Settings | None = None) -> str:
    """Point MLflow at the configured store, check it is reachable, and select the experiment.

    Returns the experiment id. Safe to call from every process (DDP ranks race benignly). An
    unreachable server or an unwritable SQLite store raises `TrackingUnavailableError` (one line).
    """
    settings = settings or get_settings()
    uri = settings.mlflow_tracking_uri
    check_tracking_store(uri)
    mlflow.set_tracking_uri(uri)
    experiment_id = get_or_create_experiment(MlflowClient(uri), settings)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


class NonFiniteMetricsError(RuntimeError):
    """A trained model's metrics are not finite (it diverged): it must not be registered."""


def fail_run_if_not_finite(
    run_id: str, metrics: Mapping[str, float], *, mark_run: bool = True
) -> None:
    """Raise `NonFiniteMetricsError` if any metric is inf or nan; with `mark_run`, first log the
    metrics and the reason to the run and end it FAILED (DDP ranks other than 0 pass False)."""
    bad = {name: value for name, value in metrics.items() if not math.isfinite(value)}
    if not bad:
        return
    listed = ", ".join(f"{name}={value}" for name, value in bad.items())
    message = (
        f"training diverged: {listed} (run {run_id}, marked FAILED, model not logged or "
        "registered); lower learning_rate or check the data"
    )
    if mark_run:
        with mlflow.start_run(run_id=run_id):  # the exception below ends the run FAILED
            mlflow.log_metrics(dict(metrics))
            mlflow.set_tag("failure", message)
            raise NonFiniteMetricsError(message)
    raise NonFiniteMetricsError(message)


# MLflow's dataset contexts for the prepared splits ("new": held-out rows of new intake batches).
DATASET_CONTEXTS = {"train": "train", "val": "validation", "test": "test", "new": "new_holdout"}


def log_datasets(data: PreparedData) -> None:
    """Record what the active run saw, one MLflow dataset per split (the UI's Dataset column).

    Only ids and labels are logged as the dataset's schema and profile, never review text; the
    name is the data version (`data.versions`), the digest the prepared data's hash and split.
    """
    for split, context in DATASET_CONTEXTS.items():
        frame, _ = data.split(split)
        if frame.empty:
            continue
        dataset = mlflow.data.from_pandas(
            frame[["review_id", "label"]],
            source=f"{data.data_version}/{split}",
            targets="label",
            name=data.data_version,
            digest=f"{data.data_hash[:10]}-{split}",
        )
        _log_input(dataset, context)


# MLflow's store looks a dataset up by (experiment, name, digest) and inserts it when missing, in
# two steps: two runs logging the same new data version at once (two flow runs started together)
# can both miss it, and the second insert then fails on the unique key (BAD_REQUEST). By then the
# dataset exists, so a second attempt finds it.
DATASET_ATTEMPTS = 3


def _log_input(dataset: mlflow.data.Dataset, context: str) -> None:
    for attempt in range(1, DATASET_ATTEMPTS + 1):
        try:
            mlflow.log_input(dataset, context=context)
            return
        except MlflowException as error:
            if attempt == DATASET_ATTEMPTS:
                raise
            log.info("logging dataset %s (%s) again: %s", dataset.name, context, error.message)
            time.sleep(0.5 * attempt)
