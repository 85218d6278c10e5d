"""Planted drift is flagged on each measure; a resample of the reference is not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.drift import DriftThresholds, build_drift_report, profile_texts
from tests.analysis.drift import planted

MEASURES = ("label_balance", "rating", "review_length", "oov_rate")


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return planted.reviews(2000, seed=0)


@pytest.fixture(scope="module")
def vocab(reference: pd.DataFrame):  # noqa: ANN201 - data.text.Vocabulary
    return planted.vocabulary(reference)


def test_reference_has_an_honest_oov_rate(reference: pd.DataFrame, vocab) -> None:  # noqa: ANN001
    shares = profile_texts(reference["text"].tolist(), vocab).oov_shares
    assert 0.0 < shares.mean() < 0.05  # the rare words beyond the top 300


def test_planted_drift_is_flagged_on_every_measure(reference: pd.DataFrame, vocab) -> None:  # noqa: ANN001
    current = planted.reviews(
        1000, seed=1, positive=0.7, length_scale=1.8, slang=0.1, extreme_ratings=0.7
    )
    report = build_drift_report(reference, current, vocab, reference_name="old", current_name="new")
    assert [m.name for m in report.measures] == list(MEASURES)
    for name in MEASURES:
        measure = report.measure(name)
        assert measure.drifted, measure.detail
        assert measure.p_value < 0.01 and measure.value > measure.threshold
    assert report.any_drift and report.skipped == {
        "champion_accuracy": "no champion predictions given"
    }
    assert report.measure("oov_rate").value_current > 0.08  # ~10% slang planted
    assert (
        report.measure("review_length").value_current
        > report.measure("review_length").value_reference
    )
    # the missing-words table leads with the planted slang, which the reference never used
    words = report.tables["oov_words"]
    assert set(words["word"].head(len(planted.SLANG))) == set(planted.SLANG)
    assert (words.loc[words["word"].isin(planted.SLANG), "reference_reviews"] == 0).all()


@pytest.mark.parametrize("how", ["resample", "fresh draw"])
def test_same_distribution_is_not_flagged(reference: pd.DataFrame, vocab, how: str) -> None:  # noqa: ANN001
    if how == "resample":
        current = reference.sample(n=1000, replace=True, random_state=7).reset_index(drop=True)
    else:
        current = planted.reviews(1000, seed=2)
    report = build_drift_report(reference, current, vocab)
    assert not report.any_drift, [m.detail for m in report.drifted]
    assert report.measure("review_length").value < 0.05  # PSI well below 0.1: stable


@pytest.mark.parametrize("knob", MEASURES)
def test_each_knob_moves_only_its_own_measure(reference: pd.DataFrame, vocab, knob: str) -> None:  # noqa: ANN001
    settings = {
        # 65% positive: ratings follow labels, and at 70% their PSI alone nears 0.2 (rightly)
        "label_balance": {"positive": 0.65},
        "rating": {"extreme_ratings": 0.8},
        "review_length": {"length_scale": 1.8},
        "oov_rate": {"slang": 0.1},
    }[knob]
    current = planted.reviews(1000, seed=3, **settings)
    report = build_drift_report(reference, current, vocab)
    drifted = {m.name for m in report.drifted}
    assert drifted == {knob}, [m.detail for m in report.measures]


def test_champion_accuracy_flags_a_planted_drop(reference: pd.DataFrame, vocab) -> None:  # noqa: ANN001
    current = planted.reviews(1000, seed=4)
    ref_p = planted.champion_probs(reference["label"].to_numpy(), 0.90, seed=5)
    dropped = planted.champion_probs(current["label"].to_numpy(), 0.80, seed=6)
    report = build_drift_report(
        reference, current, vocab, reference_prob=ref_p, current_prob=dropped
    )
    acc = report.measure("champion_accuracy")
    assert acc.drifted and acc.value == pytest.approx(0.1, abs=0.03)
    assert acc.stats["drop_low"] > 0.02 and acc.stats["loss_rise"] > 0
    assert acc.stats["loss_rise_low"] < acc.stats["loss_rise"] < acc.stats["loss_rise_high"]
    assert {m.name for m in report.drifted} == {"champion_accuracy"}  # the data itself is stable

    same = planted.champion_probs(current["label"].to_numpy(), 0.90, seed=6)
    better = planted.champion_probs(current["label"].to_numpy(), 0.97, seed=6)
    for probs in (same, better):  # a champion doing as well or better is no reason to retrain
        report = build_drift_report(
            reference, current, vocab, reference_prob=ref_p, current_prob=probs
        )
        assert not report.measure("champion_accuracy").drifted


def test_thresholds_decide(reference: pd.DataFrame, vocab) -> None:  # noqa: ANN001
    current = planted.reviews(1000, seed=1, length_scale=1.3)
    strict = DriftThresholds(psi=0.01)
    lenient = DriftThresholds(psi=5.0)
    assert (
        build_drift_report(reference, current, vocab, thresholds=strict)
        .measure("review_length")
        .drifted
    )
    assert (
        not build_drift_report(reference, current, vocab, thresholds=lenient)
        .measure("review_length")
        .drifted
    )


def test_missing_inputs_are_skipped_or_refused(reference: pd.DataFrame, vocab) -> None:  # noqa: ANN001
    current = planted.reviews(50, seed=9).drop(columns="rating")
    report = build_drift_report(reference, current, vocab, current_name="new")
    assert "rating" not in {m.name for m in report.measures}
    assert report.skipped["rating"] == "no ratings in new"
    with pytest.raises(ValueError, match="both sides"):
        build_drift_report(reference, current, vocab, current_prob=np.full(50, 0.5))
    with pytest.raises(ValueError, match="predictions for"):
        build_drift_report(
            reference,
            current,
            vocab,
            reference_prob=np.full(len(reference), 0.5),
            current_prob=np.full(3, 0.5),
        )
    with pytest.raises(ValueError, match="lacks column 'label'"):
        build_drift_report(reference, current.drop(columns="label"), vocab)
    with pytest.raises(ValueError, match="0 or 1"):
        build_drift_report(reference, current.assign(label=2), vocab)
    with pytest.raises(ValueError, match="1-10"):
        build_drift_report(reference, current.assign(rating=11), vocab)
    with pytest.raises(ValueError, match="no reviews"):
        build_drift_report(reference, current.head(0), vocab)


def test_a_plain_token_set_works_as_vocabulary(reference: pd.DataFrame, vocab) -> None:  # noqa: ANN001
    current = planted.reviews(300, seed=10, slang=0.1)
    as_set = set(vocab.tokens)
    a = build_drift_report(reference, current, vocab).measure("oov_rate")
    b = build_drift_report(reference, current, as_set).measure("oov_rate")
    assert a == b
