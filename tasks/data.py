"""Prefect tasks for data preparation and text metadata (thin wrappers over `data/`, `analysis/`).

Both are cached across flow runs by their inputs and the source's content hash: the tasks take
paths, names and hashes, never DataFrames, so their cache keys are stable.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.cache_policies import INPUTS, TASK_SOURCE

from analysis.errors.text_metadata import text_metadata
from config import get_settings
from data.cache import atomic_write_parquet, content_sha256, params_hash
from data.imdb import resolve_source
from data.prepare import SYNTHETIC_SIZE, PreparedData, prepare_dataset
from models.memory import release_free_memory

CACHE = INPUTS + TASK_SOURCE


@task(name="locate-data", retries=3, retry_delay_seconds=[10, 30, 90])
def locate_data(dataset: str, data_path: str | None, seed: int) -> tuple[str | None, str]:
    """Find (downloading if needed, with retries and backoff) the source and hash its content."""
    if dataset == "synthetic":
        return None, params_hash("synthetic", SYNTHETIC_SIZE, seed)
    source = resolve_source(data_path)
    return str(source), content_sha256(source)


@task(name="prepare-data", cache_policy=CACHE, cache_expiration=timedelta(days=30))
def prepare_data(
    dataset: str,
    source: str | None,
    source_hash: str,
    vocab_size: int,
    max_len: int,
    limit: int | None,
    seed: int,
) -> str:
    """Split, build the vocabulary and encode; returns the prepared folder (see PreparedData)."""
    del source_hash  # part of the cache key only: new data content, new preparation
    folder = prepare_dataset(
        dataset, source, vocab_size=vocab_size, max_len=max_len, limit=limit, seed=seed
    )
    release_free_memory()  # tokenising 50,000 reviews leaves ~1 GB of freed heap behind
    return str(folder)


@task(name="text-metadata", cache_policy=CACHE, cache_expiration=timedelta(days=30))
def compute_text_metadata(prepared_dir: str, split: str = "test") -> str:
    """TextBlob subjectivity/polarity of one split, computed once per dataset version.

    It depends only on the data, so both models share it; the parquet file is keyed by the
    prepared data's hash and survives across flow runs.
    """
    data = PreparedData.load(prepared_dir)
    path = get_settings().data_cache_dir / "metadata" / f"{data.data_hash}-{split}.parquet"
    if not path.exists():
        frame, _ = data.split(split)
        metadata = text_metadata(frame["text"]).reset_index(drop=True)
        atomic_write_parquet(path, pd.concat([frame[["review_id"]], metadata], axis=1))
        release_free_memory()
    return str(Path(path))
