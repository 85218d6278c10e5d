"""Running `python -m flows.pipeline` as a real process against private stores."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import IO

from config import PROJECT_ROOT
from tests.processes import MARKER

QUICK_RUN = ["--dataset", "synthetic", "--preset", "seed", "--limit", "40", "--epochs", "1"]


def private_env(root: Path, marker: str) -> dict[str, str]:
    """The environment of a flow process: its own MLflow store, Prefect home, outputs; the
    session's data cache (preparing the synthetic data is the same everywhere)."""
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "IMDB_SENTIMENT_ARTIFACT_ROOT": str(root / "artifacts"),
        "IMDB_SENTIMENT_OUTPUT_DIR": str(root / "outputs"),
        "PREFECT_HOME": str(root / "prefect"),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PYTHONPATH": str(PROJECT_ROOT),
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": "1",  # the training ranks share a small machine
        MARKER: marker,
    }
    for inherited in ("IMDB_SENTIMENT_LIFELINE", "MLFLOW_RUN_CONTEXT", "PREFECT_API_URL"):
        env.pop(inherited, None)
    return env


def start_pipeline(
    args: list[str], env: dict[str, str], cwd: Path, output: IO[str] | int
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "flows.pipeline", *args],
        cwd=cwd,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
        text=True,
    )


def query(db: Path, sql: str) -> list[tuple]:
    """Rows from a SQLite store, read-only; [] while it has no such table (or is locked)."""
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as connection:
            return connection.execute(sql).fetchall()
    except sqlite3.Error:
        return []
