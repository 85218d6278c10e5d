"""The local stack in the background: `make up` / `make down` / `make status`.

    python -m flows.stack up       # in the background; idempotent; logs and pids under .stack/
    python -m flows.stack status   # each process: up or down
    python -m flows.stack down     # stops exactly the processes `up` started

`up --backend postgres` (`make up STACK=postgres`, or IMDB_SENTIMENT_STACK_BACKEND=postgres): both
servers on PostgreSQL, behind authentication (flows/stack_postgres.py says what they are given).
The servers themselves are started by `flows/servers.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from config import PROJECT_ROOT
from flows.servers import (
    BIN,
    POOL,
    SERVER_START_TIMEOUT,
    Processes,
    deploy_and_start_worker,
    prefect_cli,
    start_prefect,
    wait_for,
)
from flows.stack_postgres import DEFAULT_POSTGRES_PORT, PostgresStack, write_private

# --- `make up` / `make down` / `make status`: the local stack in the background -----------------


@dataclass(frozen=True)
class Stack:
    """Where a background stack keeps its state: logs, process ids, Prefect's home, the env file."""

    root: Path
    prefect_port: int = 4200
    mlflow_port: int = 5000
    backend_store_uri: str = f"sqlite:///{PROJECT_ROOT / 'mlflow' / 'mlflow.db'}"
    artifacts_destination: Path | str = PROJECT_ROOT / "mlflow" / "artifacts"  # or s3://...
    backend: str = "sqlite"  # or "postgres" (flows/stack_postgres.py; backend_store_uri unused)
    postgres_port: int = DEFAULT_POSTGRES_PORT  # of the stack's own cluster, when it runs one
    prefect_file: Path | None = None  # the deployments to deploy; None: the project's prefect.yaml

    @property
    def postgres(self) -> PostgresStack | None:
        return PostgresStack(self.root, self.postgres_port) if self.backend == "postgres" else None

    @property
    def pid_file(self) -> Path:
        return self.root / "pids.json"

    @property
    def env_file(self) -> Path:
        return self.root / "env.sh"

    @property
    def prefect_url(self) -> str:
        return f"http://127.0.0.1:{self.prefect_port}"

    @property
    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.mlflow_port}"

    def env(self) -> dict[str, str]:
        """What the servers, the worker and the flows they run see (caches stay the project's)."""
        return {
            **os.environ,
            "PREFECT_HOME": str(self.root / "prefect-home"),
            "PREFECT_API_URL": f"{self.prefect_url}/api",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "MLFLOW_TRACKING_URI": self.mlflow_url,
            "PYTHONUNBUFFERED": "1",
            **(self.postgres.client_env() if self.postgres else {}),  # the credentials
        }

    def health_urls(self) -> dict[str, str]:
        return {
            "prefect-server": f"{self.prefect_url}/api/health",
            "mlflow-server": f"{self.mlflow_url}/health",
        }


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status == 200
    except OSError:
        return False


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def is_running(pid: int, marker: str) -> bool:
    """The process is running and is still the one recorded (pids are reused)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return marker in command


def recorded(stack: Stack) -> dict[str, dict]:
    if not stack.pid_file.exists():
        return {}
    return json.loads(stack.pid_file.read_text(encoding="utf-8"))


def stack_status(stack: Stack) -> dict[str, bool]:
    """Each recorded process: alive (and, for a server, answering its health check)."""
    urls = stack.health_urls()
    return {
        name: is_running(info["pid"], info["marker"]) and (name not in urls or _answers(urls[name]))
        for name, info in recorded(stack).items()
    }


def _stop(info: dict) -> bool:
    """Stop a recorded process group (SIGTERM, SIGKILL after 20 s); False: it was not running."""
    if not is_running(info["pid"], info["marker"]):
        return False
    os.killpg(info["pid"], signal.SIGTERM)
    deadline = time.monotonic() + 20
    while is_running(info["pid"], info["marker"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    if is_running(info["pid"], info["marker"]):
        os.killpg(info["pid"], signal.SIGKILL)
    return True


def stack_down(stack: Stack) -> list[str]:
    """Stop exactly the processes `stack_up` recorded (their process groups), the database last;
    names stopped."""
    stopped = [name for name, info in reversed(list(recorded(stack).items())) if _stop(info)]
    stack.pid_file.unlink(missing_ok=True)
    return stopped


class StackError(RuntimeError):
    """The stack cannot start as asked (a port taken, a server that does not come up)."""


def _mlflow_server_args(stack: Stack) -> list[str]:
    store = ["--backend-store-uri", stack.backend_store_uri]
    if stack.postgres:  # its store's URL, with a password, goes in the server's environment:
        store = ["--app-name", "basic-auth"]  # every user of the machine can read command lines
    return [str(BIN / "mlflow"), "server", *store,
            "--artifacts-destination", str(stack.artifacts_destination),
            "--host", "127.0.0.1", "--port", str(stack.mlflow_port), "--workers", "1"]  # fmt: skip


def _marker(args: list[str]) -> str:
    return " ".join(map(str, args[1:3]))


def start_mlflow_server(stack: Stack, procs: Processes) -> subprocess.Popen:
    """The stack's MLflow server (serving artifacts), answering its health check."""
    extra = stack.postgres.mlflow_server_env() if stack.postgres else None
    server, log = procs.start("mlflow-server", _mlflow_server_args(stack), extra)
    wait_for(stack.health_urls()["mlflow-server"], SERVER_START_TIMEOUT, server, log)
    return server


def stack_up(stack: Stack) -> bool:
    """Start (PostgreSQL when the stack runs its own,) the Prefect server, the MLflow server
    (serving artifacts), the work pool, the deployments and a worker; False when the stack was
    already up as asked (nothing started)."""
    pg = stack.postgres
    cluster = pg.cluster if pg else None
    names = ["postgres"] * bool(cluster) + ["prefect-server", "mlflow-server", "worker"]
    state = stack_status(stack)
    same_backend = recorded(stack).get("mlflow-server", {}).get("marker") == _marker(
        _mlflow_server_args(stack)
    )
    if state and all(state.values()) and list(state) == names and same_backend:
        return False
    if state:  # partly up (a crash, a reboot) or on the other backend: start clean
        stack_down(stack)
    ports = [(stack.prefect_port, "the Prefect server", "PREFECT_PORT"),
             (stack.mlflow_port, "the MLflow server", "MLFLOW_PORT")]  # fmt: skip
    if cluster:
        ports.append((cluster.port, "PostgreSQL", "POSTGRES_PORT"))
    for port, what, variable in ports:
        if port_in_use(port):
            raise StackError(
                f"port {port} on 127.0.0.1 is in use by another program, so {what} cannot "
                f"start; stop that program or choose another port (make up {variable}=...)"
            )
    (stack.root / "logs").mkdir(parents=True, exist_ok=True)
    procs = Processes(stack.root / "logs", stack.env())
    try:
        if cluster:
            cluster.init()
            database, log = procs.start("postgres", cluster.command(), user=cluster.os_user)
            cluster.wait_ready(database, log)
        start_prefect(procs, stack.prefect_port, pg.prefect_server_env() if pg else None)
        start_mlflow_server(stack, procs)
        if prefect_cli(procs.env, "work-pool", "inspect", POOL).returncode == 0:
            procs.start("worker", [str(BIN / "prefect"), "worker", "start", "--pool", POOL])
            extra = ["--prefect-file", str(stack.prefect_file)] if stack.prefect_file else []
            deployed = prefect_cli(procs.env, "deploy", "--all", *extra)
            if deployed.returncode != 0:
                raise StackError(f"prefect deploy failed:\n{deployed.stdout}{deployed.stderr}")
        else:
            deploy_and_start_worker(procs, stack.prefect_file)
    except Exception:
        procs.stop_all()
        raise
    pids = {
        name: {"pid": p.pid, "marker": _marker(p.args)}
        for name, p in zip(names, procs.started, strict=True)
    }
    stack.pid_file.write_text(json.dumps(pids, indent=1), encoding="utf-8")
    exports = [f"export PREFECT_API_URL={stack.prefect_url}/api",
               f"export MLFLOW_TRACKING_URI={stack.mlflow_url}",
               *(pg.env_file_lines() if pg else [])]  # fmt: skip
    write_private(stack.env_file, "\n".join(exports) + "\n")  # 0600: it may hold the password
    return True


def restart_mlflow(stack: Stack) -> int:
    """Start the MLflow server of an up stack again (after a crash, or stopping it first) and
    record its new process id, which it returns; the old log is kept as mlflow-server.log.1."""
    pids = recorded(stack)
    if not pids:
        raise StackError(f"no stack is up under {stack.root} (make up)")
    if "mlflow-server" in pids:
        _stop(pids["mlflow-server"])
    log = stack.root / "logs" / "mlflow-server.log"
    if log.exists():
        log.replace(log.with_name("mlflow-server.log.1"))
    procs = Processes(stack.root / "logs", stack.env())
    try:
        server = start_mlflow_server(stack, procs)
    except Exception:
        procs.stop_all()
        raise
    pids["mlflow-server"] = {"pid": server.pid, "marker": _marker(server.args)}
    stack.pid_file.write_text(json.dumps(pids, indent=1), encoding="utf-8")
    return server.pid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flows.stack",
        description="The local stack (Prefect server, work pool, deployments, worker, MLflow "
        "server) in the background, on 127.0.0.1.",
    )
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument("--root", type=Path, default=PROJECT_ROOT / ".stack")
    parser.add_argument("--prefect-port", type=int, default=4200)
    parser.add_argument("--mlflow-port", type=int, default=5000)
    parser.add_argument("--backend-store-uri", default=Stack.backend_store_uri)
    parser.add_argument(
        "--artifacts-destination",
        default=os.environ.get("IMDB_SENTIMENT_ARTIFACTS_DESTINATION"),
        help="a folder or a URI such as s3://bucket/path (default: mlflow/artifacts; on "
        "postgres <root>/mlflow-artifacts)",
    )
    parser.add_argument(
        "--backend",
        choices=("sqlite", "postgres"),
        default=os.environ.get("IMDB_SENTIMENT_STACK_BACKEND") or "sqlite",
        help="postgres: PostgreSQL behind both servers, and authentication",
    )
    parser.add_argument(
        "--postgres-port",
        type=int,
        default=int(os.environ.get("IMDB_SENTIMENT_POSTGRES_PORT") or DEFAULT_POSTGRES_PORT),
    )
    parser.add_argument(
        "--prefect-file",
        type=Path,
        default=None,
        help="the deployments to deploy (default: the project's prefect.yaml)",
    )
    args = parser.parse_args(argv)
    root = args.root.resolve()
    artifacts = args.artifacts_destination or (
        root / "mlflow-artifacts" if args.backend == "postgres" else Stack.artifacts_destination
    )
    stack = Stack(
        root,
        args.prefect_port,
        args.mlflow_port,
        args.backend_store_uri,
        artifacts if "://" in str(artifacts) else Path(artifacts).resolve(),
        args.backend,
        args.postgres_port,
        args.prefect_file.resolve() if args.prefect_file else None,
    )
    if args.command == "down":
        stopped = stack_down(stack)
        print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
        return 0
    if args.command == "status":
        state = stack_status(stack)
        if not state:
            print("down (run `make up`)")
            return 1
        for name, ok in state.items():
            print(f"{name:<15} {'up' if ok else 'DOWN'}  pid {recorded(stack)[name]['pid']}")
        print(
            f"Prefect UI {stack.prefect_url}  MLflow UI {stack.mlflow_url}  logs {stack.root}/logs"
        )
        return 0 if all(state.values()) else 1
    try:
        started = stack_up(stack)
    except (StackError, RuntimeError, TimeoutError) as error:
        print(f"make up failed: {error}", file=sys.stderr)
        return 2
    print("started" if started else "already up", f"(logs and process ids in {stack.root})")
    print(f"Prefect UI {stack.prefect_url}  MLflow UI {stack.mlflow_url}")
    print(f"For the prefect and mlflow commands of this shell: source {stack.env_file}")
    if stack.postgres:  # the password itself is never printed
        print(
            f"Sign in as {stack.postgres.credentials().masked()} (the password: "
            f"$IMDB_SENTIMENT_STACK_PASSWORD, or in {stack.root / 'secrets.json'})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
