"""One bin rule for every segment: [left, right), last bin closed, discrete features per value."""

from __future__ import annotations

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
    assert (segments[1].bin, segments[1].left, segments[1].right) == (1, 24.75, 49.5)
    members = np.flatnonzero(segments[1].mask)
    assert members.min() == 25 and members.max() == 49  # ceil: x >= 24.75 is x >= 25


def test_confidence_is_plotted_but_never_a_segment() -> None:
    assert "confidence" in DASHBOARD_FEATURES and "confidence" not in SEGMENT_FEATURES


@pytest.mark.parametrize("values", [np.array([]), np.array([np.nan, np.nan])])
def test_no_values_no_segments(values: np.ndarray) -> None:
    assert feature_segments(values, "length", n_bins=5) == []
