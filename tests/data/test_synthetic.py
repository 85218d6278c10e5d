"""The synthetic corpus: deterministic, IMDB-shaped, and carrying the context phenomena."""

import pytest

from data.imdb import COLUMNS
from data.synthetic import synthetic_reviews
from data.text import tokenize


@pytest.fixture(scope="module")
def corpus():
    return synthetic_reviews(2_000, seed=7)


def test_same_seed_same_corpus_other_seed_other_corpus(corpus) -> None:
    assert synthetic_reviews(2_000, seed=7).equals(corpus)
    assert not synthetic_reviews(2_000, seed=8)["text"].equals(corpus["text"])


def test_schema_and_balance_match_imdb(corpus) -> None:
    assert list(corpus.columns) == COLUMNS
    assert corpus.groupby(["split", "label"]).size().tolist() == [500, 500, 500, 500]
    assert corpus["review_id"].is_unique
    assert corpus["review_id"].str.fullmatch(r"(train|test)/(pos|neg)/\d+_\d+").all()


def test_ratings_are_consistent_with_labels(corpus) -> None:
    pos, neg = corpus[corpus["label"] == 1], corpus[corpus["label"] == 0]
    assert pos["rating"].between(7, 10).all() and neg["rating"].between(1, 4).all()
    assert corpus["review_id"].str.extract(r"_(\d+)$")[0].astype(int).equals(corpus["rating"])


def test_lengths_range_from_a_handful_to_hundreds_of_words(corpus) -> None:
    lengths = corpus["text"].map(lambda t: len(tokenize(t)))
    assert lengths.min() <= 8 and lengths.max() >= 300


def test_carries_negation_diminishers_contrast_and_rare_words(corpus) -> None:
    text = corpus["text"].str.lower()
    neg = corpus["label"] == 0
    assert text[neg].str.contains(r"\bnot (?:brilliant|wonderful|superb|excellent)").any()
    assert text[neg].str.contains(r"\bmildly (?:entertaining|funny|charming)").any()
    assert text[neg].str.contains(r"wasted on a").any()
    assert text[~neg].str.contains(r"\bnot (?:dull|boring|awful)").any()
    words = {w for t in corpus["text"] for w in tokenize(t)}
    assert len(words) > 500  # made-up rare words far beyond the ~100 template words


def test_rejects_impossible_sizes() -> None:
    with pytest.raises(ValueError, match="at least 4"):
        synthetic_reviews(2)
