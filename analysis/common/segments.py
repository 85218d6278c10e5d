"""Review segments: the features that describe a review, one bin rule, and the `Segment` type.

The dashboard (loss per bin), the weak-segment insights and the regression check (this run vs the
champion, per segment) all cut the reviews by the same features with the same rule:

- bins are [left, right), the last one closed on the right (numpy's histogram convention), so
  every finite value falls in exactly one bin and the maximum is never left out;
- a feature with at most `DISCRETE_MAX_VALUES` distinct values (the star rating) is cut per value,
  since a range of a discrete feature is a made-up interval;
- edges are equal-width (a histogram over the whole range) or quantiles (bins of similar size, so
  no tail bin holds a handful of reviews whose mean loss is noise), computed on the table the
  segments describe. Quantile cuts fall between distinct values (ties stay in one bin; a value
  holding a bin's worth of reviews, zero out-of-vocabulary tokens say, is a bin of its own) and
  leave every bin at least half an equal share of the reviews.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

EdgeRule = Literal["equal_width", "quantile"]
SegmentKind = Literal["overall", "feature", "bucket", "cluster"]
DISCRETE_MAX_VALUES = 10  # a feature with at most this many values is split per value


@dataclass(frozen=True)
class Feature:
    """A per-review column segments can be cut by, and how to speak of it."""

    name: str
    axis_label: str  # a plot axis
    noun: str  # in a sentence: "Reviews with {noun} ..."
    fmt: Callable[[float], str]
    # False for a property of the model's prediction (confidence): low confidence means high loss
    # by construction, so a segment on it would always be "found" and say nothing about reviews.
    describes_review: bool = True


def _count(unit: str) -> Callable[[float], str]:
    return lambda v: f"{v:,.0f} {unit}"


FEATURES: dict[str, Feature] = {
    f.name: f
    for f in (
        Feature("length", "review length (tokens, before truncation)", "length", _count("tokens")),
        Feature(
            "oov_count", "out-of-vocabulary tokens", "out-of-vocabulary count", _count("tokens")
        ),
        Feature(
            "oov_ratio",
            "share of out-of-vocabulary tokens",
            "out-of-vocabulary share",
            "{:.1%}".format,
        ),
        Feature(
            "subjectivity",
            "TextBlob subjectivity (0 objective .. 1 subjective)",
            "TextBlob subjectivity",
            "{:.2f}".format,
        ),
        Feature("polarity", "TextBlob polarity (-1 .. 1)", "TextBlob polarity", "{:+.2f}".format),
        Feature("rating", "star rating", "rating", lambda v: f"{v:g}/10"),
        Feature(
            "confidence",
            "model confidence |p - 0.5| x 2",
            "model confidence",
            "{:.2f}".format,
            describes_review=False,
        ),
    )
}
# What segments are cut by (insights, regression check); the dashboard also plots confidence.
SEGMENT_FEATURES = tuple(name for name, f in FEATURES.items() if f.describes_review)
DASHBOARD_FEATURES = tuple(FEATURES)


def feature(name: str) -> Feature:
    """The feature called `name`; an unknown column is spoken of by its name."""
    return FEATURES.get(name) or Feature(name, name, name, "{:.3g}".format)


@dataclass(frozen=True)
class Segment:
    """A named set of reviews (a boolean mask over a table's rows) and how to describe it."""

    name: str  # short, stable: "length bin 3", "rating=8", "cluster=2"
    kind: SegmentKind
    description: str  # a sentence subject: "Reviews with length from 612 to under 1,024 tokens"
    mask: np.ndarray
    feature: str | None = None
    bin: int | None = None
    left: float | None = None
    right: float | None = None


def edges(values: np.ndarray, n_bins: int, rule: EdgeRule = "equal_width") -> np.ndarray:
    """Bin edges over the finite values; a constant feature gets one bin around its value."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return np.array([0.0, 1.0])
    lo, hi = float(values.min()), float(values.max())
    if lo == hi:
        return np.array([lo - 0.5, hi + 0.5])
    if rule == "quantile":
        return _quantile_edges(values, n_bins)
    return np.histogram_bin_edges(values, bins=n_bins, range=(lo, hi))


def _quantile_edges(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-count edges with ties kept together and a minimum support per bin.

    Each cut goes between two distinct values (an edge is the first value above the cut, so
    [left, right) holds whole tie groups), at the rank nearest an equal share of the reviews not
    yet binned; a cut that would leave fewer than half an equal share (n / (2 x n_bins)) on either
    side is not made. So a value holding a bin's worth of reviews or more (zero out-of-vocabulary
    tokens, say) is a bin of its own, the bins after it share the rest equally, and no tail bin
    holds a handful of reviews.
    """
    ordered = np.sort(values)
    n = len(ordered)
    min_count = max(1, math.ceil(n / (2 * n_bins)))
    _, first = np.unique(ordered, return_index=True)
    cuts = first[1:]  # rank of the first review of each distinct value but the least
    out, prev = [ordered[0]], 0
    for bins_left in range(n_bins, 1, -1):
        allowed = cuts[(cuts - prev >= min_count) & (n - cuts >= min_count)]
        if len(allowed) == 0:
            break
        target = prev + (n - prev) / bins_left
        prev = int(allowed[np.argmin(np.abs(allowed - target))])
        out.append(ordered[prev])
    out.append(ordered[-1])
    return np.unique(out)


def assign_bins(values: np.ndarray, bin_edges: np.ndarray) -> np.ndarray:
    """Bin index of each value under the one rule ([left, right), last bin closed); -1 outside."""
    values = np.asarray(values, dtype=float)
    which = np.searchsorted(bin_edges[1:-1], values, side="right")
    inside = np.isfinite(values) & (values >= bin_edges[0]) & (values <= bin_edges[-1])
    return np.where(inside, which, -1)


def range_description(name: str, left: float, right: float, first: bool, last: bool) -> str:
    """'Reviews with length from 612 to under 1,024 tokens' for the bin [left, right)."""
    f = feature(name)
    if first and last:
        return f"Reviews with any {f.noun}"
    if first:
        return f"Reviews with {f.noun} under {f.fmt(right)}"
    if last:
        return f"Reviews with {f.noun} of at least {f.fmt(left)}"
    return f"Reviews with {f.noun} from {f.fmt(left)} to under {f.fmt(right)}"


def feature_segments(
    values: np.ndarray, name: str, n_bins: int, rule: EdgeRule = "equal_width"
) -> list[Segment]:
    """The non-empty segments of one feature: one per value when it has few, else one per bin."""
    values = np.asarray(values, dtype=float)
    finite = np.isfinite(values)
    distinct = np.unique(values[finite])
    f = feature(name)
    if len(distinct) == 0:
        return []
    if len(distinct) <= DISCRETE_MAX_VALUES:
        return [
            Segment(
                f"{name}={v:g}", "feature", f"Reviews with {f.noun} {f.fmt(v)}", values == v, name
            )
            for v in distinct
        ]
    bin_edges = edges(values, n_bins, rule)
    which = assign_bins(values, bin_edges)
    # Whole-number features: x >= 2.4 is x >= 3 and x < 19.6 is x < 20; say the simpler one.
    whole = bool(np.all(distinct == np.round(distinct)))
    tidy: Callable[[float], float] = math.ceil if whole else float
    out = []
    n = len(bin_edges) - 1
    for b in range(n):
        members = which == b
        if not members.any():
            continue
        left, right = float(bin_edges[b]), float(bin_edges[b + 1])
        out.append(
            Segment(
                f"{name} bin {b}",
                "feature",
                range_description(name, tidy(left), tidy(right), b == 0, b == n - 1),
                members,
                name,
                b,
                left,
                right,
            )
        )
    return out
