"""Prefect tasks for data preparation and text metadata (thin wrappers over `data/`, `analysis/`).

No Prefect result cache: the data layer's own on-disk cache (under settings.data_cache_dir, keyed
by content hash and parameters) is the one source of truth. It checks every entry it finds and
rebuilds a missing or damaged one, and it always lives where the settings say now. A Prefect
cache keyed by inputs handed back paths after `.cache` was removed or moved. Results stay plain
strings (paths and hashes), so nothing is ever unpickled.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from analysis.common.schema import METADATA_COLUMNS
from analysis.errors.label_issues import (
    CV_VERSION,
    OOF_COLUMNS,
    cross_validated_probs,
    flag_label_issues,
)
from analysis.errors.text_metadata import text_metadata
from config import get_settings
from data.cache import atomic_write_parquet, load_entry, params_hash, sweep_stale_temps
from data.clean import drop_train_reviews
from data.imdb import resolve_source, source_sha256
from data.intake import default_inbox, drain_inbox, load_leakage_hashes
from data.prepare import SYNTHETIC_SIZE, PreparedData, movie_groups, prepare_dataset
from data.versions import DataVersion, resolve_version
from models.memory import release_free_memory

log = logging.getLogger(__name__)


# No task retries: a missing local path fails at once with its message; downloads are retried
# (with backoff) inside `data.imdb.download_archive`, the only step a network fault can hit.
@task(name="locate-data", retries=0, cache_policy=NO_CACHE, persist_result=False)
def locate_data(dataset: str, data_path: str | None, seed: int) -> tuple[str | None, str]:
    """Find (downloading if needed) the source and hash its content."""
    if dataset == "synthetic":
        return None, params_hash("synthetic", SYNTHETIC_SIZE, seed)
    source = resolve_source(data_path)
    return str(source), source_sha256(source)


@task(name="drain-intake", cache_policy=NO_CACHE, persist_result=False)
def drain_intake(dataset: str, data_path: str | None, seed: int) -> list[str]:
    """Ingest the files waiting in the intake inbox (`data.intake`); one summary line each."""
    inbox = default_inbox()
    if not inbox.is_dir() or not any(p.is_file() for p in inbox.iterdir()):
        return []
    hashes = load_leakage_hashes(dataset, data_path, seed)  # refuses copies of test reviews
    return [
        d.result.summary() if d.result is not None else f"{d.name}: failed: {d.error}"
        # No event: this run trains on the batches it drains; an event would start another run.
        for d in drain_inbox(inbox, leak_hashes=hashes, emit=False)
    ]


@task(name="data-version", cache_policy=NO_CACHE, persist_result=False)
def data_version(
    dataset: str, source_hash: str, intake_version: int | None, use_intake: bool
) -> DataVersion:
    """The source (cut to the `train_subset` setting, if any) plus the intake store at
    `intake_version` (default: latest): what to train on."""
    return resolve_version(
        dataset,
        source_hash,
        version=intake_version,
        use_intake=use_intake,
        train_subset=get_settings().train_subset,
    )


@task(name="prepare-data", cache_policy=NO_CACHE, persist_result=False)
def prepare_data(
    dataset: str,
    source: str | None,
    source_hash: str,
    vocab_size: int,
    max_len: int,
    limit: int | None,
    seed: int,
    version: DataVersion | None = None,
) -> str:
    """Split, build the vocabulary and encode; returns the prepared folder (see PreparedData).

    A second run with the same inputs finds the folder in the data cache and returns at once.
    """
    # Recorded by the flow; the data layer hashes the source itself, so the folder's key always
    # matches the content it was built from.
    del source_hash
    folder = prepare_dataset(
        dataset,
        source,
        vocab_size=vocab_size,
        max_len=max_len,
        limit=limit,
        seed=seed,
        version=version,
    )
    release_free_memory()  # tokenising 50,000 reviews leaves ~1 GB of freed heap behind
    return str(folder)


@task(name="text-metadata", cache_policy=NO_CACHE, persist_result=False)
def compute_text_metadata(prepared_dir: str, split: str = "test") -> str:
    """TextBlob subjectivity/polarity of one split, computed once per dataset version.

    It depends only on the data, so both models share it; the parquet file is keyed by the
    prepared data's hash, survives across flow runs, and is recomputed when it is unreadable or
    its rows are not the split's reviews.
    """
    data = PreparedData.load(prepared_dir)
    frame, _ = data.split(split)
    folder = get_settings().data_cache_dir / "metadata"
    sweep_stale_temps(folder)
    path = folder / f"{data.data_hash}-{split}.parquet"

    def read_checked(entry: Path) -> pd.DataFrame:
        cached = pd.read_parquet(entry)
        if not {"review_id", *METADATA_COLUMNS} <= set(cached.columns):
            raise ValueError(f"columns {list(cached.columns)}")
        if not cached["review_id"].equals(frame["review_id"]):
            raise ValueError(f"its rows are not the {split} split's reviews")
        return cached

    if load_entry(path, read_checked) is None:
        metadata = text_metadata(frame["text"]).reset_index(drop=True)
        atomic_write_parquet(path, pd.concat([frame[["review_id"]], metadata], axis=1))
        release_free_memory()
    return str(path)


@task(name="train-label-probs", cache_policy=NO_CACHE, persist_result=False)
def train_label_probs(prepared_dir: str) -> str:
    """Out-of-sample P(positive) of every training review (`label_issues.cross_validated_probs`:
    TF-IDF + logistic regression in folds grouped by movie), computed once per dataset version.

    It depends only on the data, so both models' analyses and the `drop_label_issues` option share
    it; the parquet file is keyed by the prepared data's hash and the CV's version, and recomputed
    when it is unreadable or its rows are not the training split's reviews and labels.
    """
    data = PreparedData.load(prepared_dir)
    frame, _ = data.split("train")
    folder = get_settings().data_cache_dir / "label_probs"
    sweep_stale_temps(folder)
    path = folder / f"{data.data_hash}-cv{CV_VERSION}-train.parquet"

    def read_checked(entry: Path) -> pd.DataFrame:
        cached = pd.read_parquet(entry)
        if list(cached.columns) != list(OOF_COLUMNS):
            raise ValueError(f"columns {list(cached.columns)}")
        same_rows = cached["review_id"].astype(str).equals(frame["review_id"].astype(str))
        if not same_rows or not (cached["label"].to_numpy() == frame["label"].to_numpy()).all():
            raise ValueError("its rows are not the training split's reviews and labels")
        return cached

    if load_entry(path, read_checked) is None:
        probs = cross_validated_probs(frame, movie_groups(frame).to_numpy(), progress=True)
        atomic_write_parquet(path, probs)
        release_free_memory()
    return str(path)


@task(name="drop-label-issues", cache_policy=NO_CACHE, persist_result=False)
def clean_training_split(prepared_dir: str, label_probs: str) -> str:
    """The prepared folder without the training reviews flagged as likely mislabelled (cleanlab on
    `label_probs`); its data version ends `+clean.<digest>` (see `data.clean`)."""
    probs = pd.read_parquet(label_probs)
    flags = flag_label_issues(probs["label"].to_numpy(), probs["prob_positive"].to_numpy())
    folder = drop_train_reviews(prepared_dir, probs.loc[flags.flagged, "review_id"])
    cleaned = PreparedData.load(folder)
    log.info(
        "training on %s: %d of %d training reviews set aside as likely mislabelled "
        "(cleanlab estimate %d)",
        cleaned.data_version,
        cleaned.dropped_label_issues,
        len(probs),
        flags.estimate,
    )
    return str(folder)
