"""The experiment a run lands in: created with an explicit artifact location and marked as a
model-training experiment, so MLflow 3's UI opens it on the training runs."""

from __future__ import annotations

from pathlib import Path

import mlflow
from mlflow import MlflowClient

from config import Settings, get_settings
from models.tracking import EXPERIMENT_KIND, get_or_create_experiment


def test_new_and_older_experiments_open_on_the_training_runs(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    settings = Settings(
        mlflow_tracking_uri=uri,
        mlflow_artifact_root=tmp_path / "artifacts",
        experiment_name="fresh",
    )
    try:
        fresh = client.get_experiment(get_or_create_experiment(client, settings))
        assert fresh.tags["mlflow.experimentKind"] == "custom_model_development"
        assert fresh.artifact_location == (tmp_path / "artifacts").resolve().as_uri()

        # An experiment made before the tag existed gets it on the next run.
        older = client.create_experiment("older", artifact_location=(tmp_path / "a").as_uri())
        assert "mlflow.experimentKind" not in client.get_experiment(older).tags
        again = settings.model_copy(update={"experiment_name": "older"})
        assert get_or_create_experiment(client, again) == older
        assert client.get_experiment(older).tags.items() >= EXPERIMENT_KIND.items()
    finally:
        mlflow.set_tracking_uri(get_settings().mlflow_tracking_uri)
