"""The team variant of the local stack (`make up STACK=postgres`): PostgreSQL behind both servers
and authentication in front of them. `flows/stack.py` starts the processes; this module says what
they are given.

- Databases: `IMDB_SENTIMENT_MLFLOW_DATABASE_URL` and `IMDB_SENTIMENT_PREFECT_DATABASE_URL` (each
  a whole SQLAlchemy URL), or `IMDB_SENTIMENT_DATABASE_URL`, a server on which the databases
  `mlflow`, `mlflow_auth` and `prefect` exist. With none of them the stack runs a PostgreSQL
  cluster of its own: `initdb` into `<root>/postgres` once, the server on 127.0.0.1 only, on its
  own port (5433 by default), databases created on first start.
- Credentials: `IMDB_SENTIMENT_STACK_USER` (default `admin`) and `IMDB_SENTIMENT_STACK_PASSWORD`;
  without a password one is generated once and kept in `<root>/secrets.json` (mode 0600), with
  the local cluster's own password and MLflow's session key. The user is MLflow's admin (its
  basic-auth app) and `user:password` is Prefect's API auth string.
- Clients (the worker, its flow runs, the prefect and mlflow commands) get the credentials through
  MLFLOW_TRACKING_USERNAME/PASSWORD and PREFECT_API_AUTH_STRING; `<root>/env.sh` (mode 0600)
  exports them for a shell. Database URLs and the session key go to their server alone.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy.engine

# Not 5432: a PostgreSQL the machine already runs keeps its port.
DEFAULT_POSTGRES_PORT = 5433
DATABASES = ("mlflow", "mlflow_auth", "prefect")
DB_ROLE = "imdb"  # the local cluster's superuser
MIN_PASSWORD = 12  # MLflow's basic-auth app refuses shorter passwords
POSTGRES_START_TIMEOUT = 60


class PostgresSetupError(RuntimeError):
    """The PostgreSQL stack cannot be set up as configured (no server binaries, a bad setting)."""


def postgres_bin() -> Path:
    """The folder of PostgreSQL's server programs (initdb, postgres): IMDB_SENTIMENT_POSTGRES_BIN,
    else Debian's newest /usr/lib/postgresql/<version>/bin, else the one on PATH."""
    if configured := os.environ.get("IMDB_SENTIMENT_POSTGRES_BIN"):
        return Path(configured)
    installed = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin/initdb") if p.parts[-3].isdigit()),
        key=lambda p: int(p.parts[-3]),
    )
    if installed:
        return installed[-1].parent
    if on_path := shutil.which("initdb"):
        return Path(on_path).parent
    raise PostgresSetupError(
        "PostgreSQL's server programs (initdb, postgres) are not installed: apt-get install "
        "postgresql, or set IMDB_SENTIMENT_POSTGRES_BIN to their folder, or give the stack a "
        "server with IMDB_SENTIMENT_DATABASE_URL"
    )


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, readable by its owner alone (mode 0600, an old file's included)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)


def stack_secret(root: Path, name: str) -> str:
    """The secret `name` of the stack under `root`: generated once, kept in secrets.json (0600)."""
    path = root / "secrets.json"
    kept = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    if name not in kept:
        kept[name] = secrets.token_urlsafe(24)  # URL-safe: it goes into database URLs as is
        write_private(path, json.dumps(kept, indent=1))
    return kept[name]


@dataclass(frozen=True)
class Credentials:
    """Who the servers let in. The password never shows in a repr, a log or a printout."""

    user: str
    password: str = field(repr=False)

    @property
    def auth_string(self) -> str:  # Prefect's: what a client sends as HTTP basic auth
        return f"{self.user}:{self.password}"

    def masked(self) -> str:
        return f"{self.user} / {'*' * 8}"


def stack_credentials(root: Path) -> Credentials:
    """From IMDB_SENTIMENT_STACK_USER/PASSWORD; a missing password is generated once (0600)."""
    user = os.environ.get("IMDB_SENTIMENT_STACK_USER") or "admin"
    password = os.environ.get("IMDB_SENTIMENT_STACK_PASSWORD") or stack_secret(root, "password")
    if len(password) < MIN_PASSWORD or ":" in user:
        raise PostgresSetupError(
            f"IMDB_SENTIMENT_STACK_PASSWORD needs at least {MIN_PASSWORD} characters (MLflow's "
            "rule) and IMDB_SENTIMENT_STACK_USER no ':' (Prefect's auth string is user:password)"
        )
    return Credentials(user, password)


@dataclass(frozen=True)
class Databases:
    """SQLAlchemy URLs of MLflow's store, MLflow's user store and Prefect's database (with their
    passwords: kept out of the repr)."""

    mlflow: str = field(repr=False)
    mlflow_auth: str = field(repr=False)
    prefect: str = field(repr=False)


def databases_on(server_url: str) -> Databases:
    """The three databases on the server of `server_url` (its own database name is ignored),
    each with the driver its server uses: psycopg for MLflow, asyncpg for Prefect."""
    url = sqlalchemy.engine.make_url(server_url)

    def on(driver: str, database: str) -> str:
        return url.set(drivername=driver, database=database).render_as_string(hide_password=False)

    return Databases(
        on("postgresql+psycopg", "mlflow"),
        on("postgresql+psycopg", "mlflow_auth"),
        on("postgresql+asyncpg", "prefect"),
    )


def configured_databases() -> Databases | None:
    """The databases the environment names (None: the stack runs its own cluster)."""
    mlflow_url = os.environ.get("IMDB_SENTIMENT_MLFLOW_DATABASE_URL")
    prefect_url = os.environ.get("IMDB_SENTIMENT_PREFECT_DATABASE_URL")
    server_url = os.environ.get("IMDB_SENTIMENT_DATABASE_URL")
    if not (mlflow_url or prefect_url or server_url):
        return None
    if not server_url and not (mlflow_url and prefect_url):
        raise PostgresSetupError(
            "set both IMDB_SENTIMENT_MLFLOW_DATABASE_URL and IMDB_SENTIMENT_PREFECT_DATABASE_URL, "
            "or IMDB_SENTIMENT_DATABASE_URL (a server with the databases mlflow, mlflow_auth and "
            "prefect)"
        )
    on_server = databases_on(server_url or mlflow_url or "")
    mlflow_db = sqlalchemy.engine.make_url(mlflow_url) if mlflow_url else None
    return Databases(
        mlflow_url or on_server.mlflow,
        # The user store beside the tracking store: <its database>_auth on the same server.
        mlflow_db.set(database=f"{mlflow_db.database}_auth").render_as_string(hide_password=False)
        if mlflow_db
        else on_server.mlflow_auth,
        prefect_url or on_server.prefect,
    )


@dataclass(frozen=True)
class LocalPostgres:
    """The stack's own PostgreSQL cluster under `<root>/postgres`, listening on 127.0.0.1 only."""

    root: Path
    port: int = DEFAULT_POSTGRES_PORT

    @property
    def data_dir(self) -> Path:
        return self.root / "postgres"

    @property
    def os_user(self) -> str | None:
        """PostgreSQL refuses to run as root: as root, the cluster belongs to the `postgres`
        system user (Debian's package creates it); otherwise to whoever starts the stack."""
        return "postgres" if os.geteuid() == 0 else None

    def server_url(self) -> str:
        password = stack_secret(self.root, "postgres_password")
        return f"postgresql://{DB_ROLE}:{password}@127.0.0.1:{self.port}/postgres"

    def command(self) -> list[str]:
        """The server in the foreground (no Unix socket: its path length is limited)."""
        return [
            str(postgres_bin() / "postgres"), "-D", str(self.data_dir), "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
        ]  # fmt: skip

    def _as_owner(self, args: list[str], **kwargs) -> subprocess.CompletedProcess:
        user = self.os_user
        extra = {"user": user, "group": user, "extra_groups": []} if user else {}
        return subprocess.run(args, capture_output=True, text=True, **extra, **kwargs)

    def init(self) -> None:
        """`initdb` once: a cluster whose superuser signs in with a password (scram-sha-256)."""
        if (self.data_dir / "PG_VERSION").exists():
            return
        if self.os_user:
            reach = self._as_owner(["test", "-x", str(self.root)], timeout=30)
            if reach.returncode != 0:
                raise PostgresSetupError(
                    f"the {self.os_user} user cannot reach {self.root} (PostgreSQL runs as "
                    f"{self.os_user} under root): choose a stack root it can enter (chmod o+x "
                    "on each folder above it)"
                )
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        password_file = self.root / ".postgres-initdb-password"
        write_private(password_file, stack_secret(self.root, "postgres_password"))
        try:
            if self.os_user:
                shutil.chown(self.data_dir, self.os_user, self.os_user)
                shutil.chown(password_file, self.os_user, self.os_user)
            made = self._as_owner(
                [str(postgres_bin() / "initdb"), "-D", str(self.data_dir), "-U", DB_ROLE,
                 f"--pwfile={password_file}", "--auth=scram-sha-256", "-E", "UTF8",
                 "--locale=C.UTF-8"],
                cwd=self.data_dir, timeout=300,
            )  # fmt: skip
        finally:
            password_file.unlink(missing_ok=True)
        if made.returncode != 0:
            shutil.rmtree(self.data_dir, ignore_errors=True)  # a half-made cluster would not start
            raise PostgresSetupError(f"initdb failed:\n{made.stdout}{made.stderr}")

    def wait_ready(self, process: subprocess.Popen, log: Path) -> None:
        """Wait until the server accepts connections; then create the missing databases."""
        import psycopg  # only the PostgreSQL stack needs the driver

        deadline = time.monotonic() + POSTGRES_START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise PostgresSetupError(f"PostgreSQL exited early:\n{log.read_text()[-3000:]}")
            try:
                connection = psycopg.connect(self.server_url(), autocommit=True, connect_timeout=3)
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"PostgreSQL did not start in {POSTGRES_START_TIMEOUT} s:\n"
                        f"{log.read_text()[-3000:]}"
                    ) from None
                time.sleep(0.5)
        with connection:
            existing = {row[0] for row in connection.execute("SELECT datname FROM pg_database")}
            for name in DATABASES:
                if name not in existing:
                    connection.execute(f'CREATE DATABASE "{name}"')


@dataclass(frozen=True)
class PostgresStack:
    """What the processes of a PostgreSQL stack under `root` are given."""

    root: Path
    postgres_port: int = DEFAULT_POSTGRES_PORT

    @property
    def cluster(self) -> LocalPostgres | None:
        """The stack's own cluster, unless the environment names the databases."""
        return None if configured_databases() else LocalPostgres(self.root, self.postgres_port)

    def databases(self) -> Databases:
        cluster = self.cluster
        return databases_on(cluster.server_url()) if cluster else configured_databases()

    def credentials(self) -> Credentials:
        return stack_credentials(self.root)

    def client_env(self) -> dict[str, str]:
        """What every client needs: the worker, its flow runs, the prefect and mlflow commands."""
        credentials = self.credentials()
        return {
            "PREFECT_API_AUTH_STRING": credentials.auth_string,
            "MLFLOW_TRACKING_USERNAME": credentials.user,
            "MLFLOW_TRACKING_PASSWORD": credentials.password,
        }

    def prefect_server_env(self) -> dict[str, str]:
        return {
            "PREFECT_API_DATABASE_CONNECTION_URL": self.databases().prefect,
            "PREFECT_SERVER_API_AUTH_STRING": self.credentials().auth_string,
        }

    def mlflow_server_env(self) -> dict[str, str]:
        """The store's URL and the basic-auth app's settings, in the environment and a 0600 file
        rather than on the command line, which every user of the machine can read."""
        databases, credentials = self.databases(), self.credentials()
        config = self.root / "mlflow-auth.ini"
        write_private(
            config,
            "[mlflow]\n"
            "default_permission = READ\n"
            f"database_uri = {databases.mlflow_auth}\n"
            f"admin_username = {credentials.user}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            # Checking a password costs a PBKDF2 hash, a third of a second of a busy CPU, on
            # each of a flow run's hundreds of requests; with one worker process a cached check
            # is never stale (a password change goes through that process).
            "auth_cache_ttl_seconds = 600\n",
        )
        return {
            "MLFLOW_BACKEND_STORE_URI": databases.mlflow,
            "MLFLOW_AUTH_CONFIG_PATH": str(config),
            # Used once, to create the admin user in an empty user store.
            "MLFLOW_AUTH_ADMIN_PASSWORD": credentials.password,
            # Static, so a browser session survives a restart of the server.
            "MLFLOW_FLASK_SERVER_SECRET_KEY": stack_secret(self.root, "flask_secret_key"),
        }

    def env_file_lines(self) -> list[str]:
        return [f"export {key}={shlex.quote(value)}" for key, value in self.client_env().items()]
