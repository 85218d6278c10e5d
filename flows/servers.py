"""Starting local servers for running the flow through deployments: a Prefect server, a process
work pool with the project's deployments, a worker, and an MLflow tracking server.

Each process runs in its own session with its log in one folder, so the whole group can be stopped
by process id. Building blocks of the real-server integration test, the retraining walk-through
(`benchmarks/retraining_walkthrough.py`) and the background stack of `make up` (`flows/stack.py`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from config import PROJECT_ROOT

BIN = Path(sys.executable).parent
SERVER_START_TIMEOUT = 300  # Prefect migrates an empty database on first start
POOL = "imdb-pool"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, timeout: float, process: subprocess.Popen, log: Path) -> None:
    """Wait until `url` answers 200; fail early with the log's tail when the server exits."""
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


@dataclass
class Processes:
    """Background processes, each in its own session so the whole group can be stopped."""

    logs: Path
    env: Mapping[str, str]
    started: list[subprocess.Popen] = field(default_factory=list)

    def start(
        self,
        name: str,
        args: list[str],
        extra_env: Mapping[str, str] | None = None,
        user: str | None = None,
    ) -> tuple[subprocess.Popen, Path]:
        """Start `args` with this environment plus `extra_env` (a server's own secrets), as
        `user` when given (PostgreSQL refuses root)."""
        log = self.logs / f"{name}.log"
        as_user = {"user": user, "group": user, "extra_groups": []} if user else {}
        process = subprocess.Popen(
            args,
            cwd=PROJECT_ROOT,
            env={**self.env, **(extra_env or {})},
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **as_user,
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


def prefect_cli(
    env: Mapping[str, str], *args: str, timeout: float = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "prefect"), "--no-prompt", *args],
        cwd=PROJECT_ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def server_env(root: Path, prefect_port: int, tracking_uri: str) -> dict[str, str]:
    """The environment of every process of a stack whose state lives under `root`."""
    return {
        **os.environ,
        "PREFECT_HOME": str(root / "prefect-home"),
        "PREFECT_API_URL": f"http://127.0.0.1:{prefect_port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "INFO",
        "MLFLOW_TRACKING_URI": tracking_uri,
        "IMDB_SENTIMENT_CACHE_DIR": str(root / "cache"),
        "IMDB_SENTIMENT_OUTPUT_DIR": str(root / "outputs"),
        "IMDB_SENTIMENT_ARTIFACT_ROOT": str(root / "mlflow-artifacts"),
        "PYTHONUNBUFFERED": "1",
    }


def start_prefect(procs: Processes, port: int, extra_env: Mapping[str, str] | None = None) -> None:
    server, log = procs.start(
        "prefect-server",
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        extra_env,
    )
    wait_for(f"http://127.0.0.1:{port}/api/health", SERVER_START_TIMEOUT, server, log)


def start_mlflow(procs: Processes, port: int, root: Path) -> str:
    """An MLflow tracking server over a SQLite store under `root` that also serves artifacts."""
    tracking, log = procs.start(
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
            str(port),
            "--workers",
            "1",
        ],
    )
    wait_for(f"http://127.0.0.1:{port}/health", SERVER_START_TIMEOUT, tracking, log)
    return f"http://127.0.0.1:{port}"


def prefect_file_with(overrides: Mapping[str, Mapping], out: Path) -> Path:
    """A copy of the project's prefect.yaml, written to `out`, in which each named deployment's
    parameters are updated (e.g. a quick corpus for weekly-retrain); the rest, its trigger and
    schedule included, stays as it is."""
    config = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    by_name = {d["name"]: d for d in config["deployments"]}
    for name, parameters in overrides.items():
        by_name[name]["parameters"] = {**by_name[name].get("parameters", {}), **parameters}
    out.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return out


def deploy_and_start_worker(procs: Processes, prefect_file: Path | None = None) -> None:
    """Create the process work pool, deploy every deployment of `prefect_file` (default: the
    project's prefect.yaml) from the project root, and start a worker on the pool."""
    created = prefect_cli(procs.env, "work-pool", "create", POOL, "--type", "process")
    if created.returncode != 0:
        raise RuntimeError(f"work pool not created:\n{created.stdout}{created.stderr}")
    extra = [] if prefect_file is None else ["--prefect-file", str(prefect_file)]
    deployed = prefect_cli(procs.env, "deploy", "--all", *extra)
    if deployed.returncode != 0:
        raise RuntimeError(f"deployments not created:\n{deployed.stdout}{deployed.stderr}")
    procs.start(
        "worker", [str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--type", "process"]
    )
