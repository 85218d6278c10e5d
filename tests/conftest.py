"""Shared test configuration: every test runs against throw-away stores under a temporary folder.

Caches, the MLflow store, artifacts and outputs are redirected for the whole session, so the
suite never touches the project's own `.cache/`, `mlflow/` or `reports/` folders.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from config import get_settings

IMDB_ARCHIVE_ENV = "IMDB_ARCHIVE"


@pytest.fixture(scope="session", autouse=True)
def isolated_stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("stores")
    env = {
        "IMDB_SENTIMENT_CACHE_DIR": str(root / "cache"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "IMDB_SENTIMENT_ARTIFACT_ROOT": str(root / "artifacts"),
        "IMDB_SENTIMENT_OUTPUT_DIR": str(root / "outputs"),
        "PREFECT_HOME": str(root / "prefect"),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    }
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        # The real archive is used only by tests that ask for it (`imdb_archive` fixture).
        real_archive = os.environ.get(IMDB_ARCHIVE_ENV)
        patch.delenv(IMDB_ARCHIVE_ENV, raising=False)
        if real_archive:
            patch.setenv("_REAL_IMDB_ARCHIVE", real_archive)
        get_settings.cache_clear()
        yield root
    get_settings.cache_clear()


@pytest.fixture
def fresh_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A private data cache for one test; settings are re-read before and after."""
    monkeypatch.setenv("IMDB_SENTIMENT_CACHE_DIR", str(tmp_path / "cache"))
    get_settings.cache_clear()
    yield tmp_path / "cache"
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def imdb_archive() -> Path:
    """The real IMDB archive named by $IMDB_ARCHIVE; the test is skipped only where it is unset."""
    value = os.environ.get("_REAL_IMDB_ARCHIVE")
    if not value:
        pytest.skip("IMDB_ARCHIVE is not set: the real-data test needs the IMDB archive")
    path = Path(value)
    assert path.exists(), f"IMDB_ARCHIVE points to a missing file: {path}"
    return path
