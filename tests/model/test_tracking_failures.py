"""An unusable tracking store fails fast, everywhere, with one line naming it and the fix.

Before: `python -m analysis.explain` against an unreachable server took 252 s of MLflow retries
before `Max retries exceeded`; a SQLite store that could not be written failed deep inside
SQLAlchemy with a long traceback.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import mlflow
import pytest

import analysis.explain
import flows.pipeline
import models.cli
from config import Settings, get_settings
from models.tracking import TrackingUnavailableError, check_tracking_store, configure_tracking
from tests.model.conftest import free_port


@pytest.fixture
def tracking_uri(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """Set MLFLOW_TRACKING_URI for one test; the session's store is restored afterwards."""

    def use(uri: str) -> str:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        get_settings.cache_clear()
        return uri

    yield use
    monkeypatch.undo()
    get_settings.cache_clear()
    mlflow.set_tracking_uri(get_settings().mlflow_tracking_uri)


def _not_called(what: str):
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"{what} before the tracking store was checked")

    return fail


def test_explain_fails_fast_on_an_unreachable_server(
    tracking_uri, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    uri = tracking_uri(f"http://127.0.0.1:{free_port()}")
    monkeypatch.setattr(analysis.explain, "logged_model", _not_called("model loaded"))
    start = time.monotonic()
    with pytest.raises(SystemExit) as exit_info:
        analysis.explain.main(["--model", "models:/imdb-sentiment-cnn/1", "some text"])
    assert time.monotonic() - start < 15
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert uri in err and "unreachable" in err


def _under_a_regular_file(tmp_path: Path) -> tuple[str, Path]:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a regular file where the store's folder should be\n")
    return f"sqlite:///{blocker / 'mlflow.db'}", blocker


def test_sqlite_store_under_a_regular_file_names_the_path(tmp_path: Path) -> None:
    """Tests run as root, where chmod does not stop writes: a regular file in the store's path
    makes it unwritable for root too."""
    uri, blocker = _under_a_regular_file(tmp_path)
    settings = Settings(mlflow_tracking_uri=uri, mlflow_artifact_root=tmp_path / "artifacts")
    with pytest.raises(TrackingUnavailableError) as error:
        configure_tracking(settings)
    message = str(error.value)
    assert len(message.splitlines()) == 1
    assert str(blocker / "mlflow.db") in message and "not a folder" in message
    assert "MLFLOW_TRACKING_URI" in message  # the way out


@pytest.mark.parametrize(("read_only", "problem"), [("file", "read-only"), ("folder", "read-only")])
def test_read_only_sqlite_store_names_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read_only: str, problem: str
) -> None:
    """Root may write anything, so the permission check (`os.access`) is what is patched: it
    answers "not writable" for the database file, or for its folder, as it would for a user."""
    db = tmp_path / "store" / "mlflow.db"
    db.parent.mkdir()
    db.touch()
    blocked = db if read_only == "file" else db.parent
    real_access = os.access

    def access(path: object, mode: int, **kwargs: object) -> bool:
        if Path(path) == blocked and mode & os.W_OK:
            return False
        return real_access(path, mode, **kwargs)

    monkeypatch.setattr(os, "access", access)
    settings = Settings(mlflow_tracking_uri=f"sqlite:///{db}", mlflow_artifact_root=tmp_path)
    with pytest.raises(TrackingUnavailableError, match=problem) as error:
        configure_tracking(settings)
    assert str(db) in str(error.value) and len(str(error.value).splitlines()) == 1


def test_writable_and_missing_sqlite_stores_pass(tmp_path: Path) -> None:
    check_tracking_store(f"sqlite:///{tmp_path / 'new' / 'deeper' / 'mlflow.db'}")  # created later
    check_tracking_store("sqlite://")  # in memory
    check_tracking_store(get_settings().mlflow_tracking_uri)


def test_train_cli_refuses_an_unwritable_store_before_any_work(
    tracking_uri, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    uri, blocker = _under_a_regular_file(tmp_path)
    tracking_uri(uri)
    monkeypatch.setattr(models.cli, "prepare_dataset", _not_called("data prepared"))
    with pytest.raises(SystemExit) as exit_info:
        models.cli.main(["--arch", "cnn", "--dataset", "synthetic"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(blocker) in err


def test_pipeline_cli_refuses_an_unwritable_store_before_prefect_starts(
    tracking_uri, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    tracking_uri(_under_a_regular_file(tmp_path)[0])
    monkeypatch.setattr(flows.pipeline, "imdb_sentiment", _not_called("flow started"))
    with pytest.raises(SystemExit) as exit_info:
        flows.pipeline.main(["--dataset", "synthetic"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not-a-folder" in err
