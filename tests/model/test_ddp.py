"""Lightning's own DDP with two CPU processes, through the CLI: one MLflow run, logged by rank 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from config import PROJECT_ROOT
from tests.model.conftest import TINY_OVERRIDES, TINY_SEED

pytestmark = pytest.mark.slow
TIMEOUT_S = 300


def test_ddp_two_cpu_processes_log_one_run(tmp_path: Path, isolated_stores: Path):
    tracking_uri = f"sqlite:///{tmp_path / 'ddp.db'}"  # a private store: exactly one run expected
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "IMDB_SENTIMENT_ARTIFACT_ROOT": str(tmp_path / "artifacts"),
        "IMDB_SENTIMENT_OUTPUT_DIR": str(tmp_path / "outputs"),
        "OMP_NUM_THREADS": "1",  # two processes on a small shared machine
        "PYTHONUNBUFFERED": "1",
    }
    command = [sys.executable, "-m", "models.train", "--arch", "cnn", "--dataset", "synthetic"]
    for key, value in TINY_OVERRIDES.items():
        command += ["--set", f"{key}={json.dumps(value)}"]
    command += [
        "--epochs", "1", "--seed", str(TINY_SEED), "--limit-batches", "3",
        "--log-every-n-steps", "1", "--accelerator", "cpu", "--devices", "2", "--strategy", "ddp",
        "--no-register",
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        cwd=tmp_path,  # nothing may land in the working directory (./mlruns, lightning_logs)
        env={**env, "PYTHONPATH": str(PROJECT_ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # so a hung rank can be killed with its parent
    )
    try:
        output, _ = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"DDP training did not finish in {TIMEOUT_S}s:\n{output[-5000:]}")
    assert process.returncode == 0, output[-5000:]
    assert "Starting with 2 processes" in output  # Lightning's own DDP launcher really ran

    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("imdb-sentiment")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1, [r.info.run_id for r in runs]
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["devices"] == "2" and run.data.params["strategy"] == "ddp"
    for key in ("test_loss", "test_acc", "test_f1", "test_roc_auc", "n_parameters"):
        assert key in run.data.metrics, key
    # Each rank ran 3 batches, rank 0 logged its own steps once each.
    assert len(client.get_metric_history(run.info.run_id, "train_loss")) == 3
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"training_curves.png", "confusion_matrix.png"} <= artifacts
    assert output.count('"run_id"') == 1  # only rank 0 prints the result
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "lightning_logs").exists()
