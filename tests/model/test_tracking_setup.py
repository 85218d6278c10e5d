"""The experiment a run lands in: created with an explicit artifact location and marked as a
model-training experiment, so MLflow 3's UI opens it on the training runs; what a run records of
its data, also when two runs record the same data at once."""

from __future__ import annotations

import threading
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.store.tracking.dbmodels.models import SqlDataset
from sqlalchemy.orm import Query

from config import Settings, get_settings
from data.prepare import PreparedData
from models.tracking import (
    EXPERIMENT_KIND,
    configure_tracking,
    get_or_create_experiment,
    log_datasets,
)


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


def test_two_runs_logging_the_same_new_dataset_at_once_both_record_it(
    tiny_prepared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLflow's store looks a dataset up, then inserts it: when two runs log the same new data
    version at once, the other run's insert can land in between and this one's then fails (a
    unique-key violation, BAD_REQUEST), the likely cause of one of two flow runs started
    together failing in training. The dataset is there by then: the run must record it, go on."""
    data = PreparedData.load(tiny_prepared)
    configure_tracking()
    client = MlflowClient()
    experiment_id = mlflow.get_experiment_by_name(get_settings().experiment_name).experiment_id
    first, second = (client.create_run(experiment_id).info.run_id for _ in range(2))
    dataset_lookups = 0
    real_all = Query.all

    def log_for(run_id: str) -> None:
        with mlflow.start_run(run_id=run_id):
            log_datasets(data)

    def other_run_commits_in_between(query: Query) -> list:
        nonlocal dataset_lookups
        found = real_all(query)
        if query.column_descriptions[0]["entity"] is SqlDataset:
            dataset_lookups += 1
            if dataset_lookups == 1:  # the second run's first look-up finds nothing...
                other = threading.Thread(target=log_for, args=(first,))  # ...then the first
                other.start()  # run inserts the datasets, in a thread of its own as a process
                other.join()  # of its own would
                return []
        return found

    monkeypatch.setattr(Query, "all", other_run_commits_in_between)
    log_for(second)
    for run_id in (first, second):
        contexts = {
            {tag.key: tag.value for tag in d.tags}["mlflow.data.context"]
            for d in client.get_run(run_id).inputs.dataset_inputs
        }
        assert contexts == {"train", "validation", "test"}
        client.set_terminated(run_id)
    assert dataset_lookups > 1  # the race happened, and was looked up again
