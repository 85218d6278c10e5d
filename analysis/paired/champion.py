"""Is a retrained model worse than the champion of its architecture, and where?

Both models are evaluated on the same test reviews, so every comparison here is *paired*: the two
per-review tables are joined by `pairing.pair_with_champion` (the champion first: its order,
columns `<column>_old` / `<column>_new`), and each review contributes its own loss difference
(new - old). Pairing removes the between-review variance that dominates an unpaired comparison.

Segments (all defined on the CHAMPION's table, so both models are scored on the same reviews):
- the whole test set ("all reviews");
- each review feature of `common.segments.SEGMENT_FEATURES`, cut by `feature_segments` (equal-width,
  10 bins, edges and membership from the champion's values; a feature with few values per value);
- each champion k-means cluster, matched to a new cluster by review overlap (`clusters`: Jaccard,
  Hungarian assignment), so "cluster 3 got worse" names the same group of reviews in both runs; new
  clusters that match no champion cluster are added on their own members.

Alert rule (`regression_alerts`): a segment raises an alert when
    lower bound of the paired-bootstrap 95% interval of (new mean loss - old mean loss)
    > thresholds.loss_rise
and it holds at least `thresholds.min_support` of the test reviews. The threshold is an ABSOLUTE
increase of mean cross-entropy in nats: a relative one explodes on easy segments (0.01 -> 0.02 nats
is "+100%" and harmless). Judging the interval rather than the point estimate keeps ~60 noisy
segments from raising false alarms; the whole test set is one of the segments, which is the
overall alert. Any alert blocks promotion (`RegressionCheck.blocks_promotion`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.common.segments import SEGMENT_FEATURES, Segment, feature_segments
from analysis.common.thresholds import DEFAULT_THRESHOLDS, Thresholds
from analysis.paired.bootstrap import bootstrap_mean_ci, segment_rng
from analysis.paired.champion_report import change_sentence, regression_markdown
from analysis.paired.clusters import CLUSTER_MATCH_COLUMNS, match_paired_clusters
from analysis.paired.drift import token_drift
from analysis.paired.pairing import NEW, OLD, FlipCounts, outcome, pair_with_champion

logger = logging.getLogger(__name__)

DEFAULT_BINS = 10  # as the dashboard's panels
DRIFTED_TOKENS = 5  # words a `RegressionCheck` names

CHANGE_COLUMNS = (
    "segment",
    "kind",
    "description",
    "feature",
    "bin",
    "bin_left",
    "bin_right",
    "old_cluster",
    "new_cluster",
    "jaccard",
    "n",
    "share",
    "old_loss",
    "new_loss",
    "delta",
    "ci_low",
    "ci_high",
    "old_accuracy",
    "new_accuracy",
)
FLIP_EXAMPLE_COLUMNS = (
    "review_id",
    "direction",
    "label",
    "old_pred",
    "new_pred",
    "old_prob_positive",
    "new_prob_positive",
    "old_loss",
    "new_loss",
    "loss_change",
)


# --------------------------------------------------------------------------------------------
# 1. Prediction flips
# --------------------------------------------------------------------------------------------


def _flips(
    joined: pd.DataFrame, text: Mapping[Any, str] | pd.Series | None, examples: int
) -> tuple[FlipCounts, pd.DataFrame]:
    cells = outcome(joined, OLD, NEW)
    counts = FlipCounts.from_outcome(cells)
    old_ok = ~cells.wrong_a
    frame = pd.DataFrame(
        {
            "review_id": joined["review_id"],
            "direction": np.where(old_ok, "right_to_wrong", "wrong_to_right"),
            "label": joined["label"],
            "old_pred": joined["pred_old"],
            "new_pred": joined["pred_new"],
            "old_prob_positive": joined["prob_positive_old"],
            "new_prob_positive": joined["prob_positive_new"],
            "old_loss": joined["loss_old"],
            "new_loss": joined["loss_new"],
            "loss_change": joined["loss_new"] - joined["loss_old"],
        }
    )[cells.wrong_a != cells.wrong_b]
    picked = []
    for direction in ("right_to_wrong", "wrong_to_right"):
        part = frame[frame["direction"] == direction]
        order = part["loss_change"].abs().sort_values(ascending=False, kind="stable").index
        picked.append(part.loc[order[:examples]])
    shown = pd.concat(picked, ignore_index=True).reindex(columns=list(FLIP_EXAMPLE_COLUMNS))
    if text is not None:
        lookup = text if isinstance(text, pd.Series) else pd.Series(dict(text), dtype=object)
        lookup.index = lookup.index.astype(str)  # review ids are strings in a validated table
        shown["text"] = shown["review_id"].map(lookup)
    return counts, shown.reset_index(drop=True)


def prediction_flips(
    new: pd.DataFrame,
    old: pd.DataFrame,
    text: Mapping[Any, str] | pd.Series | None = None,
    examples: int = 5,
) -> tuple[FlipCounts, pd.DataFrame]:
    """Reviews whose correctness changed between the champion (`old`) and the new model.

    Counts: the 2x2 of `pairing.outcome` read as flips. Examples: up to `examples` reviews per
    direction, the largest |loss change| first (the most telling flips), with `text` (review_id
    -> text) when given.
    """
    return _flips(pair_with_champion(new, old), text, examples)


# --------------------------------------------------------------------------------------------
# 2. Segment changes with a paired bootstrap
# --------------------------------------------------------------------------------------------


def _segments(
    joined: pd.DataFrame, features: Sequence[str], n_bins: int, clusters: pd.DataFrame | None
) -> list[tuple[Segment, dict[str, Any]]]:
    """Every segment with the extra columns of its row: overall, feature bins, clusters."""
    out: list[tuple[Segment, dict[str, Any]]] = []
    if len(joined):
        out.append(
            (Segment("all reviews", "overall", "All reviews", np.ones(len(joined), bool)), {})
        )
    for name in features:
        if f"{name}_old" not in joined.columns:
            logger.warning("segment_changes: no column %r in the champion table, skipped", name)
            continue
        values = joined[f"{name}_old"].to_numpy(dtype=float)
        for seg in feature_segments(values, name, n_bins, "equal_width"):
            extra = {"feature": name, "bin": seg.bin}
            extra |= {"bin_left": _or_nan(seg.left), "bin_right": _or_nan(seg.right)}
            out.append((seg, extra))
    if "cluster_old" not in joined.columns or "cluster_new" not in joined.columns:
        return out
    clusters = match_paired_clusters(joined) if clusters is None else clusters
    cluster_old = joined["cluster_old"].to_numpy()
    cluster_new = joined["cluster_new"].to_numpy()
    for pair in clusters.itertuples(index=False):
        if pd.notna(pair.old_cluster):
            # Champion membership: reviews that left the cluster (maybe because the new model now
            # gets them wrong) still count against it.
            matched = (
                f"new cluster {pair.new_cluster}, Jaccard {pair.jaccard:.2f}"
                if pd.notna(pair.new_cluster)
                else "no matching new cluster"
            )
            seg = Segment(
                f"cluster old {pair.old_cluster}",
                "cluster",
                f"Reviews in champion cluster {pair.old_cluster} ({matched})",
                cluster_old == pair.old_cluster,
            )
        else:  # a group only the new model forms: its own members
            seg = Segment(
                f"cluster new {pair.new_cluster}",
                "cluster",
                f"Reviews in new cluster {pair.new_cluster} (no champion match)",
                cluster_new == pair.new_cluster,
            )
        extra = {"old_cluster": pair.old_cluster, "new_cluster": pair.new_cluster}
        out.append((seg, extra | {"jaccard": float(pair.jaccard)}))
    return out


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _changes(
    joined: pd.DataFrame,
    features: Sequence[str],
    n_bins: int,
    thresholds: Thresholds,
    seed: int,
    clusters: pd.DataFrame | None,
) -> pd.DataFrame:
    old_loss = joined["loss_old"].to_numpy(dtype=float)
    new_loss = joined["loss_new"].to_numpy(dtype=float)
    diff = new_loss - old_loss
    cells = outcome(joined, OLD, NEW)
    old_ok, new_ok = ~cells.wrong_a, ~cells.wrong_b
    rows = []
    for seg, extra in _segments(joined, features, n_bins, clusters):
        members = seg.mask
        n = int(members.sum())
        if n == 0:
            continue
        lo, hi = bootstrap_mean_ci(diff[members], thresholds.n_boot, segment_rng(seed, seg.name))
        row = {"segment": seg.name, "kind": seg.kind, "description": seg.description}
        rows.append(
            row
            | {
                "n": n,
                "share": n / len(joined),
                "old_loss": float(old_loss[members].mean()),
                "new_loss": float(new_loss[members].mean()),
                "delta": float(diff[members].mean()),
                "ci_low": lo,
                "ci_high": hi,
                "old_accuracy": float(old_ok[members].mean()),
                "new_accuracy": float(new_ok[members].mean()),
            }
            | extra
        )
    frame = pd.DataFrame(rows, columns=list(CHANGE_COLUMNS))
    for column in ("bin", "old_cluster", "new_cluster"):
        frame[column] = frame[column].astype("Int64")
    for column in ("bin_left", "bin_right", "jaccard"):
        frame[column] = frame[column].astype(float)
    return frame


def segment_changes(
    new: pd.DataFrame,
    old: pd.DataFrame,
    features: Sequence[str] = SEGMENT_FEATURES,
    n_bins: int = DEFAULT_BINS,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    seed: int = 0,
    clusters: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per segment: support, old/new mean loss and accuracy, delta and its paired-bootstrap 95% CI
    (`thresholds.n_boot` resamples). Columns: `CHANGE_COLUMNS`.

    The first row is the whole test set. Feature segments are `feature_segments` of the CHAMPION's
    values, so a bin is the same reviews for both models even where a feature depends on the model
    (oov_count with a new vocabulary). Empty segments are left out. `clusters` is
    `match_clusters`'s output (computed when omitted and both tables have a cluster column).
    Deterministic for a given `seed`.
    """
    return _changes(pair_with_champion(new, old), features, n_bins, thresholds, seed, clusters)


# --------------------------------------------------------------------------------------------
# 3. Alerts
# --------------------------------------------------------------------------------------------


def regression_alerts(
    changes: pd.DataFrame, thresholds: Thresholds = DEFAULT_THRESHOLDS
) -> pd.DataFrame:
    """The segments of `changes` that raise an alert, the most certain regression first.

    Rule: ci_low (lower bound of the 95% paired-bootstrap interval of new - old mean loss, nats)
    > `thresholds.loss_rise` AND share >= `thresholds.min_support`. The "all reviews" row is the
    overall alert (its share is 1). Columns: those of `changes` plus `message`, one sentence.
    """
    flagged = changes[
        (changes["ci_low"] > thresholds.loss_rise) & (changes["share"] >= thresholds.min_support)
    ]
    flagged = flagged.sort_values(["ci_low", "n"], ascending=False, kind="stable").copy()
    flagged["message"] = [change_sentence(row) for _, row in flagged.iterrows()]
    return flagged.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# 4. Promotion gate
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChampionComparison:
    """Everything `compare_with_champion` found for one (new, champion) pair, and the verdict."""

    alert: bool  # True blocks promotion
    reason: str  # the most certain regression, or why there is none
    flips: FlipCounts
    flip_examples: pd.DataFrame  # FLIP_EXAMPLE_COLUMNS (+ text)
    clusters: pd.DataFrame  # CLUSTER_MATCH_COLUMNS
    changes: pd.DataFrame  # CHANGE_COLUMNS
    alerts: pd.DataFrame  # CHANGE_COLUMNS + message
    drift: pd.DataFrame  # DRIFT_COLUMNS; empty without both importance tables
    markdown: str

    @property
    def matched_clusters(self) -> int:
        """Champion clusters matched to a new cluster."""
        both = self.clusters["old_cluster"].notna() & self.clusters["new_cluster"].notna()
        return int(both.sum())

    def drifted_tokens(self, top: int = DRIFTED_TOKENS) -> tuple[str, ...]:
        """The `top` words whose importance changed most."""
        return tuple(str(t) for t in self.drift["token"].head(top))


def compare_with_champion(
    new: pd.DataFrame,
    old: pd.DataFrame,
    *,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    seed: int = 0,
    features: Sequence[str] = SEGMENT_FEATURES,
    n_bins: int = DEFAULT_BINS,
    new_importance: pd.DataFrame | pd.Series | None = None,
    old_importance: pd.DataFrame | pd.Series | None = None,
    text: Mapping[Any, str] | pd.Series | None = None,
    name: str = "new model",
) -> ChampionComparison:
    """Flips, cluster matching, segment changes, alerts and drift of the new model against the
    champion (`old`), with the gate's verdict and the Markdown report."""
    joined = pair_with_champion(new, old)
    flips, examples = _flips(joined, text, 5)
    clusters = (
        match_paired_clusters(joined)
        if "cluster_old" in joined.columns and "cluster_new" in joined.columns
        else pd.DataFrame(columns=list(CLUSTER_MATCH_COLUMNS))
    )
    changes = _changes(joined, features, n_bins, thresholds, seed, clusters)
    alerts = regression_alerts(changes, thresholds)
    drift = token_drift(new_importance, old_importance)
    alert = not alerts.empty
    if alert:
        reason = alerts["message"].iloc[0]
        if len(alerts) > 1:
            reason += f" (+{len(alerts) - 1} more alert{'s' if len(alerts) > 2 else ''})"
    else:
        overall = changes[changes["kind"] == "overall"]
        reason = (
            f"no regression alert (threshold {thresholds.loss_rise:g} nats on the CI lower bound)"
        )
        if not overall.empty:
            reason += f"; overall {change_sentence(overall.iloc[0])}"
    markdown = regression_markdown(
        flips, examples, alerts, changes, drift, name, thresholds=thresholds
    )
    return ChampionComparison(
        alert, reason, flips, examples, clusters, changes, alerts, drift, markdown
    )


@dataclass(frozen=True)
class RegressionCheck:
    """What the `check-regression` task returns for one architecture."""

    arch: str
    compared: bool
    alert: bool
    reason: str
    champion_version: str | None = None
    flips: FlipCounts | None = None
    matched_clusters: int = 0
    drifted_tokens: tuple[str, ...] = ()

    @classmethod
    def not_compared(
        cls, arch: str, reason: str, champion_version: str | None = None
    ) -> RegressionCheck:
        """No comparison was made (no champion yet, or one evaluated on other reviews)."""
        return cls(
            arch, compared=False, alert=False, reason=reason, champion_version=champion_version
        )

    @classmethod
    def from_comparison(
        cls, arch: str, champion_version: str, comparison: ChampionComparison
    ) -> RegressionCheck:
        """The verdict of `compare_with_champion` against champion `champion_version`."""
        return cls(
            arch,
            compared=True,
            alert=comparison.alert,
            reason=comparison.reason,
            champion_version=str(champion_version),
            flips=comparison.flips,
            matched_clusters=comparison.matched_clusters,
            drifted_tokens=comparison.drifted_tokens(),
        )

    def blocks_promotion(self, allow_regression: bool = False) -> str | None:
        """The reason that keeps the champion's alias where it is, or None when nothing does."""
        return self.reason if self.alert and not allow_regression else None
