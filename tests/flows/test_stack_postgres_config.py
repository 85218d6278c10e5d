"""What `make up STACK=postgres` gives each process, without starting any: database URLs from the
environment, credentials generated once and kept private, the settings files, a taken port."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from flows.servers import free_port
from flows.stack import Stack, main, recorded
from flows.stack_postgres import (
    Credentials,
    PostgresSetupError,
    PostgresStack,
    configured_databases,
    databases_on,
    stack_credentials,
)

URL_VARIABLES = (
    "IMDB_SENTIMENT_DATABASE_URL",
    "IMDB_SENTIMENT_MLFLOW_DATABASE_URL",
    "IMDB_SENTIMENT_PREFECT_DATABASE_URL",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*URL_VARIABLES, "IMDB_SENTIMENT_STACK_USER", "IMDB_SENTIMENT_STACK_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def test_a_server_url_names_three_databases_each_with_its_servers_driver() -> None:
    databases = databases_on("postgresql://team:s3cret@db.example:5432/anything")
    assert databases.mlflow == "postgresql+psycopg://team:s3cret@db.example:5432/mlflow"
    assert databases.mlflow_auth == "postgresql+psycopg://team:s3cret@db.example:5432/mlflow_auth"
    assert databases.prefect == "postgresql+asyncpg://team:s3cret@db.example:5432/prefect"


def test_the_databases_come_from_the_environment_or_the_stacks_own_cluster(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert configured_databases() is None
    assert PostgresStack(tmp_path, 5499).cluster is not None  # none named: the stack's own
    monkeypatch.setenv("IMDB_SENTIMENT_MLFLOW_DATABASE_URL", "postgresql+psycopg://u:p@h/ml")
    with pytest.raises(PostgresSetupError, match="IMDB_SENTIMENT_PREFECT_DATABASE_URL"):
        configured_databases()
    monkeypatch.setenv("IMDB_SENTIMENT_PREFECT_DATABASE_URL", "postgresql+asyncpg://u:p@h/pf")
    databases = configured_databases()
    assert databases.mlflow == "postgresql+psycopg://u:p@h/ml"
    assert databases.mlflow_auth == "postgresql+psycopg://u:p@h/ml_auth"
    assert databases.prefect == "postgresql+asyncpg://u:p@h/pf"
    assert PostgresStack(tmp_path, 5499).cluster is None


def test_a_generated_password_is_kept_private_and_never_shown(tmp_path: Path) -> None:
    first = stack_credentials(tmp_path)
    assert first == stack_credentials(tmp_path)  # generated once
    assert first.user == "admin" and len(first.password) >= 12
    assert (tmp_path / "secrets.json").stat().st_mode & 0o777 == 0o600
    assert first.password not in repr(first) and first.password not in first.masked()
    assert first.auth_string == f"admin:{first.password}"


def test_credentials_from_the_environment_win_and_are_checked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("IMDB_SENTIMENT_STACK_USER", "team")
    monkeypatch.setenv("IMDB_SENTIMENT_STACK_PASSWORD", "a-long-enough-password")
    assert stack_credentials(tmp_path) == Credentials("team", "a-long-enough-password")
    assert not (tmp_path / "secrets.json").exists()
    monkeypatch.setenv("IMDB_SENTIMENT_STACK_PASSWORD", "short")
    with pytest.raises(PostgresSetupError, match="at least 12 characters"):
        stack_credentials(tmp_path)


def test_secrets_go_to_their_own_server_and_clients_get_the_credentials(tmp_path: Path) -> None:
    stack = Stack(tmp_path, backend="postgres", postgres_port=5499)
    credentials = stack.postgres.credentials()
    env = stack.env()
    assert env["PREFECT_API_AUTH_STRING"] == credentials.auth_string
    assert env["MLFLOW_TRACKING_USERNAME"] == credentials.user
    assert env["MLFLOW_TRACKING_PASSWORD"] == credentials.password
    assert "PREFECT_API_DATABASE_CONNECTION_URL" not in env  # the database is the server's
    mlflow = stack.postgres.mlflow_server_env()
    assert mlflow["MLFLOW_BACKEND_STORE_URI"].endswith("@127.0.0.1:5499/mlflow")
    ini = Path(mlflow["MLFLOW_AUTH_CONFIG_PATH"])
    assert ini.stat().st_mode & 0o777 == 0o600
    assert "database_uri = postgresql+psycopg://imdb:" in ini.read_text()
    assert credentials.password not in ini.read_text()  # the admin's, given by the environment
    prefect = stack.postgres.prefect_server_env()
    assert prefect["PREFECT_API_DATABASE_CONNECTION_URL"].startswith("postgresql+asyncpg://")
    assert prefect["PREFECT_SERVER_API_AUTH_STRING"] == credentials.auth_string
    # The SQLite stack stays as it was: no credentials.
    assert "PREFECT_API_AUTH_STRING" not in Stack(tmp_path / "plain").env()


def test_a_taken_database_port_is_refused_with_a_clear_message(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMDB_SENTIMENT_STACK_BACKEND", "postgres")  # instead of --backend
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("IMDB_SENTIMENT_POSTGRES_PORT", str(port))  # or --postgres-port
        root = tmp_path / "stack"
        code = main(["up", "--root", str(root), "--prefect-port", str(free_port()),
                     "--mlflow-port", str(free_port())])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert f"port {port} on 127.0.0.1 is in use" in err and "POSTGRES_PORT" in err
    assert recorded(Stack(root)) == {}
