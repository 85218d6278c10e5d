"""Reading and writing analysis artifacts in MLflow: the only module here that talks to MLflow.

Every comparison reads the runs it compares back from the tracking store, so a champion trained
in an earlier flow run is compared exactly like today's models.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient

from analysis.common.schema import validate_samples

ANALYSIS_DIR = "analysis"
SAMPLES_ARTIFACT = f"{ANALYSIS_DIR}/samples.parquet"
IMPORTANCE_ARTIFACT = f"{ANALYSIS_DIR}/token_importance.csv"
LOCAL_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves a local store by default


def _logged_artifact(run_id: str, path: str, read: Callable[[str], pd.DataFrame]) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as tmp:
        return read(
            mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, dst_path=tmp)
        )


def logged_samples(run_id: str) -> pd.DataFrame:
    """The per-review table a run's analysis logged, checked against the schema."""
    table = _logged_artifact(run_id, SAMPLES_ARTIFACT, pd.read_parquet)
    return validate_samples(table, name=f"run {run_id[:8]}'s")


def logged_token_importance(run_id: str) -> pd.DataFrame | None:
    """The token importance table a run logged, or None for a run analysed before it existed."""
    names = {a.path for a in MlflowClient().list_artifacts(run_id, ANALYSIS_DIR)}
    if IMPORTANCE_ARTIFACT not in names:
        return None
    # keep_default_na=False: the words "null" and "nan" are tokens, not missing values.
    return _logged_artifact(
        run_id, IMPORTANCE_ARTIFACT, lambda path: pd.read_csv(path, keep_default_na=False)
    )


def logged_model(uri: str):
    """The raw-text model behind an MLflow URI (`runs:/<id>/model`, `models:/<name>/<version>`),
    unwrapped: `.net`, `.vocab`, `.encode`, `.predict`."""
    return mlflow.pyfunc.load_model(uri).unwrap_python_model()


def run_metrics(run_id: str, keys: Iterable[str] | None = None) -> dict[str, float]:
    """A run's latest metric values (only `keys`, when given)."""
    metrics = MlflowClient().get_run(run_id).data.metrics
    return dict(metrics) if keys is None else {k: v for k, v in metrics.items() if k in set(keys)}


def run_tags(run_id: str) -> dict[str, str]:
    """A run's tags."""
    return dict(MlflowClient().get_run(run_id).data.tags)


def run_params(run_id: str) -> dict[str, str]:
    """A run's parameters (as MLflow stores them: strings)."""
    return dict(MlflowClient().get_run(run_id).data.params)


def run_url(run_id: str) -> str:
    """Link to a run in the MLflow UI (the tracking server's own, or a local `mlflow ui`)."""
    uri = mlflow.get_tracking_uri()
    base = uri.rstrip("/") if uri.startswith("http") else LOCAL_UI
    experiment_id = MlflowClient().get_run(run_id).info.experiment_id
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"


def log_folder(run_id: str, folder: Path, artifact_path: str) -> None:
    """Log every file under `folder` to the run, under `artifact_path`."""
    with mlflow.start_run(run_id=run_id):
        mlflow.log_artifacts(str(folder), artifact_path=artifact_path)
