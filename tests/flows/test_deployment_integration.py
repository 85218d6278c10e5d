"""End to end through real servers: Prefect server + process worker + MLflow tracking server.

Starts everything on 127.0.0.1 (free ports, temporary homes), deploys prefect.yaml, runs the
`smoke` deployment with `prefect deployment run --watch`, checks MLflow, then runs a worse model
and checks the champion alias stayed, then two runs at once over the same caches and registry.
Everything started is stopped by process id.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

from analysis.behaviour.cases import CHECKS
from config import PROJECT_ROOT
from data.prepare import PreparedData

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
SERVER_START_TIMEOUT = 300  # Prefect migrates an empty database on first start
RUN_TIMEOUT = 900


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, timeout: float, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} server exited early:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise TimeoutError(f"{url} did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


class Processes:
    """Background processes, each in its own session so the whole group can be stopped."""

    def __init__(self, logs: Path, env: dict[str, str]) -> None:
        self.logs, self.env, self.started = logs, env, []

    def start(self, name: str, args: list[str]) -> tuple[subprocess.Popen, Path]:
        log = self.logs / f"{name}.log"
        process = subprocess.Popen(
            args,
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started.append(process)
        return process, log

    def stop_all(self) -> None:
        for process in reversed(self.started):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("integration")
    prefect_port, mlflow_port = free_port(), free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(root / "prefect-home"),
        "PREFECT_API_URL": f"http://127.0.0.1:{prefect_port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "INFO",
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mlflow_port}",
        "IMDB_SENTIMENT_CACHE_DIR": str(root / "cache"),
        "IMDB_SENTIMENT_OUTPUT_DIR": str(root / "outputs"),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("IMDB_ARCHIVE", None)
    procs = Processes(root, env)
    try:
        server, server_log = procs.start(
            "prefect-server",
            [
                str(BIN / "prefect"),
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(prefect_port),
            ],
        )
        tracking, tracking_log = procs.start(
            "mlflow-server",
            [
                str(BIN / "mlflow"),
                "server",
                "--backend-store-uri",
                f"sqlite:///{root / 'mlflow.db'}",
                "--artifacts-destination",
                str(root / "mlflow-artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(mlflow_port),
                "--workers",
                "1",
            ],
        )
        wait_for(
            f"http://127.0.0.1:{prefect_port}/api/health", SERVER_START_TIMEOUT, server, server_log
        )
        wait_for(
            f"http://127.0.0.1:{mlflow_port}/health", SERVER_START_TIMEOUT, tracking, tracking_log
        )

        def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
            return subprocess.run(
                [str(BIN / "prefect"), "--no-prompt", *args],
                cwd=PROJECT_ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
            )

        created = cli("work-pool", "create", "imdb-pool", "--type", "process")
        assert created.returncode == 0, created.stdout + created.stderr
        deployed = cli("deploy", "--all")
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        procs.start(
            "worker",
            [str(BIN / "prefect"), "worker", "start", "--pool", "imdb-pool", "--type", "process"],
        )
        yield {"cli": cli, "tracking_uri": env["MLFLOW_TRACKING_URI"], "root": root, "env": env}
    finally:
        procs.stop_all()


def champion_versions(client: MlflowClient) -> dict[str, str]:
    return {
        arch: client.get_model_version_by_alias(f"imdb-sentiment-{arch}", "champion").version
        for arch in ("dense", "cnn")
    }


def test_smoke_deployment_trains_analyses_registers_and_guards_the_champion(stack) -> None:
    first = stack["cli"](
        "deployment", "run", "imdb-sentiment/smoke", "--watch", timeout=RUN_TIMEOUT
    )
    output = first.stdout + first.stderr
    assert first.returncode == 0, output
    assert "Completed" in output, output

    client = MlflowClient(tracking_uri=stack["tracking_uri"])
    experiment = client.get_experiment_by_name("imdb-sentiment")
    runs = client.search_runs([experiment.experiment_id])
    by_arch = {run.data.tags["arch"]: run for run in runs if "arch" in run.data.tags}
    assert set(by_arch) == {"dense", "cnn"}
    for run in by_arch.values():
        assert {"test_acc", "test_loss", "test_f1", "test_roc_auc"} <= set(run.data.metrics)
        assert {f"behaviour_{c}_pass_rate" for c in CHECKS} <= set(run.data.metrics)
        analysis = {a.path for a in client.list_artifacts(run.info.run_id, "analysis")}
        assert {
            "analysis/population.png",
            "analysis/insights.md",
            "analysis/clusters.csv",
        } <= analysis
    comparison = client.search_runs([experiment.experiment_id], "tags.kind = 'comparison'")
    assert len(comparison) == 1
    files = {a.path for a in client.list_artifacts(comparison[0].info.run_id, "comparison")}
    assert {"comparison/report.html", "comparison/report.md", "comparison/triage.csv"} <= files
    assert "loss_reduction_dense_top50_by_cnn" in comparison[0].data.metrics
    for run in by_arch.values():
        assert run.data.tags["mlflow.parentRunId"] == comparison[0].info.run_id

    # Any two runs can be compared from the command line too.
    out = stack["root"] / "cli-comparison"
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "analysis.compare",
            by_arch["dense"].info.run_id,
            by_arch["cnn"].info.run_id,
            "--out",
            str(out),
        ],
        cwd=PROJECT_ROOT,
        env=stack["env"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "dense vs cnn" in (out / "report.html").read_text(encoding="utf-8")

    champions = champion_versions(client)
    for arch, run in by_arch.items():
        version = client.get_model_version(f"imdb-sentiment-{arch}", champions[arch])
        assert version.run_id == run.info.run_id

    # A much weaker model (a few dozen reviews, one epoch) must not take the alias.
    worse = stack["cli"](
        "deployment",
        "run",
        "imdb-sentiment/smoke",
        "--params",
        json.dumps({"limit": 40, "preset": "seed", "epochs": {"dense": 1, "cnn": 1}}),
        "--watch",
        timeout=RUN_TIMEOUT,
    )
    assert worse.returncode == 0, worse.stdout + worse.stderr
    assert champion_versions(client) == champions
    for arch in ("dense", "cnn"):
        versions = client.search_model_versions(f"name='imdb-sentiment-{arch}'")
        assert len(versions) == 2  # the new version is registered, just not promoted
    second_runs = client.search_runs([experiment.experiment_id], "tags.promotion = 'kept champion'")
    assert {run.data.tags["arch"] for run in second_runs} == {"dense", "cnn"}


def test_two_runs_at_once_share_caches_and_registry_safely(stack) -> None:
    """Two flow runs at the same time, through the same worker, caches and tracking server."""
    client = MlflowClient(tracking_uri=stack["tracking_uri"])
    names = [f"imdb-sentiment-{arch}" for arch in ("dense", "cnn")]
    before = {name: len(client.search_model_versions(f"name='{name}'")) for name in names}
    champions = champion_versions(client)
    # A sample size no earlier run used: both runs prepare the same new data at the same time.
    params = json.dumps({"limit": 120, "preset": "seed", "epochs": {"dense": 1, "cnn": 1}})
    command = [str(BIN / "prefect"), "--no-prompt", "deployment", "run", "imdb-sentiment/smoke"]
    runs = [
        subprocess.Popen(
            [*command, "--params", params, "--watch"],
            cwd=PROJECT_ROOT,
            env=stack["env"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=RUN_TIMEOUT)[0] for run in runs]
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0 and "Completed" in output, output

    for name in names:  # one new version per run, each complete and tied to a finished run
        versions = client.search_model_versions(f"name='{name}'")
        assert len(versions) == before[name] + 2
        for version in versions:
            assert version.status == "READY"
            assert "test_acc" in client.get_run(version.run_id).data.metrics
    assert champion_versions(client) == champions  # 120-review models do not beat the champion

    cache = stack["root"] / "cache"
    leftovers = [p for p in cache.rglob(".*") if p.name.endswith(".tmp") or p.is_dir()]
    assert leftovers == [], leftovers  # no half-written cache entry
    prepared = [p.parent for p in cache.rglob("meta.json")]
    assert prepared, "no prepared data in the shared cache"
    for folder in prepared:  # every published entry is whole and loads
        assert PreparedData.load(folder).ids.shape[0] == len(PreparedData.load(folder).frame)
