"""Likely label errors (analysis/errors/label_issues.py) with planted answers: labels flipped on
clearly-worded synthetic reviews, movie titles that give the label away, hand-made test tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.errors.label_issues import (
    ISSUE_COLUMNS,
    OOF_COLUMNS,
    cross_validated_probs,
    flag_label_issues,
    grouped_folds,
    label_issues,
)
from data.prepare import movie_groups
from data.synthetic import synthetic_reviews

PLANTED = 40


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    """1,000 synthetic training reviews (their labels are right)."""
    frame = synthetic_reviews(2_000, seed=0)
    return frame[frame["split"] == "train"].reset_index(drop=True)


@pytest.fixture(scope="module")
def flipped(train: pd.DataFrame) -> tuple[pd.DataFrame, set[str]]:
    """The training reviews with 40 of the clearly-worded ones (8+ sentences) flipped."""
    clear = np.flatnonzero(train["text"].str.count(r"\.").to_numpy() >= 8)
    rows = np.random.default_rng(0).choice(clear, PLANTED, replace=False)
    noisy = train.copy()
    noisy.loc[rows, "label"] = 1 - noisy.loc[rows, "label"]
    return noisy, set(noisy.loc[rows, "review_id"])


def test_cleanlab_finds_the_planted_flips_and_estimates_their_number(flipped) -> None:
    noisy, planted = flipped
    probs = cross_validated_probs(noisy, movie_groups(noisy).to_numpy())
    assert list(probs.columns) == list(OOF_COLUMNS) and probs["prob_positive"].notna().all()
    issues = label_issues(probs.head(0), probs.assign(text=noisy["text"]))
    found = set(issues.table.loc[issues.table["split"] == "train", "review_id"])
    precision, recall = len(found & planted) / len(found), len(found & planted) / len(planted)
    assert precision >= 0.7 and recall >= 0.9, (precision, recall)
    train = issues.summary("train")
    assert train is not None and abs(train.estimate - PLANTED) <= 0.3 * PLANTED, train
    # The suggestion is the original label: the flip undone.
    given = issues.table.set_index("review_id").loc[sorted(found & planted)]
    assert (given["suggested_label"] == 1 - given["label"]).all()


def test_an_unflipped_corpus_has_no_likely_label_error(train: pd.DataFrame) -> None:
    probs = cross_validated_probs(train, movie_groups(train).to_numpy())
    flags = flag_label_issues(probs["label"].to_numpy(), probs["prob_positive"].to_numpy())
    assert flags.flagged.sum() <= 5 and flags.estimate <= 5


def _leaky_titles(movies: int = 60, per_movie: int = 5) -> pd.DataFrame:
    """Reviews whose only signal is the movie's made-up title: every movie's reviews share a label."""
    rng = np.random.default_rng(1)
    filler = [f"word{i}" for i in range(40)]
    rows = []
    for m in range(movies):
        for r in range(per_movie):
            words = " ".join(rng.choice(filler, size=12))
            rows.append((f"m{m}-r{r}", f"title{m} {words} title{m}", m % 2, f"tt{m}"))
    return pd.DataFrame(rows, columns=["review_id", "text", "label", "movie"])


def test_the_cross_validation_is_grouped_by_movie() -> None:
    frame = _leaky_titles()
    groups = movie_groups(frame).to_numpy()
    folds = grouped_folds(frame["label"].to_numpy(), groups)
    assert sorted(np.unique(folds)) == [0, 1, 2, 3, 4]
    # No movie is in two folds, so never both fitted on and held out.
    assert (frame.assign(fold=folds).groupby("movie")["fold"].nunique() == 1).all()
    grouped = cross_validated_probs(frame, groups)
    assert (grouped["fold"].to_numpy() == folds).all()
    accuracy = ((grouped["prob_positive"] >= 0.5) == frame["label"]).mean()
    # Each review as its own group lets titles carry the label across: the leak grouping stops.
    leaky = cross_validated_probs(frame, frame["review_id"].to_numpy())
    leaky_accuracy = ((leaky["prob_positive"] >= 0.5) == frame["label"]).mean()
    assert accuracy < 0.7 and leaky_accuracy > 0.9, (accuracy, leaky_accuracy)


def test_reviews_without_a_movie_are_groups_of_their_own() -> None:
    frame = pd.DataFrame({"review_id": ["a", "b", "c"], "movie": ["tt1", None, "tt1"]})
    assert movie_groups(frame).tolist() == ["tt1", "review:b", "tt1"]


def _test_table() -> pd.DataFrame:
    """20 positive, 20 negative; per class 16 right and sure, 2 confidently wrong (the planted
    label errors), 2 wrong but unsure (model errors, not label errors)."""
    pos = [0.95] * 16 + [0.02] * 2 + [0.4] * 2
    neg = [0.05] * 16 + [0.98] * 2 + [0.6] * 2
    return pd.DataFrame(
        {
            "review_id": [f"p{i}" for i in range(20)] + [f"n{i}" for i in range(20)],
            "label": [1] * 20 + [0] * 20,
            "prob_positive": pos + neg,
            "text": [f"review <br />text {i}" for i in range(40)],
        }
    )


def test_accuracy_without_label_issues_sets_aside_exactly_the_flagged_test_reviews() -> None:
    issues = label_issues(_test_table())
    assert set(issues.table["review_id"]) == {"p16", "p17", "n16", "n17"}
    assert issues.test_accuracy == pytest.approx(32 / 40)
    assert issues.test_accuracy_without == pytest.approx(32 / 36)  # the 4 unsure errors stay
    test = issues.summary("test")
    assert test is not None and (test.reviews, test.flagged, test.estimate) == (40, 4, 4)
    assert issues.metrics() == {
        "label_issues_test_estimate": 4.0,
        "label_issues_test_flagged": 4.0,
        "test_acc_without_label_issues": pytest.approx(32 / 36),
    }


def test_issue_table_is_worst_first_per_split_with_suggestions_and_snippets() -> None:
    test = _test_table()
    train = test.assign(review_id="t" + test["review_id"])
    train.loc[train["review_id"] == "tp16", "prob_positive"] = 0.001  # the worst of all
    issues = label_issues(test, train)
    table = issues.table
    assert list(table.columns) == list(ISSUE_COLUMNS)
    assert table["split"].tolist() == ["test"] * 4 + ["train"] * 4
    for _, part in table.groupby("split"):
        assert part["label_quality"].is_monotonic_increasing
    assert table[table["split"] == "train"]["review_id"].iat[0] == "tp16"
    assert (table["suggested_label"] == 1 - table["label"]).all()
    assert table["snippet"].str.startswith("review text").all()  # tags stripped
    assert issues.metrics()["label_issues_train_estimate"] == 4.0
    markdown = issues.markdown()
    assert "## Likely label errors" in markdown
    assert "0.800 as is; 0.889 with the 4 flagged reviews set aside" in markdown
    assert "### The 4 worst (test)" in markdown and "### The 4 worst (train)" in markdown
    assert "| tp16 | positive | negative |" in markdown


def test_one_class_flags_nothing() -> None:
    flags = flag_label_issues(np.ones(6, dtype=int), np.array([0.05, 0.1, 0.3, 0.4, 0.9, 0.95]))
    assert not flags.flagged.any() and flags.estimate == 0
    assert flags.quality.tolist() == pytest.approx([0.05, 0.1, 0.3, 0.4, 0.9, 0.95])
