"""Preparation: validation split, vocabulary from train only, encoding, the prepared-data cache."""

import numpy as np
import pytest

from data.prepare import PreparedData, assign_validation, limit_reviews, prepare, prepare_dataset
from data.synthetic import synthetic_reviews


def test_validation_split_is_seeded_stratified_and_carved_from_train() -> None:
    frame = synthetic_reviews(1_000, seed=1).drop(columns="movie")  # every review on its own
    split = assign_validation(frame, 0.1, seed=3)
    val = split[split["split"] == "val"]
    assert len(val) == 50 and val["label"].mean() == 0.5
    assert (split.loc[frame["split"] == "test", "split"] == "test").all()
    assert assign_validation(frame, 0.1, seed=3).equals(split)
    assert not assign_validation(frame, 0.1, seed=4)["split"].equals(split["split"])
    with pytest.raises(ValueError, match="val_fraction"):
        assign_validation(frame, 1.5, seed=3)


def test_validation_split_keeps_each_movie_on_one_side() -> None:
    frame = synthetic_reviews(4_000, seed=1)
    assert frame.groupby("movie").size().max() > 1  # movies with several reviews
    split = assign_validation(frame, 0.1, seed=3)
    val, train = split[split["split"] == "val"], split[split["split"] == "train"]
    assert not set(val["movie"]) & set(train["movie"])
    # Whole movies fill each class's quota (10% of 1,000 training reviews per class) closely.
    counts = val.groupby("label").size()
    assert (counts <= 100).all() and (counts >= 90).all(), counts.to_dict()
    assert (split.loc[frame["split"] == "test", "split"] == "test").all()
    # Reviews with an unknown movie are placed one by one.
    frame.loc[frame.index[frame["split"] == "train"][:300], "movie"] = None
    split = assign_validation(frame, 0.1, seed=3)
    val, train = split[split["split"] == "val"], split[split["split"] == "train"]
    assert not set(val["movie"].dropna()) & set(train["movie"].dropna())
    assert val["movie"].isna().any() and (val.groupby("label").size() <= 100).all()


def test_vocabulary_comes_from_the_training_split_only() -> None:
    frame = synthetic_reviews(200, seed=1)
    frame.loc[frame["split"] == "test", "text"] = "zzzonlyintest " * 5
    prepared = prepare(frame, "h", dataset="synthetic", vocab_size=5_000, max_len=20)
    assert "zzzonlyintest" not in prepared.vocab
    test_frame, test_ids = prepared.split("test")
    assert (test_frame["oov_count"] == 5).all() and (test_ids[:, :5] == 1).all()


def test_limit_is_per_split_and_balanced() -> None:
    limited = limit_reviews(synthetic_reviews(1_000, seed=1), 40, seed=0)
    assert limited.groupby(["split", "label"]).size().tolist() == [20, 20, 20, 20]
    with pytest.raises(ValueError, match="limit"):
        limit_reviews(synthetic_reviews(100), 2, seed=0)


def test_prepare_dataset_writes_once_and_loads_back(fresh_settings) -> None:
    folder = prepare_dataset("synthetic", vocab_size=500, max_len=64, seed=5)
    data = PreparedData.load(folder)
    assert data.ids.shape == (len(data.frame), 64) and len(data.vocab) == 500
    assert set(data.frame["split"]) == {"train", "val", "test"}
    assert {"length", "oov_count"} <= set(data.frame.columns)
    stamp = (folder / "ids.npy").stat().st_mtime_ns
    assert prepare_dataset("synthetic", vocab_size=500, max_len=64, seed=5) == folder
    assert (folder / "ids.npy").stat().st_mtime_ns == stamp  # not rebuilt
    assert prepare_dataset("synthetic", vocab_size=400, max_len=64, seed=5) != folder
    assert [p.name for p in folder.parent.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_unknown_dataset_lists_the_choices(fresh_settings) -> None:
    with pytest.raises(ValueError, match="imdb, synthetic"):
        prepare_dataset("yelp")


def test_encoded_rows_follow_the_frame(fresh_settings) -> None:
    data = PreparedData.load(prepare_dataset("synthetic", vocab_size=2_000, max_len=300))
    row = int(np.argmax(data.frame["length"].to_numpy()))
    n_real = int((data.ids[row] != 0).sum())
    assert n_real == min(300, int(data.frame["length"].iloc[row]))
