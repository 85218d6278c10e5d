"""`python -m flows.pipeline --devices 2`: one flow run whose training alone is a two-process DDP
job (Lightning's launcher re-runs the command per device: it used to re-run the whole flow).

The same run checks the flow's start-up recovery: an MLflow run and a registered version that a
killed process left behind (planted) are ended KILLED and marked interrupted before training.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient

from models.recovery import ProcessOwner
from models.registry import CHAMPION, DECISION_TAG, INTERRUPTED, PENDING, PROMOTED
from tasks.training import device_count
from tests.flows.helpers import QUICK_RUN, private_env, query, start_pipeline
from tests.processes import kill_marked, new_marker, wait_until_none_marked

pytestmark = pytest.mark.slow
TIMEOUT_S = 420


def dead_owner() -> ProcessOwner:
    process = subprocess.Popen(["true"])
    owner = ProcessOwner.current()
    process.wait()
    return replace(owner, pid=process.pid)


def test_two_devices_run_one_flow_and_one_two_process_training(tmp_path: Path) -> None:
    marker = new_marker()
    env = private_env(tmp_path, marker)
    env["CUDA_VISIBLE_DEVICES"] = ""  # 'auto' picks the CPU: two CPU processes with gloo

    # Planted: what a process killed mid-training and one killed mid-registration leave.
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    (tmp_path / "artifacts").mkdir()
    experiment_id = client.create_experiment(
        "imdb-sentiment", artifact_location=(tmp_path / "artifacts").as_uri()
    )
    abandoned = client.create_run(experiment_id, tags=dead_owner().as_tags()).info.run_id
    client.create_registered_model("imdb-sentiment-dense")
    pending_tags = {DECISION_TAG: PENDING, **dead_owner().as_tags()}
    client.create_model_version("imdb-sentiment-dense", "file:///nowhere", tags=pending_tags)

    args = [*QUICK_RUN, "--archs", "dense", "--devices", "2"]
    try:
        flow = start_pipeline(args, env, tmp_path, subprocess.PIPE)
        try:
            output, _ = flow.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            kill_marked(marker)
            output, _ = flow.communicate()
            pytest.fail(f"the flow did not finish in {TIMEOUT_S} s:\n{output[-5000:]}")
        assert flow.returncode == 0, output[-5000:]
        left = wait_until_none_marked(marker, 15)
        assert not left, f"still running after the flow ended: {left}"
    finally:
        kill_marked(marker)

    # One flow run; one two-process training job.
    assert output.count("Beginning flow run") == 1, output[-5000:]
    ((labels,),) = query(tmp_path / "prefect" / "prefect.db", "SELECT labels FROM flow_run")
    assert json.loads(labels)["owner.pid"] == str(flow.pid)  # so a later start can judge it
    assert output.count("Starting with 2 processes") == 1
    assert output.count("GLOBAL_RANK: 1, MEMBER: 2/2") == 1

    # One MLflow training run, trained with DDP on two devices, owned by the flow afterwards.
    runs = client.search_runs([experiment_id], "tags.arch = 'dense'")
    assert len(runs) == 1, [run.info.run_id for run in runs]
    (run,) = runs
    assert run.info.status == "FINISHED"
    assert (run.data.params["devices"], run.data.params["strategy"]) == ("2", "ddp")
    assert run.data.tags["owner.pid"] == str(flow.pid)
    assert {"test_acc", "test_loss"} <= set(run.data.metrics)

    # The start-up recovery ran before training.
    assert client.get_run(abandoned).info.status == "KILLED"
    versions = {
        str(v.version): v for v in client.search_model_versions("name='imdb-sentiment-dense'")
    }
    assert versions["1"].tags[DECISION_TAG] == INTERRUPTED
    assert versions["2"].tags[DECISION_TAG] == PROMOTED and versions["2"].run_id == run.info.run_id
    assert str(client.get_model_version_by_alias("imdb-sentiment-dense", CHAMPION).version) == "2"


def test_device_count_decides_where_training_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (device_count(1), device_count(3)) == (1, 3)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device_count("auto") == 1  # a CPU: in the flow's process
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert device_count("auto") == 4  # every GPU: a DDP job of its own
