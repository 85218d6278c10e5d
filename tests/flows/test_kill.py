"""`kill -9` of `python -m flows.pipeline` mid-run: nothing it started survives (Prefect's
temporary server included), and the next start ends the MLflow run and the Prefect flow run it
left RUNNING (KILLED, CRASHED) with the reason."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.flows.helpers import QUICK_RUN, private_env, query, start_pipeline
from tests.processes import kill_marked, marked, new_marker, wait_until_none_marked

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc"),
]
START_TIMEOUT_S = 300
RECOVER = (
    "import json; from tasks.training import recover_interrupted_runs; "
    "print(json.dumps(recover_interrupted_runs.fn(flow_name='imdb-sentiment')))"
)


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_sigkill_mid_run_leaves_no_process_and_the_next_start_cleans_up(tmp_path: Path) -> None:
    marker = new_marker()
    env = private_env(tmp_path, marker)
    mlflow_db, prefect_db = tmp_path / "mlflow.db", tmp_path / "prefect" / "prefect.db"
    log = tmp_path / "flow.log"
    try:
        with log.open("w") as output:
            flow = start_pipeline(QUICK_RUN, env, tmp_path, output)
        deadline = time.monotonic() + START_TIMEOUT_S
        running: list[tuple] = []
        while flow.poll() is None and time.monotonic() < deadline:
            running = query(mlflow_db, "SELECT run_uuid FROM runs WHERE status = 'RUNNING'")
            if running:
                break
            time.sleep(0.1)
        assert running, f"no training run started:\n{log.read_text()[-3000:]}"
        port = int(re.search(r"temporary server on http://127.0.0.1:(\d+)", log.read_text())[1])
        before = marked(marker)
        flow.send_signal(signal.SIGKILL)
        flow.wait()

        left = wait_until_none_marked(marker, 15)
        assert not left, f"outlived the killed flow (of {before}): {left}"
        assert not listening(port), f"Prefect's temporary server still listens on {port}"

        # What the kill left in the stores.
        assert query(mlflow_db, f"SELECT status FROM runs WHERE run_uuid = '{running[0][0]}'") == [
            ("RUNNING",)
        ]
        assert query(prefect_db, "SELECT state_type FROM flow_run") == [("RUNNING",)]

        # The next flow start's recovery, on its own (a whole second flow run is slow).
        recovery = subprocess.run(
            [sys.executable, "-c", RECOVER],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
        )
        assert recovery.returncode == 0, recovery.stderr[-3000:]
        outcome = json.loads(recovery.stdout.strip().splitlines()[-1])
        assert running[0][0] in outcome["mlflow_runs_killed"]
        assert len(outcome["flow_runs_crashed"]) == 1
    finally:
        kill_marked(marker)

    run = MlflowClient(env["MLFLOW_TRACKING_URI"]).get_run(running[0][0])
    assert run.info.status == "KILLED"
    assert f"process {flow.pid} on" in run.data.tags["abandoned_reason"]
    assert query(prefect_db, "SELECT state_type FROM flow_run") == [("CRASHED",)]
    current_state = "SELECT s.message FROM flow_run_state s JOIN flow_run f ON f.state_id = s.id"
    ((message,),) = query(prefect_db, current_state)
    assert f"process {flow.pid} on" in message
