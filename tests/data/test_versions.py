"""Dataset versions: the source plus the intake batches accepted up to a store version."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from data.intake import ingest_file
from data.intake_sim import weekly_batches
from data.prepare import PreparedData, hash_source, load_reviews, prepare_dataset
from data.versions import NEW_SPLIT, resolve_version

PRAISE = ["wonderful", "moving", "superb", "delightful", "gripping"]
SCORN = ["tedious", "clumsy", "hollow", "dreary", "lifeless"]


def batch_file(folder: Path, name: str, n: int, offset: int = 0) -> Path:
    """`n` distinct labelled reviews (half positive) as a CSV the intake accepts."""
    rows = []
    for i in range(offset, offset + n):
        label = i % 2
        word = (PRAISE if label else SCORN)[i % 5]
        rows.append(
            {"text": f"review number {i} of a {word} picture, quite {word}", "label": label}
        )
    path = folder / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


def prepared(version, store: Path, cache: Path, limit: int | None = 200) -> PreparedData:
    folder = prepare_dataset(
        "synthetic",
        vocab_size=500,
        max_len=32,
        limit=limit,
        seed=3,
        cache_dir=cache,
        version=version,
        intake_store=store,
    )
    return PreparedData.load(folder)


def test_no_store_is_the_source_alone(store: Path, tmp_path: Path) -> None:
    source = hash_source("synthetic", seed=3)
    version = resolve_version("synthetic", source, store)
    assert version.intake_version is None and version.name == f"synthetic@{source[:8]}"
    data = prepared(version, store, tmp_path / "cache")
    assert NEW_SPLIT not in set(data.frame["split"]) and data.data_version == version.name


def test_batches_join_training_and_their_holdout_forms_the_new_split(
    store: Path, tmp_path: Path
) -> None:
    source = hash_source("synthetic", seed=3)
    first = ingest_file(
        batch_file(tmp_path, "a.csv", 200), leak_hashes=frozenset(), store=store, emit=False
    )
    v1 = resolve_version("synthetic", source, store)
    assert (v1.intake_version, v1.intake_rows) == (first.version, 200)
    assert v1.name.endswith(f"+intake.v{first.version}")
    data = prepared(v1, store, tmp_path / "cache")
    intake = data.frame[data.frame["review_id"].str.startswith("intake/")]
    assert len(intake) == 200
    held = intake["split"] == NEW_SPLIT
    assert held.sum() == first.held_out > 0  # every held-out row, and only those, is `new`
    assert set(intake.loc[~held, "split"]) <= {"train", "val"}

    # A second batch is a new version with new prepared data; the old version still resolves
    # to the old data (time travel), with the same digest.
    ingest_file(
        batch_file(tmp_path, "b.csv", 100, offset=500),
        leak_hashes=frozenset(),
        store=store,
        emit=False,
    )
    v2 = resolve_version("synthetic", source, store)
    assert v2.intake_version > v1.intake_version and v2.digest != v1.digest
    again = resolve_version("synthetic", source, store, version=v1.intake_version)
    assert again == v1
    assert len(prepared(v2, store, tmp_path / "cache").frame) == len(data.frame) + 100
    assert prepared(again, store, tmp_path / "cache").data_hash == data.data_hash


def test_a_version_that_does_not_exist_is_refused(store: Path, tmp_path: Path) -> None:
    ingest_file(batch_file(tmp_path, "a.csv", 20), leak_hashes=frozenset(), store=store, emit=False)
    with pytest.raises(ValueError, match="does not exist"):
        resolve_version("synthetic", "x" * 64, store, version=99)


def test_a_training_subset_keeps_the_baseline_and_the_weeks_join_as_batches(
    store: Path, tmp_path: Path
) -> None:
    """A stream simulated from the source's own training reviews: the baseline version trains on
    the baseline alone, each week adds its movies, and the test split stays whole."""
    source = hash_source("synthetic", seed=3)
    reviews, _ = load_reviews("synthetic", seed=3)
    manifest = weekly_batches(reviews, tmp_path / "sim", weeks=2, baseline_fraction=0.5, seed=1)
    subset = tmp_path / "sim" / "manifest.json"

    base = resolve_version("synthetic", source, store, train_subset=subset)
    assert base.name.startswith(f"synthetic@{source[:8]}~subset.") and base.intake_version is None
    assert base.digest != resolve_version("synthetic", source, store).digest
    data = prepared(base, store, tmp_path / "cache", limit=None)
    seen = data.frame.loc[data.frame["split"].isin(["train", "val"]), "review_id"]
    assert set(seen) == set(manifest["baseline_review_ids"])
    assert (data.frame["split"] == "test").sum() == (reviews["split"] == "test").sum()

    week = tmp_path / "sim" / "week-01.csv"
    accepted = ingest_file(week, leak_hashes=frozenset(), store=store, emit=False).accepted
    assert accepted > 0.9 * manifest["files"]["week-01.csv"]["rows"]  # a few refused (duplicates)
    week1 = resolve_version("synthetic", source, store, train_subset=subset)
    assert week1.name == f"{base.name}+intake.v0"
    grown = prepared(week1, store, tmp_path / "cache", limit=None)
    intake = grown.frame["review_id"].str.startswith("intake/")
    assert intake.sum() == accepted
    assert set(grown.frame.loc[~intake & (grown.frame["split"] != "test"), "review_id"]) == set(
        seen
    )

    # The file is part of the version: changing it after resolving is refused, not trained on.
    subset.write_text('{"baseline_review_ids": ["synthetic-0"]}')
    with pytest.raises(ValueError, match="changed since"):
        prepared(week1, store, tmp_path / "cache2", limit=None)


@pytest.mark.parametrize(
    ("content", "match"),
    [("", "lists no review ids"), ("{}", "not a simulate manifest"), ("nope-1\nnope-2", "none")],
)
def test_an_unusable_training_subset_is_refused(
    content: str, match: str, store: Path, tmp_path: Path
) -> None:
    path = tmp_path / ("subset.json" if content.startswith("{") else "subset.txt")
    path.write_text(content)
    source = hash_source("synthetic", seed=3)
    with pytest.raises(ValueError, match=match):
        version = resolve_version("synthetic", source, store, train_subset=path)
        prepared(version, store, tmp_path / "cache", limit=None)
