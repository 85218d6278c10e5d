"""The `drop_label_issues` option's data side (data/clean.py, tasks/data.py): the training reviews
cleanlab flags, and only those, leave the training split, and the data version says so."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.errors.label_issues import OOF_COLUMNS, flag_label_issues
from data.clean import (
    DROPPED_FILE,
    drop_train_reviews,
    dropped_reviews,
    without_train_reviews,
)
from data.prepare import PreparedData, movie_groups, prepare
from data.synthetic import synthetic_reviews
from data.versions import subset_digest
from tasks.data import clean_training_split, train_label_probs

PLANTED = 15


@pytest.fixture(scope="module")
def prepared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic data (about 270 training reviews) with 15 clearly-worded training labels flipped."""
    frame = synthetic_reviews(600, seed=5)
    train = np.flatnonzero(
        (frame["split"] == "train").to_numpy() & (frame["text"].str.count(r"\.") >= 8).to_numpy()
    )
    rows = np.random.default_rng(5).choice(train, PLANTED, replace=False)
    frame.loc[rows, "label"] = 1 - frame.loc[rows, "label"]
    data = prepare(frame, "planted-flips", dataset="synthetic", vocab_size=500, max_len=32)
    folder = tmp_path_factory.mktemp("prepared") / "synthetic-planted"
    data.save(folder)
    return folder


def test_drop_removes_exactly_the_flagged_training_reviews_and_records_it(
    prepared_dir: Path, fresh_settings: Path
) -> None:
    probs_path = train_label_probs.fn(str(prepared_dir))
    assert Path(probs_path).is_relative_to(fresh_settings)
    assert train_label_probs.fn(str(prepared_dir)) == probs_path  # once per data version
    probs = pd.read_parquet(probs_path)
    data = PreparedData.load(prepared_dir)
    train, _ = data.split("train")
    assert list(probs.columns) == list(OOF_COLUMNS)
    assert probs["review_id"].tolist() == train["review_id"].tolist()
    # Folds grouped by movie: no movie on both sides of a fit.
    assert (
        train.assign(fold=probs["fold"]).groupby(movie_groups(train))["fold"].nunique() == 1
    ).all()

    flags = flag_label_issues(probs["label"].to_numpy(), probs["prob_positive"].to_numpy())
    flagged = set(probs.loc[flags.flagged, "review_id"])
    assert len(flagged) >= PLANTED // 2  # the planted flips give it something to find

    cleaned_dir = clean_training_split.fn(str(prepared_dir), probs_path)
    cleaned = PreparedData.load(cleaned_dir)
    kept, _ = cleaned.split("train")
    assert set(train["review_id"]) - set(kept["review_id"]) == flagged
    assert set(kept["review_id"]) <= set(train["review_id"])
    for split in ("val", "test"):  # every other split, and its encoding, untouched
        before, ids_before = data.split(split)
        after, ids_after = cleaned.split(split)
        assert before["review_id"].tolist() == after["review_id"].tolist()
        assert np.array_equal(ids_before, ids_after)
    assert cleaned.vocab == data.vocab
    digest = subset_digest(frozenset(flagged))
    assert cleaned.data_version == f"{data.data_version}+clean.{digest[:8]}"
    assert cleaned.dropped_label_issues == len(flagged) and data.dropped_label_issues == 0
    assert cleaned.data_hash != data.data_hash
    assert set(dropped_reviews(cleaned_dir)) == flagged and dropped_reviews(prepared_dir) == []
    assert clean_training_split.fn(str(prepared_dir), probs_path) == cleaned_dir  # cached


def test_nothing_to_drop_keeps_the_folder_and_a_foreign_id_is_refused(
    prepared_dir: Path, tmp_path: Path
) -> None:
    assert drop_train_reviews(prepared_dir, [], cache_dir=tmp_path) == prepared_dir
    data = PreparedData.load(prepared_dir)
    test_id = data.split("test")[0]["review_id"].iat[0]
    with pytest.raises(ValueError, match="not training reviews"):
        without_train_reviews(data, [test_id])


def test_a_damaged_cleaned_folder_is_rebuilt(prepared_dir: Path, tmp_path: Path) -> None:
    data = PreparedData.load(prepared_dir)
    ids = data.split("train")[0]["review_id"].head(3).tolist()
    folder = drop_train_reviews(prepared_dir, ids, cache_dir=tmp_path)
    (folder / DROPPED_FILE).write_text("something else\n", encoding="utf-8")
    again = drop_train_reviews(prepared_dir, ids, cache_dir=tmp_path)
    assert again == folder and dropped_reviews(again) == sorted(ids)
    assert PreparedData.load(again).dropped_label_issues == 3
