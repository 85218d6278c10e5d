"""`make up` / `make status` / `make down`: the local stack in the background, started once,
stopped exactly, and a clear message when a port is taken."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from flows.servers import free_port
from flows.stack import Stack, is_running, main, recorded, stack_status

pytestmark = pytest.mark.slow


def stack_args(stack: Stack) -> list[str]:
    return [
        "--root", str(stack.root),
        "--prefect-port", str(stack.prefect_port),
        "--mlflow-port", str(stack.mlflow_port),
        "--backend-store-uri", stack.backend_store_uri,
        "--artifacts-destination", str(stack.artifacts_destination),
    ]  # fmt: skip


def test_a_taken_port_is_refused_with_a_clear_message(tmp_path: Path, capsys) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        stack = Stack(tmp_path / "stack", port, free_port())
        assert main(["up", *stack_args(stack)]) == 2
    err = capsys.readouterr().err
    assert f"port {port} on 127.0.0.1 is in use" in err and "PREFECT_PORT" in err
    assert recorded(stack) == {}  # nothing started, nothing recorded


def test_up_is_idempotent_and_down_stops_exactly_what_up_started(tmp_path: Path, capsys) -> None:
    stack = Stack(
        tmp_path / "stack",
        free_port(),
        free_port(),
        f"sqlite:///{tmp_path / 'mlflow.db'}",
        tmp_path / "artifacts",
    )
    args = stack_args(stack)
    try:
        assert main(["up", *args]) == 0
        assert "started" in capsys.readouterr().out
        started = recorded(stack)
        pids = {name: info["pid"] for name, info in started.items()}
        assert set(pids) == {"prefect-server", "mlflow-server", "worker"}
        assert stack_status(stack) == dict.fromkeys(pids, True)
        assert f"PREFECT_API_URL={stack.prefect_url}/api" in stack.env_file.read_text()

        assert main(["up", *args]) == 0  # a second `make up` starts nothing
        assert "already up" in capsys.readouterr().out
        assert {name: info["pid"] for name, info in recorded(stack).items()} == pids
        assert main(["status", *args]) == 0
    finally:
        assert main(["down", *args]) == 0
    assert "stopped: worker, mlflow-server, prefect-server" in capsys.readouterr().out
    for info in started.values():  # gone (or a zombie of this test process, not yet reaped)
        assert not is_running(info["pid"], info["marker"])
    assert main(["status", *args]) == 1
    assert main(["down", *args]) == 0  # nothing left to stop is not an error
