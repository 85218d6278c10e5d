"""The real Large Movie Review Dataset, read through $IMDB_ARCHIVE (skipped only where it is unset)."""

import pytest

from analysis.behaviour.templates import filler_problems, filler_words, word_polarities
from data.imdb import load_imdb
from data.prepare import PreparedData, prepare_dataset
from data.text import tokenize

pytestmark = pytest.mark.real_data


def test_full_archive_gives_the_checked_25k_25k_table(imdb_archive, fresh_settings) -> None:
    frame, digest = load_imdb(imdb_archive)
    assert len(frame) == 50_000 and len(digest) == 64
    assert frame.groupby(["split", "label"]).size().to_dict() == {
        ("test", 0): 12_500,
        ("test", 1): 12_500,
        ("train", 0): 12_500,
        ("train", 1): 12_500,
    }
    assert frame["review_id"].is_unique
    assert set(frame.loc[frame["label"] == 1, "rating"]) == {7, 8, 9, 10}
    assert set(frame.loc[frame["label"] == 0, "rating"]) == {1, 2, 3, 4}
    assert (frame["text"].str.len() > 0).all()
    # Every review knows its movie (urls files); the official splits share almost no movie.
    assert frame["movie"].str.fullmatch(r"tt\d+").all()
    movies = frame.groupby("split")["movie"].agg(set)
    assert len(movies["train"] & movies["test"]) <= 1 < len(movies["train"])

    prepared = PreparedData.load(prepare_dataset("imdb", imdb_archive))
    counts = prepared.frame["split"].value_counts().to_dict()
    assert counts == {"test": 25_000, "train": 22_500, "val": 2_500}
    sides = prepared.frame.groupby("split")["movie"].agg(set)
    assert not sides["train"] & sides["val"]  # validation is grouped by movie
    assert prepared.ids.shape == (50_000, 250) and len(prepared.vocab) == 10_000
    assert prepared.frame["oov_count"].gt(0).mean() > 0.5  # real reviews use rare words


def test_the_behaviour_fillers_are_sentiment_free_in_the_training_reviews(
    imdb_archive, fresh_settings
) -> None:
    """The opening sentences the behavioural cases put before their templates lean no way in the
    real training reviews (the test split is not read)."""
    frame, _ = load_imdb(imdb_archive)
    train = frame[frame["split"] == "train"]
    words = filler_words() | {"recommended"}
    polarity = word_polarities(map(tokenize, train["text"]), train["label"], words)
    assert filler_problems(polarity) == []
    assert polarity["recommended"] > 1.0  # the rule can fail: in IMDB "recommended" is praise
