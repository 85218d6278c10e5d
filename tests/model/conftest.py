"""Training fixtures: one tiny configuration, trained once per session for both architectures.

Everything lands in the session's throw-away stores (tests/conftest.py `isolated_stores`).
Training runs from an empty working directory, so a stray ./mlruns would be noticed.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from data.prepare import prepare_dataset
from models.presets import ARCHS, DEFAULT_PRESET
from models.train import TrainResult, train

# The one tiny configuration every training test shares (a few seconds per architecture).
TINY_OVERRIDES: dict[str, Any] = {
    "vocab_size": 500,
    "max_len": 64,
    "embedding_dim": 8,
    "hidden_dim": 8,
    "channels": [8, 8, 8],
    "epochs": 2,
    "batch_size": 32,
    "bigram_buckets": 1024,  # keeps the word-pair path of `tuned` in the tests, at a tiny size
    "ngram_buckets": 4096,  # and its naive-Bayes n-gram branch
}
TINY_LIMIT_BATCHES = 4  # train/val batches per epoch; the test split is always scored whole
TINY_SEED = 7


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def train_tiny(prepared_dir: Path, arch: str, **kwargs: Any) -> TrainResult:
    options: dict[str, Any] = {
        "preset": DEFAULT_PRESET,
        "overrides": TINY_OVERRIDES,
        "seed": TINY_SEED,
        "accelerator": "cpu",
        "devices": 1,
        "limit_batches": TINY_LIMIT_BATCHES,
        "log_every_n_steps": 1,
        **kwargs,
    }
    return train(arch, prepared_dir, **options)


@pytest.fixture(scope="session")
def tiny_prepared(isolated_stores: Path) -> Path:
    return prepare_dataset(
        "synthetic",
        vocab_size=TINY_OVERRIDES["vocab_size"],
        max_len=TINY_OVERRIDES["max_len"],
        seed=TINY_SEED,
    )


@pytest.fixture(scope="session")
def training_cwd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("training-cwd")


@pytest.fixture(scope="session")
def trained(tiny_prepared: Path, training_cwd: Path) -> Iterator[dict[str, TrainResult]]:
    """Both architectures trained and registered once, from an empty working directory."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(training_cwd)
        results = {arch: train_tiny(tiny_prepared, arch, register=True) for arch in ARCHS}
    yield results
