from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.common.thresholds import Thresholds
from analysis.errors.insights import find_weak_segments, insights_markdown, segment_stats


def planted_table(n: int = 1000, seed: int = 0, weak_long: bool = True) -> pd.DataFrame:
    """Reviews longer than ~80th percentile have 3x the loss when `weak_long`."""
    rng = np.random.default_rng(seed)
    length = rng.integers(10, 1000, n)
    long = length > np.quantile(length, 0.8)
    loss = rng.exponential(0.2, n) * (3.0 if weak_long else 1.0) ** long
    label = rng.integers(0, 2, n)
    wrong = rng.random(n) < np.clip(loss, 0, 0.9)
    return pd.DataFrame(
        {
            "length": length,
            "oov_count": rng.integers(0, 3, n),
            "oov_ratio": rng.uniform(0, 0.05, n),
            "subjectivity": rng.uniform(0.3, 0.6, n),
            "polarity": np.where(label == 1, 1, -1) * rng.uniform(0.1, 0.5, n),
            "rating": np.where(label == 1, 8, 3),
            "label": label,
            "pred": np.where(wrong, 1 - label, label),
            "loss": loss,
        }
    )


def test_planted_weak_segment_is_found_and_phrased() -> None:
    table = planted_table()
    segments = find_weak_segments(table)
    top = segments.iloc[0]
    assert top["segment"] == "length bin 4" and top["kind"] == "feature"
    assert top["description"].startswith("Reviews with length of at least ")
    assert top["loss_ratio"] > 2 and abs(top["share"] - 0.2) < 0.01
    assert top["loss_low"] < top["mean_loss"] < top["loss_high"]
    assert top["ratio_low"] == pytest.approx(top["loss_low"] / table["loss"].mean())
    # weak means weak at the interval's lower bound
    assert (segments["ratio_low"] >= 1.5).all() and (segments["share"] >= 0.02).all()
    assert segments["impact"].is_monotonic_decreasing
    text = insights_markdown(segments, table)
    first = next(line for line in text.splitlines() if line.startswith("1. "))
    share = f"{top['share']:.1%}"
    assert first.startswith(f"1. {top['description']} ({int(top['size']):,} reviews, {share}) have")
    interval = f"(95% CI {top['ratio_low']:.1f}x-{top['ratio_high']:.1f}x)"
    assert f"{top['loss_ratio']:.1f}x the mean loss {interval}; accuracy" in first
    assert "overall." in first
    assert "at the lower bound of its 95% bootstrap interval" in text


def test_no_weak_segment_is_said_honestly() -> None:
    table = planted_table(weak_long=False)
    table["loss"] = 0.3 + np.random.default_rng(1).normal(0, 0.01, len(table))
    segments = find_weak_segments(table)
    assert segments.empty
    text = insights_markdown(segments, table, candidates=segment_stats(table))
    assert "No weak segment found" in text and "The hardest segment checked is" in text


def test_min_support_excludes_tiny_segments() -> None:
    table = planted_table(weak_long=False)
    table.loc[:4, "loss"] = 50.0  # 5 reviews (0.5%) with huge loss ...
    table.loc[:4, "oov_ratio"] = 0.5  # ... and a fixed bucket that holds exactly them
    everything = segment_stats(table)
    assert (everything["segment"] == "oov_ratio>0.1").any()
    assert "oov_ratio>0.1" not in set(find_weak_segments(table)["segment"])
    assert "oov_ratio>0.1" in set(
        find_weak_segments(table, Thresholds(min_support=0.001))["segment"]
    )


def test_identical_segments_are_merged_and_clusters_named() -> None:
    table = planted_table(weak_long=False)
    # The cluster holds exactly the top quantile bin ([left, right), the last bin closed).
    table["cluster"] = (table["length"] >= np.quantile(table["length"], 0.8)).astype(int)
    table.loc[table["cluster"] == 1, "loss"] *= 4
    clusters = pd.DataFrame({"cluster": [0, 1], "top_words": ["fine ok", "epic saga"]})
    segments = find_weak_segments(table, clusters=clusters)
    assert len(segments) >= 1
    top = segments.iloc[0]
    assert "cluster 1 (distinctive words: epic, saga)" in top["same_as"]
    text = insights_markdown(segments, table)
    assert "reviews in cluster 1" in text


def test_empty_table() -> None:
    empty = planted_table().iloc[0:0]
    assert find_weak_segments(empty).empty
    assert "No samples to analyse" in insights_markdown(find_weak_segments(empty), empty)


def test_a_small_noisy_segment_is_not_weak_and_a_small_steady_one_is() -> None:
    """Two 3% buckets with 2x the mean loss: one from a few confidently wrong reviews (a wide
    interval), one from every review losing more (a narrow one). Only the second is weak."""
    table = planted_table(n=2000, weak_long=False, seed=3)
    overall = table["loss"].mean()
    noisy = np.arange(60)  # "more than 10% out-of-vocabulary tokens"
    table.loc[noisy, "oov_ratio"] = 0.5
    table.loc[noisy, "loss"] = 0.1
    table.loc[noisy[:3], "loss"] = 2 * 60 * overall / 3  # three reviews carry the whole excess
    steady = np.arange(60, 120)  # "short (<50 tokens)"
    table.loc[:, "length"] = table["length"].clip(lower=50)
    table.loc[steady, "length"] = 20
    table.loc[steady, "loss"] = np.random.default_rng(0).uniform(1.9, 2.1, 60) * overall
    stats = segment_stats(table).set_index("segment")
    for name in ("oov_ratio>0.1", "short (<50 tokens)"):
        # by its point estimate alone each would be called weak
        assert stats.at[name, "loss_ratio"] >= 1.5 and stats.at[name, "share"] >= 0.02
    assert (
        stats.at["oov_ratio>0.1", "ratio_low"] < 1.5 < stats.at["short (<50 tokens)", "ratio_low"]
    )
    width = stats["ratio_high"] - stats["ratio_low"]
    assert width["oov_ratio>0.1"] > 5 * width["short (<50 tokens)"]
    weak = set(find_weak_segments(table)["segment"])
    assert "short (<50 tokens)" in weak and "oov_ratio>0.1" not in weak


def test_intervals_are_seeded_per_segment() -> None:
    table = planted_table()
    first, again = segment_stats(table), segment_stats(table)
    pd.testing.assert_frame_equal(first, again)
    fewer = segment_stats(table, features=("length",)).set_index("segment")
    shared = fewer.index.intersection(first["segment"])
    assert len(shared) >= 5  # the length bins at least
    # adding segments (other features) leaves each segment's interval as it was
    pd.testing.assert_series_equal(
        first.set_index("segment").loc[shared, "loss_low"], fewer.loc[shared, "loss_low"]
    )
