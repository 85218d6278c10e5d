"""The registered raw-text model behind MLflow's real scoring server (`mlflow models serve`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from config import get_settings
from models.registry import registered_name
from models.train import TrainResult
from tests.model.conftest import free_port

pytestmark = pytest.mark.slow
MLFLOW_CLI = Path(sys.executable).with_name("mlflow")
START_TIMEOUT_S = 120


def _get(url: str, timeout: float = 2.0) -> int:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status


@pytest.fixture(scope="module")
def server(
    trained: dict[str, TrainResult], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    version = trained["cnn"].registered_version
    port = free_port()
    log_path = tmp_path_factory.mktemp("serve") / "server.log"
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": get_settings().mlflow_tracking_uri,
        # The server execs `uvicorn` by name: the venv's bin must be on PATH, as when activated.
        "PATH": f"{MLFLOW_CLI.parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    command = [
        str(MLFLOW_CLI), "models", "serve",
        "-m", f"models:/{registered_name('cnn')}/{version}",
        "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port),
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        # Its own process group: the server spawns workers, and all of them must be stopped.
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"server exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                if _get(f"http://127.0.0.1:{port}/ping") == 200:
                    break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server not up after {START_TIMEOUT_S}s:\n{log_path.read_text()}")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}"
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=20)
        except ProcessLookupError:
            pass


def _invoke(url: str, payload: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{url}/invocations",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_served_model_scores_raw_reviews(server: str):
    reviews = ["A brilliant and moving film.", "Dull, tedious<br />and far too long.", ""]
    status, body = _invoke(server, {"dataframe_records": [{"review": r} for r in reviews]})
    assert status == 200, body
    predictions = body["predictions"]
    assert len(predictions) == len(reviews)
    for row in predictions:
        assert row["label"] in (0, 1)
        assert 0.0 <= row["prob_positive"] <= 1.0
        assert row["label"] == int(row["prob_positive"] > 0.5)


def test_served_model_rejects_missing_column(server: str):
    status, body = _invoke(server, {"dataframe_records": [{"text": "no review column"}]})
    assert status == 400
    assert "review" in body.get("message", "")
