"""Dataset versions: the source plus the intake batches accepted up to a store version."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from data.intake import ingest_file
from data.prepare import PreparedData, hash_source, prepare_dataset
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


def prepared(version, store: Path, cache: Path) -> PreparedData:
    folder = prepare_dataset(
        "synthetic",
        vocab_size=500,
        max_len=32,
        limit=200,
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
