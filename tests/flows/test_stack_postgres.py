"""`make up STACK=postgres`: the local stack on PostgreSQL, behind authentication, end to end.

One stack for the module, started as a user starts it (`python -m flows.stack up --backend
postgres`) on free ports under a temporary root, with the PostgreSQL cluster it initialises
itself: clients without credentials are refused; a smoke run registers and promotes models in
the MLflow behind it; a run whose tracking server is killed mid-run fails saying so, promotes
nothing, and the next run after `restart_mlflow` succeeds; `down` leaves no process behind.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from mlflow import MlflowClient

from config import PROJECT_ROOT
from flows.servers import free_port, prefect_cli
from flows.stack import Stack, is_running, recorded, restart_mlflow
from flows.stack_postgres import PostgresSetupError, postgres_bin
from tests.processes import MARKER, kill_marked, marked, new_marker, wait_until_none_marked

pytestmark = pytest.mark.slow

RUN_TIMEOUT = 1500  # a busy 2-core machine: a smoke run has taken 13 minutes there
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
ARCHS = ("dense", "cnn")


def postgres_installed() -> bool:
    try:
        return (postgres_bin() / "initdb").exists()
    except PostgresSetupError:
        return False


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    if not postgres_installed():
        if os.environ.get("CI"):  # .ci/run installs PostgreSQL: missing there is a failure
            pytest.fail("PostgreSQL's server programs are not installed")
        pytest.skip("PostgreSQL's server programs are not installed (apt-get install postgresql)")
    # Not under pytest's own temporary folder: that is root's alone (0700), and as root the
    # cluster runs as the postgres user, which must be able to enter the stack's root.
    root = Path(tempfile.mkdtemp(prefix="imdb-pg-stack-"))
    root.chmod(0o711)
    marker = new_marker()
    stack = Stack(
        root,
        free_port(),
        free_port(),
        artifacts_destination=root / "artifacts",
        backend="postgres",
        postgres_port=free_port(),
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(MARKER, marker)  # every process of the stack inherits it: none may survive
        # A stopped tracking server fails a run in seconds, not after MLflow's ~4 min of retries.
        patch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        for name in ("IMDB_SENTIMENT_STACK_USER", "IMDB_SENTIMENT_STACK_PASSWORD",
                     "IMDB_SENTIMENT_DATABASE_URL", "IMDB_SENTIMENT_MLFLOW_DATABASE_URL",
                     "IMDB_SENTIMENT_PREFECT_DATABASE_URL", "MLFLOW_TRACKING_USERNAME",
                     "MLFLOW_TRACKING_PASSWORD", "PREFECT_API_AUTH_STRING",
                     "IMDB_SENTIMENT_TRAIN_SUBSET", "IMDB_ARCHIVE"):  # fmt: skip
            patch.delenv(name, raising=False)
        try:
            up = stack_cli(stack, "up", "--artifacts-destination", str(root / "artifacts"))
            assert up.returncode == 0, up.stdout + up.stderr
            (root / "up-output.txt").write_text(up.stdout + up.stderr, encoding="utf-8")
            yield stack
        finally:
            stack_cli(stack, "down")
            kill_marked(marker)
            shutil.rmtree(root, ignore_errors=True)


def stack_cli(stack: Stack, command: str, *extra: str) -> subprocess.CompletedProcess:
    """`python -m flows.stack COMMAND` for this stack, as `make` runs it."""
    return subprocess.run(
        [sys.executable, "-m", "flows.stack", command, "--root", str(stack.root),
         "--backend", "postgres", "--prefect-port", str(stack.prefect_port),
         "--mlflow-port", str(stack.mlflow_port), "--postgres-port", str(stack.postgres_port),
         *extra],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip


def password(stack: Stack) -> str:
    return stack.env()["MLFLOW_TRACKING_PASSWORD"]


def status_of(url: str, auth: str | None, body: dict | None = None) -> int:
    headers = {"Content-Type": "application/json"}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    data = None if body is None else json.dumps(body).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data, headers), timeout=60) as r:
            return r.status
    except urllib.error.HTTPError as error:
        return error.code


def prefect_api(stack: Stack, path: str, body: dict | None = None) -> dict | list:
    auth = base64.b64encode(stack.env()["PREFECT_API_AUTH_STRING"].encode()).decode()
    request = urllib.request.Request(
        f"{stack.prefect_url}/api{path}",
        None if body is None else json.dumps(body).encode(),
        {"Authorization": f"Basic {auth}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def mlflow_client(stack: Stack, patch: pytest.MonkeyPatch) -> MlflowClient:
    env = stack.env()
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        patch.setenv(name, env[name])  # MLflow's client reads them at each request
    return MlflowClient(tracking_uri=stack.mlflow_url)


def champions(client: MlflowClient, archs: tuple[str, ...] = ARCHS) -> dict[str, str]:
    return {
        arch: client.get_model_version_by_alias(f"imdb-sentiment-{arch}", "champion").version
        for arch in archs
    }


def version_counts(client: MlflowClient) -> dict[str, int]:
    return {
        arch: len(client.search_model_versions(f"name='imdb-sentiment-{arch}'")) for arch in ARCHS
    }


def run_smoke(stack: Stack, params: dict, *, watch: bool = True) -> subprocess.CompletedProcess:
    args = ["deployment", "run", "imdb-sentiment/smoke", "--params", json.dumps(params)]
    return prefect_cli(stack.env(), *args, *(["--watch"] if watch else []), timeout=RUN_TIMEOUT)


def test_both_servers_refuse_a_client_without_credentials(stack: Stack) -> None:
    secret = password(stack)
    env = stack.env()
    mlflow_api = f"{stack.mlflow_url}/api/2.0/mlflow/experiments/search?max_results=1"
    prefect_api_url = f"{stack.prefect_url}/api/flows/filter"
    right = env["PREFECT_API_AUTH_STRING"]
    for auth, expected in ((None, 401), (f"{env['MLFLOW_TRACKING_USERNAME']}:wrong-password", 401),
                           (right, 200)):  # fmt: skip
        assert status_of(mlflow_api, auth) == expected, auth
        assert status_of(prefect_api_url, auth, {}) == expected, auth

    assert set(recorded(stack)) == {"postgres", "prefect-server", "mlflow-server", "worker"}
    assert (stack.root / "postgres" / "PG_VERSION").exists()  # the cluster the stack made
    # The generated password is kept, and handed to clients, by files only their owner reads.
    for private in (stack.root / "secrets.json", stack.env_file, stack.root / "mlflow-auth.ini"):
        assert private.stat().st_mode & 0o777 == 0o600, private
    exports = stack.env_file.read_text(encoding="utf-8")
    for name in ("PREFECT_API_AUTH_STRING", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        assert f"export {name}=" in exports
    # ... and never shown: not by `up`, not in a log, not on any command line.
    assert secret not in (stack.root / "up-output.txt").read_text(encoding="utf-8")
    for log in (stack.root / "logs").iterdir():
        assert secret not in log.read_text(encoding="utf-8", errors="replace"), log
    for pid, command in marked(os.environ[MARKER]).items():
        assert secret not in command, pid


def test_a_smoke_run_registers_and_promotes_in_the_postgres_backed_mlflow(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = run_smoke(stack, {"limit": 200, "epochs": {"dense": 1, "cnn": 1}})
    assert done.returncode == 0 and "Completed" in done.stdout, done.stdout + done.stderr

    client = mlflow_client(stack, monkeypatch)
    for arch, version in champions(client).items():
        model = client.get_model_version(f"imdb-sentiment-{arch}", version)
        assert model.status == "READY"
        assert client.get_run(model.run_id).data.tags["arch"] == arch
    secret = password(stack)
    experiment = client.get_experiment_by_name("imdb-sentiment")
    for run in client.search_runs([experiment.experiment_id]):
        logged = {**run.data.params, **run.data.tags}
        assert not [key for key, value in logged.items() if secret in value], run.info.run_id
    # Artifacts went through the server to the configured destination.
    assert any((stack.root / "artifacts").rglob("MLmodel"))

    # Both servers keep their state in the stack's PostgreSQL.
    databases = stack.postgres.databases()
    with psycopg.connect(databases.mlflow.replace("+psycopg", "")) as db:
        names = {row[0] for row in db.execute("SELECT name FROM registered_models")}
        assert {f"imdb-sentiment-{arch}" for arch in ARCHS} <= names
    with psycopg.connect(databases.prefect.replace("+asyncpg", "")) as db:
        states = [row[0] for row in db.execute("SELECT state_type FROM flow_run")]
        assert "COMPLETED" in states
    with psycopg.connect(databases.mlflow_auth.replace("+psycopg", "")) as db:
        assert [row[0] for row in db.execute("SELECT username FROM users")] == ["admin"]


def test_a_run_whose_tracking_server_dies_fails_clearly_and_promotes_nothing(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = mlflow_client(stack, monkeypatch)
    before, counts = champions(client), version_counts(client)
    params = {"archs": ["dense"], "limit": 300, "epochs": {"dense": 20}, "force": True}
    started = run_smoke(stack, params, watch=False)
    assert started.returncode == 0, started.stdout + started.stderr
    run_id = re.search(r"UUID: ([0-9a-f-]{36})", started.stdout).group(1)

    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:  # until training has started
        tasks = prefect_api(stack, "/task_runs/filter", {"flow_runs": {"id": {"any_": [run_id]}}})
        # "train-<id>", the training task (not train-label-probs-<id>)
        training = [t for t in tasks if re.fullmatch(r"train-\w+", t["name"])]
        if any(t["state_type"] == "RUNNING" for t in training):
            break
        assert prefect_api(stack, f"/flow_runs/{run_id}")["state_type"] not in TERMINAL
        time.sleep(1)
    os.killpg(recorded(stack)["mlflow-server"]["pid"], signal.SIGKILL)

    while time.monotonic() < deadline:
        run = prefect_api(stack, f"/flow_runs/{run_id}")
        if run["state_type"] in TERMINAL:
            break
        time.sleep(2)
    assert run["state_type"] == "FAILED", run["state"]
    # Newest first: a page holds 200 lines and the hook's line is among the last of a long run.
    logs = prefect_api(
        stack,
        "/logs/filter",
        {"logs": {"flow_run_id": {"any_": [run_id]}}, "sort": "TIMESTAMP_DESC", "limit": 200},
    )
    said = [log["message"] for log in logs if "tracking store out of reach" in log["message"]]
    assert said, [log["message"][:300] for log in logs]
    assert f"MLflow tracking server {stack.mlflow_url} is unreachable" in said[0]

    restart_mlflow(stack)
    assert champions(client) == before and version_counts(client) == counts  # nothing promoted
    again = run_smoke(stack, {**params, "epochs": {"dense": 1}, "limit": 200})
    assert again.returncode == 0 and "Completed" in again.stdout, again.stdout + again.stderr
    assert version_counts(client)["dense"] == counts["dense"] + 1


def test_down_stops_every_process_the_database_included(stack: Stack) -> None:
    processes = recorded(stack)
    status = stack_cli(stack, "status")  # `make status`
    assert status.returncode == 0, status.stdout + status.stderr
    for name in ("postgres", "prefect-server", "mlflow-server", "worker"):
        assert re.search(rf"^{name} +up ", status.stdout, re.MULTILINE), status.stdout
    down = stack_cli(stack, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert "postgres" in down.stdout
    for name, info in processes.items():
        assert not is_running(info["pid"], info["marker"]), name
    # Every process the stack started, PostgreSQL's own children included, is gone.
    assert wait_until_none_marked(os.environ[MARKER], 30) == {}
