"""One bin rule for every segment: [left, right), last bin closed, discrete features per value."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analysis.common.segments import (
    DASHBOARD_FEATURES,
    SEGMENT_FEATURES,
    assign_bins,
    edges,
    feature_segments,
)


@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=200),
    st.integers(1, 12),
    st.sampled_from(["equal_width", "quantile"]),
)
def test_every_finite_value_falls_in_exactly_one_bin(values, n_bins, rule) -> None:
    values = np.asarray(values)
    bin_edges = edges(values, n_bins, rule)
    which = assign_bins(values, bin_edges)
    assert np.all((which >= 0) & (which < len(bin_edges) - 1))


def test_bins_are_closed_on_the_left_and_the_maximum_is_in_the_last_bin() -> None:
    bin_edges = np.array([0.0, 10.0, 20.0])
    which = assign_bins(np.array([0.0, 9.99, 10.0, 20.0, 20.01, np.nan]), bin_edges)
    assert which.tolist() == [0, 0, 1, 1, -1, -1]


def test_a_discrete_feature_is_cut_per_value() -> None:
    rating = np.array([1, 1, 2, 8, 8, 8, 10], dtype=float)
    segments = feature_segments(rating, "rating", n_bins=5)
    assert [s.name for s in segments] == ["rating=1", "rating=2", "rating=8", "rating=10"]
    assert segments[2].description == "Reviews with rating 8/10"
    assert segments[2].mask.sum() == 3


def test_ranges_are_described_as_they_are_cut() -> None:
    length = np.arange(100, dtype=float)  # 100 distinct whole numbers
    segments = feature_segments(length, "length", n_bins=4, rule="quantile")
    assert [int(s.mask.sum()) for s in segments] == [25, 25, 25, 25]
    assert segments[0].description == "Reviews with length under 25 tokens"
    assert segments[1].description == "Reviews with length from 25 tokens to under 50 tokens"
    assert segments[-1].description == "Reviews with length of at least 75 tokens"
    # quantile cuts fall between distinct values: an edge is the first value above the cut
    assert (segments[1].bin, segments[1].left, segments[1].right) == (1, 25.0, 50.0)
    members = np.flatnonzero(segments[1].mask)
    assert members.min() == 25 and members.max() == 49
    # equal-width edges fall between whole numbers: said as the whole numbers they mean
    segments = feature_segments(length, "length", n_bins=8, rule="equal_width")
    assert (segments[1].left, segments[1].right) == (12.375, 24.75)
    assert segments[1].description == "Reviews with length from 13 tokens to under 25 tokens"
    members = np.flatnonzero(segments[1].mask)
    assert members.min() == 13 and members.max() == 24  # ceil: x >= 12.375 is x >= 13


@given(
    st.lists(st.integers(0, 30), min_size=1, max_size=300),
    st.integers(1, 12),
)
def test_no_quantile_bin_holds_less_than_half_an_equal_share(values, n_bins) -> None:
    values = np.asarray(values, dtype=float)
    counts = np.bincount(assign_bins(values, edges(values, n_bins, "quantile")))
    assert counts.sum() == len(values) and len(counts) <= n_bins
    assert counts.min() >= min(len(values), math.ceil(len(values) / (2 * n_bins)))


def test_quantile_bins_hold_equal_counts_on_a_long_tail() -> None:
    length = np.random.default_rng(0).lognormal(5, 1, 5000).round()  # review lengths: a long tail
    counts = np.bincount(assign_bins(length, edges(length, 10, "quantile")))
    assert len(counts) == 10 and counts.min() >= 450 and counts.max() <= 550
    # equal-width bins of the same values: the tail bins hold a handful of reviews
    assert np.bincount(assign_bins(length, edges(length, 10, "equal_width"))).min() < 10


def test_a_tied_value_is_a_bin_of_its_own_and_the_rest_is_shared_equally() -> None:
    # 30% of reviews with no out-of-vocabulary token, the rest spread out
    values = np.concatenate([np.zeros(300), np.arange(1, 701, dtype=float)])
    bin_edges = edges(values, 5, "quantile")
    counts = np.bincount(assign_bins(values, bin_edges))
    assert bin_edges[:2].tolist() == [0.0, 1.0] and counts[0] == 300  # [0, 1): exactly the zeros
    assert counts[1:].tolist() == [175, 175, 175, 175]
    # a tail too small for a bin of its own joins the bin before it
    values = np.concatenate([np.zeros(95), np.arange(1, 6, dtype=float)])
    assert np.bincount(assign_bins(values, edges(values, 10, "quantile"))).tolist() == [95, 5]


def test_confidence_is_plotted_but_never_a_segment() -> None:
    assert "confidence" in DASHBOARD_FEATURES and "confidence" not in SEGMENT_FEATURES


@pytest.mark.parametrize("values", [np.array([]), np.array([np.nan, np.nan])])
def test_no_values_no_segments(values: np.ndarray) -> None:
    assert feature_segments(values, "length", n_bins=5) == []
