"""The data tasks run through Prefect: no stale cached paths, no retries of a missing local path."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from prefect import task

from config import get_settings
from data import prepare
from data.imdb import DataSourceError
from data.synthetic import synthetic_reviews
from tasks.data import compute_text_metadata, locate_data, prepare_data

pytestmark = pytest.mark.slow  # starts Prefect's temporary server (once per session)

ARGS = ("synthetic", None, "unused-hash", 300, 32, 40, 5)


@task
def _noop() -> None:
    pass


@pytest.fixture(autouse=True)
def quick_synthetic(monkeypatch) -> None:
    small = synthetic_reviews(200, seed=5)
    monkeypatch.setattr(prepare, "synthetic_reviews", lambda *_, **__: small.copy())


@pytest.fixture(scope="module", autouse=True)
def prefect_engine() -> None:
    """Start the temporary server before any timed call."""
    _noop()


def test_tasks_rebuild_after_the_cache_is_removed_or_moved(fresh_settings, monkeypatch, tmp_path):
    first = Path(prepare_data(*ARGS))
    metadata = Path(compute_text_metadata(str(first)))
    assert (first / "meta.json").is_file() and metadata.is_file()

    shutil.rmtree(fresh_settings)  # `rm -rf .cache` / `make clean`; Prefect's storage stays
    again = Path(prepare_data(*ARGS))
    assert (again / "meta.json").is_file()  # rebuilt, not a cached path to nothing
    assert pd.read_parquet(compute_text_metadata(str(again)))["review_id"].is_unique

    elsewhere = tmp_path / "elsewhere"
    monkeypatch.setenv("IMDB_SENTIMENT_CACHE_DIR", str(elsewhere))
    get_settings.cache_clear()
    moved = Path(prepare_data(*ARGS))
    assert moved.is_relative_to(elsewhere) and (moved / "meta.json").is_file()
    assert Path(compute_text_metadata(str(moved))).is_relative_to(elsewhere)


def test_a_missing_local_path_fails_at_once(fresh_settings, tmp_path) -> None:
    missing = tmp_path / "nowhere.tar.gz"
    start = time.monotonic()
    with pytest.raises(DataSourceError, match="IMDB data path not found") as error:
        locate_data("imdb", str(missing), 42)
    assert str(missing) in str(error.value)
    assert time.monotonic() - start < 10  # was 130 s of task retries (10 + 30 + 90)
