"""The behaviour task on a trained model with the n-gram branch: the suite and its parts logged."""

from __future__ import annotations

import io

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from analysis.behaviour.cases import CHECKS
from analysis.behaviour.components import PARTS, part_metric_name
from analysis.behaviour.suite import metric_name
from config import get_settings
from models.train import TrainResult
from tasks.analysis import behaviour_tests


@pytest.mark.slow
def test_behaviour_task_logs_the_pass_rates_of_the_model_and_of_its_parts(
    trained: dict[str, TrainResult],
) -> None:
    """The parts' table holds the served model's own rates in its `model` column, and each part's
    rates land as metrics beside the model's (in a run of their own here, so the training runs the
    other tests read stay as trained)."""
    client = MlflowClient(get_settings().mlflow_tracking_uri)
    # The training runs' experiment (the active one), in a run without an `arch` tag.
    experiment = client.get_run(trained["cnn"].run_id).info.experiment_id
    run_id = client.create_run(experiment, run_name="behaviour-task-test").info.run_id
    report = behaviour_tests.fn(run_id, trained["cnn"].model_uri)

    metrics = client.get_run(run_id).data.metrics
    files = {a.path for a in client.list_artifacts(run_id, "behaviour")}
    assert {"behaviour/report.md", "behaviour/parts.md", "behaviour/parts.csv"} <= files
    table = pd.read_csv(
        io.StringIO(mlflow.artifacts.load_text(f"runs:/{run_id}/behaviour/parts.csv")),
        keep_default_na=False,
    )
    assert list(table.columns) == ["check", "kind", *PARTS]
    own = table[table["kind"] == ""].set_index("check")
    assert own["model"].to_dict() == pytest.approx(report.pass_rates)
    for check in CHECKS:
        assert metrics[metric_name(check)] == pytest.approx(report.pass_rates[check])
        for part in ("network", "branch"):
            assert metrics[part_metric_name(check, part)] == pytest.approx(own.loc[check, part])
    # The parts are not the model: on the trained network they disagree somewhere.
    assert not own["network"].equals(own["branch"])
