"""Serving as the README says: `make serve` works without an activated venv, and a huge review
costs bounded memory.

Before: `mlflow models serve ...` from the README failed with `exec: uvicorn: not found` unless
the venv was activated (mlflow execs uvicorn from PATH); a 200 MB request body made the server
peak at 1.5 GB, most of it standardising the one unbounded string.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import tracemalloc
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import models.pyfunc
from config import PROJECT_ROOT, get_settings
from data.text import Encoded, Vocabulary
from models.networks import build_net
from models.presets import get_preset
from models.pyfunc import MAX_REVIEW_CHARS, SentimentModel
from models.registry import registered_name
from models.train import TrainResult
from tests.model.conftest import TINY_OVERRIDES, free_port

VENV_BIN = PROJECT_ROOT / ".venv" / "bin"
START_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def model() -> SentimentModel:
    """A raw-text model built directly (random weights): what `load_context` would assemble."""
    preset = get_preset("cnn", "tuned", **TINY_OVERRIDES)
    built = SentimentModel()
    built.preset, built.max_len = preset, preset.max_len
    built.net = build_net("cnn", preset.vocab_size, **preset.net_kwargs()).eval()
    built.vocab = Vocabulary.build([["dull", "great", "film", "plot"]], preset.vocab_size)
    return built


def test_the_cap_is_named_in_the_docstrings() -> None:
    assert f"{MAX_REVIEW_CHARS:,}" in (models.pyfunc.__doc__ or "")
    assert "MAX_REVIEW_CHARS" in (SentimentModel.encode.__doc__ or "")


def test_long_reviews_are_cut_before_standardisation(
    model: SentimentModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    real_encode = models.pyfunc.encode_texts

    def spy(texts: list[str], vocab: Vocabulary, max_len: int) -> Encoded:
        texts = list(texts)
        seen.extend(len(text) for text in texts)
        return real_encode(texts, vocab, max_len)

    monkeypatch.setattr(models.pyfunc, "encode_texts", spy)
    huge = "a dull <b>plot</b>, a great film. " * 300_000  # 10 MB, one review
    short = "A great film."
    out = model.predict(None, pd.DataFrame({"review": [huge, short]}))
    assert seen == [MAX_REVIEW_CHARS, len(short)]
    expected = model.predict(None, [huge[:MAX_REVIEW_CHARS], short])
    pd.testing.assert_frame_equal(out, expected)


def test_a_huge_review_costs_bounded_memory(model: SentimentModel) -> None:
    huge = "dull plot great film " * 2_500_000  # 52 MB
    tracemalloc.start()
    try:
        model.predict(None, [huge])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 * 2**20, f"peak {peak / 2**20:.0f} MiB of Python allocations"


def _make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    # `-o .venv/.installed`: never reinstall the venv from a test (the Makefile changed since).
    return subprocess.run(
        ["make", "--no-print-directory", "-o", ".venv/.installed", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _env_without_venv(**extra: str) -> dict[str, str]:
    """A newcomer's shell: the venv not activated, so its bin is not on PATH."""
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != VENV_BIN]
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "MLFLOW_TRACKING_URI")}
    return {**env, "PATH": os.pathsep.join(path), **extra}


def test_make_serve_dry_run_uses_the_venv_and_the_project_store() -> None:
    done = _make("-n", "serve", env=_env_without_venv())
    assert done.returncode == 0, done.stderr
    command = done.stdout
    assert f'PATH="{VENV_BIN}:$PATH"' in command  # uvicorn is found without activation
    assert f"{VENV_BIN}/mlflow models serve" in command
    assert '-m "models:/imdb-sentiment-cnn@champion"' in command and "-p 5001" in command
    assert f'MLFLOW_TRACKING_URI="sqlite:///{PROJECT_ROOT}/mlflow/mlflow.db"' in command
    assert "-h 127.0.0.1" in command  # local only unless HOST says otherwise

    other = _make(
        "-n", "serve", "MODEL=models:/imdb-sentiment-dense/3", "PORT=6000",
        env=_env_without_venv(MLFLOW_TRACKING_URI="http://tracking:5000"),
    )  # fmt: skip
    assert '-m "models:/imdb-sentiment-dense/3"' in other.stdout and "-p 6000" in other.stdout
    assert 'MLFLOW_TRACKING_URI="http://tracking:5000"' in other.stdout


@pytest.fixture
def served(trained: dict[str, TrainResult], tmp_path: Path) -> Iterator[str]:
    """`make serve` for the tiny CNN, from a shell without the venv on PATH."""
    port = free_port()
    model_uri = f"models:/{registered_name('cnn')}/{trained['cnn'].registered_version}"
    env = _env_without_venv(MLFLOW_TRACKING_URI=get_settings().mlflow_tracking_uri)
    log_path = tmp_path / "serve.log"
    command = ["make", "-o", ".venv/.installed", "serve", f"MODEL={model_uri}", f"PORT={port}"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # make, mlflow and uvicorn's workers: stopped together
        )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"make serve exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server not up after {START_TIMEOUT_S}s:\n{log_path.read_text()}")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}"
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=20)
        except ProcessLookupError:
            pass


@pytest.mark.slow
def test_make_serve_scores_without_an_activated_venv(served: str) -> None:
    reviews = ["A great film.", "dull " * 100_000]  # the second is cut to MAX_REVIEW_CHARS
    request = urllib.request.Request(
        f"{served}/invocations",
        data=json.dumps({"dataframe_records": [{"review": r} for r in reviews]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as reply:
        predictions = json.loads(reply.read())["predictions"]
    assert len(predictions) == 2
    assert all(0.0 <= row["prob_positive"] <= 1.0 for row in predictions)
