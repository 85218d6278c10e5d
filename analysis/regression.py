"""Is a retrained model worse than the champion of its architecture, and where?

Both models are evaluated on the same test reviews, so every comparison here is *paired*: the two
per-sample tables are joined on `review_id` and each review contributes its own loss difference
(new - old). Pairing removes the between-review variance that dominates an unpaired comparison.

Segments (all defined on the CHAMPION's table, so both models are scored on the same reviews):
- the whole test set ("all reviews");
- equal-width bins of each metadata feature, with the edges of `dashboard.bin_edges` computed on
  the champion's values and its [left, right) convention (last bin closed);
- each champion k-means cluster, matched to a new cluster by review overlap (Jaccard, Hungarian
  assignment), so "cluster 3 got worse" names the same group of reviews in both runs; new
  clusters that match no champion cluster are added on their own members.

Alert rule (`regression_alerts`): a segment raises an alert when
    lower bound of the paired-bootstrap 95% interval of (new mean loss - old mean loss) > threshold
and it holds at least `min_support` of the test reviews. The threshold is an ABSOLUTE increase of
mean cross-entropy loss in nats (default 0.1): a relative threshold explodes on easy segments
(0.01 -> 0.02 nats is "+100%" and harmless). Judging the interval rather than the point estimate
keeps ~60 noisy segments from raising false alarms; the whole test set is one of the segments,
which is the overall alert. Any alert blocks promotion (`compare_with_champion(...)["alert"]`).
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from analysis.common import markdown_cell
from analysis.dashboard import bin_edges

logger = logging.getLogger(__name__)

REGRESSION_FEATURES = ("length", "oov_count", "subjectivity", "polarity", "rating")
DEFAULT_BINS = 10  # as metadata_loss_table: the segments match the dashboard's panels
CI_LEVEL = 0.95
_REQUIRED = ("review_id", "label", "pred", "loss")
CELL_WIDTH = 120  # characters of a review, segment or word shown in a report table
_BOOT_CHUNK = 2_000_000  # resampled indices held at once: bounds memory for 25,000-row segments

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
CLUSTER_MATCH_COLUMNS = ("new_cluster", "old_cluster", "jaccard", "new_size", "old_size", "overlap")
DRIFT_COLUMNS = ("token", "old_importance", "new_importance", "change", "abs_change")
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
# Pairing
# --------------------------------------------------------------------------------------------


def _id_list(ids: Sequence[Any], limit: int = 10) -> str:
    shown = ", ".join(str(i) for i in sorted(ids, key=str)[:limit])
    return shown + (f" ... ({len(ids):,} in all)" if len(ids) > limit else "")


def paired_table(new: pd.DataFrame, old: pd.DataFrame) -> pd.DataFrame:
    """`old` and `new` joined on review_id (columns suffixed _old/_new), in the champion's order.

    Raises ValueError naming the ids when the two tables do not hold the same reviews, or when a
    review id repeats: a paired comparison on different reviews would be meaningless.
    """
    for which, table in (("new", new), ("old", old)):
        absent = [c for c in _REQUIRED if c not in table.columns]
        if absent:
            raise ValueError(f"{which} table lacks column(s) {', '.join(absent)}")
        dup = table["review_id"][table["review_id"].duplicated()].unique()
        if len(dup):
            raise ValueError(f"{which} table repeats review ids: {_id_list(list(dup))}")
    new_ids, old_ids = set(new["review_id"]), set(old["review_id"])
    if new_ids != old_ids:
        parts = []
        if old_ids - new_ids:
            parts.append(f"missing from the new table: {_id_list(list(old_ids - new_ids))}")
        if new_ids - old_ids:
            parts.append(f"missing from the champion table: {_id_list(list(new_ids - old_ids))}")
        raise ValueError("the two runs were evaluated on different reviews; " + "; ".join(parts))
    joined = old.merge(new, on="review_id", how="left", suffixes=("_old", "_new"), validate="1:1")
    if "label_old" in joined.columns and "label_new" in joined.columns:
        differ = joined.loc[joined["label_old"] != joined["label_new"], "review_id"]
        if len(differ):
            raise ValueError(f"labels differ between the runs for review ids {_id_list(differ)}")
    return joined.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# 1. Prediction flips
# --------------------------------------------------------------------------------------------


def prediction_flips(
    new: pd.DataFrame,
    old: pd.DataFrame,
    text: Mapping[Any, str] | pd.Series | None = None,
    examples: int = 5,
) -> tuple[dict[str, int], pd.DataFrame]:
    """Reviews whose correctness changed between the champion and the new model.

    counts: n, both_right, both_wrong, right_to_wrong, wrong_to_right, net (= wrong_to_right -
    right_to_wrong, negative is worse). examples: up to `examples` reviews per direction, the
    largest |loss change| first (the most telling flips), with `text` (review_id -> text) when
    given.
    """
    joined = paired_table(new, old)
    label = joined["label_old"].to_numpy()
    old_ok = joined["pred_old"].to_numpy() == label
    new_ok = joined["pred_new"].to_numpy() == label
    counts = {
        "n": len(joined),
        "both_right": int((old_ok & new_ok).sum()),
        "both_wrong": int((~old_ok & ~new_ok).sum()),
        "right_to_wrong": int((old_ok & ~new_ok).sum()),
        "wrong_to_right": int((~old_ok & new_ok).sum()),
    }
    counts["net"] = counts["wrong_to_right"] - counts["right_to_wrong"]
    frame = pd.DataFrame(
        {
            "review_id": joined["review_id"],
            "direction": np.where(old_ok, "right_to_wrong", "wrong_to_right"),
            "label": label,
            "old_pred": joined["pred_old"],
            "new_pred": joined["pred_new"],
            "old_prob_positive": joined.get("prob_positive_old", np.nan),
            "new_prob_positive": joined.get("prob_positive_new", np.nan),
            "old_loss": joined["loss_old"],
            "new_loss": joined["loss_new"],
            "loss_change": joined["loss_new"] - joined["loss_old"],
        }
    )[old_ok != new_ok]
    picked = []
    for direction in ("right_to_wrong", "wrong_to_right"):
        part = frame[frame["direction"] == direction]
        order = part["loss_change"].abs().sort_values(ascending=False, kind="stable").index
        picked.append(part.loc[order[:examples]])
    shown = pd.concat(picked, ignore_index=True) if picked else frame.iloc[:0]
    shown = shown.reindex(columns=list(FLIP_EXAMPLE_COLUMNS))
    if text is not None:
        lookup = text if isinstance(text, pd.Series) else pd.Series(dict(text), dtype=object)
        shown["text"] = shown["review_id"].map(lookup)
    return counts, shown.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# 2. Cluster matching
# --------------------------------------------------------------------------------------------


def match_clusters(new: pd.DataFrame, old: pd.DataFrame) -> pd.DataFrame:
    """New clusters matched one-to-one to champion clusters by Jaccard overlap of review ids.

    k-means ids are arbitrary per run, so the ids themselves say nothing; the Hungarian assignment
    maximises the total Jaccard. Rows: one per matched pair, then unmatched new clusters and
    unmatched champion clusters (the other id <NA>, jaccard 0). A pair with no common review is
    not a match. Sorted by new cluster id, unmatched champion clusters last.
    """
    joined = paired_table(new, old)
    overlap = pd.crosstab(joined["cluster_new"], joined["cluster_old"])
    new_ids, old_ids = overlap.index.to_numpy(), overlap.columns.to_numpy()
    inter = overlap.to_numpy(dtype=float)
    new_size, old_size = inter.sum(axis=1), inter.sum(axis=0)
    jaccard = inter / (new_size[:, None] + old_size[None, :] - inter)
    rows_i, cols_j = linear_sum_assignment(jaccard, maximize=True)
    rows: list[dict[str, Any]] = []
    matched_new, matched_old = set(), set()
    for i, j in zip(rows_i, cols_j, strict=True):
        if inter[i, j] == 0:
            continue
        matched_new.add(i)
        matched_old.add(j)
        rows.append(
            {
                "new_cluster": new_ids[i],
                "old_cluster": old_ids[j],
                "jaccard": float(jaccard[i, j]),
                "new_size": int(new_size[i]),
                "old_size": int(old_size[j]),
                "overlap": int(inter[i, j]),
            }
        )
    for i in set(range(len(new_ids))) - matched_new:
        rows.append(
            {"new_cluster": new_ids[i], "old_cluster": pd.NA, "jaccard": 0.0}
            | {"new_size": int(new_size[i]), "old_size": 0, "overlap": 0}
        )
    out = pd.DataFrame(rows, columns=list(CLUSTER_MATCH_COLUMNS))
    out = out.sort_values("new_cluster", kind="stable")
    tail = [
        {"new_cluster": pd.NA, "old_cluster": old_ids[j], "jaccard": 0.0}
        | {"new_size": 0, "old_size": int(old_size[j]), "overlap": 0}
        for j in sorted(set(range(len(old_ids))) - matched_old)
    ]
    if tail:
        out = pd.concat([out, pd.DataFrame(tail, columns=list(CLUSTER_MATCH_COLUMNS))])
    out["new_cluster"] = out["new_cluster"].astype("Int64")
    out["old_cluster"] = out["old_cluster"].astype("Int64")
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# 3. Segment changes with a paired bootstrap
# --------------------------------------------------------------------------------------------


def bootstrap_mean_ci(
    diff: np.ndarray, n_boot: int, rng: np.random.Generator, level: float = CI_LEVEL
) -> tuple[float, float]:
    """Percentile interval of the mean of `diff` over `n_boot` resamples (with replacement).

    Resampling the per-review differences is the paired bootstrap: a review keeps its old and new
    loss together. Indices are drawn in chunks so a 25,000-review segment never holds 25M at once.
    """
    n = len(diff)
    if n == 0:
        return math.nan, math.nan
    if n == 1 or n_boot < 1:
        return float(diff[0]) if n == 1 else math.nan, float(diff[0]) if n == 1 else math.nan
    means = np.empty(n_boot)
    chunk = max(1, _BOOT_CHUNK // n)
    for start in range(0, n_boot, chunk):
        stop = min(start + chunk, n_boot)
        idx = rng.integers(0, n, size=(stop - start, n), dtype=np.int32)
        means[start:stop] = diff[idx].mean(axis=1)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return float(lo), float(hi)


def _fmt(value: float) -> str:
    """Edge value in a sentence: 612 rather than 612.4000001, 0.153 rather than 0.15312."""
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _bin_description(
    feature: str, values: np.ndarray, left: float, right: float, last: bool
) -> str:
    distinct = np.unique(values)
    if len(distinct) == 1:  # a discrete feature (rating): say the value, not a made-up range
        return f"reviews with {feature} = {_fmt(float(distinct[0]))}"
    return f"reviews with {feature} in [{_fmt(left)}, {_fmt(right)}{']' if last else ')'}"


def _segment_rng(seed: int, segment: str) -> np.random.Generator:
    # Keyed by the segment's name, so adding a feature does not change the other intervals.
    return np.random.default_rng([seed, zlib.crc32(segment.encode())])


def segment_changes(
    new: pd.DataFrame,
    old: pd.DataFrame,
    features: Sequence[str] = REGRESSION_FEATURES,
    bins: int | Mapping[str, Sequence[float]] = DEFAULT_BINS,
    n_boot: int = 1000,
    seed: int = 0,
    clusters: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per segment: support, old/new mean loss and accuracy, delta and its paired-bootstrap 95% CI.

    The first row is the whole test set. Feature bins use `dashboard.bin_edges` on the CHAMPION's
    values (or explicit edges per feature in `bins`) and the champion's values decide membership,
    so a bin is the same reviews for both models even where a feature depends on the model
    (oov_count with a new vocabulary). Empty bins are left out. `clusters` is `match_clusters`'s
    output (computed when omitted and both tables have a cluster column). Deterministic for a
    given `seed`.
    """
    joined = paired_table(new, old)
    n_total = len(joined)
    old_loss = joined["loss_old"].to_numpy(dtype=float)
    new_loss = joined["loss_new"].to_numpy(dtype=float)
    diff = new_loss - old_loss
    label = joined["label_old"].to_numpy()
    old_ok = joined["pred_old"].to_numpy() == label
    new_ok = joined["pred_new"].to_numpy() == label
    rows: list[dict[str, Any]] = []

    def add(segment: str, kind: str, description: str, members: np.ndarray, **extra: Any) -> None:
        n = int(members.sum())
        if n == 0:
            return
        lo, hi = bootstrap_mean_ci(diff[members], n_boot, _segment_rng(seed, segment))
        rows.append(
            {
                "segment": segment,
                "kind": kind,
                "description": description,
                "n": n,
                "share": n / n_total,
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

    if n_total:
        add("all reviews", "overall", "all reviews", np.ones(n_total, dtype=bool))
    for feature in features:
        column = f"{feature}_old" if f"{feature}_old" in joined.columns else feature
        if column not in joined.columns:
            logger.warning("segment_changes: no column %r in the champion table, skipped", feature)
            continue
        values = joined[column].to_numpy(dtype=float)
        if isinstance(bins, Mapping):
            if feature not in bins:
                logger.warning("segment_changes: no edges given for %r, skipped", feature)
                continue
            edges = np.asarray(bins[feature], dtype=float)
        else:
            edges = bin_edges(values, bins)
        # Same assignment as metadata_loss_table: [left, right), the maximum in the last bin.
        which = np.searchsorted(edges[1:-1], values, side="right")
        inside = np.isfinite(values) & (values >= edges[0]) & (values <= edges[-1])
        for b in range(len(edges) - 1):
            members = inside & (which == b)
            if not members.any():
                continue
            last = b == len(edges) - 2
            add(
                f"{feature} bin {b}",
                "feature",
                _bin_description(feature, values[members], edges[b], edges[b + 1], last),
                members,
                feature=feature,
                bin=b,
                bin_left=float(edges[b]),
                bin_right=float(edges[b + 1]),
            )
    if "cluster_old" in joined.columns and "cluster_new" in joined.columns:
        if clusters is None:
            clusters = match_clusters(new, old)
        cluster_old = joined["cluster_old"].to_numpy()
        cluster_new = joined["cluster_new"].to_numpy()
        for pair in clusters.itertuples(index=False):
            if pd.notna(pair.old_cluster):
                # Champion membership: reviews that left the cluster (maybe because the new
                # model now gets them wrong) still count against it.
                members = cluster_old == pair.old_cluster
                matched = (
                    f"new cluster {pair.new_cluster}, Jaccard {pair.jaccard:.2f}"
                    if pd.notna(pair.new_cluster)
                    else "no matching new cluster"
                )
                segment = f"cluster old {pair.old_cluster}"
                description = f"reviews in champion cluster {pair.old_cluster} ({matched})"
            else:  # a group only the new model forms: its own members
                members = cluster_new == pair.new_cluster
                segment = f"cluster new {pair.new_cluster}"
                description = f"reviews in new cluster {pair.new_cluster} (no champion match)"
            add(
                segment,
                "cluster",
                description,
                members,
                old_cluster=pair.old_cluster,
                new_cluster=pair.new_cluster,
                jaccard=float(pair.jaccard),
            )
    frame = pd.DataFrame(rows, columns=list(CHANGE_COLUMNS))
    frame["bin"] = frame["bin"].astype("Int64")
    frame["old_cluster"] = frame["old_cluster"].astype("Int64")
    frame["new_cluster"] = frame["new_cluster"].astype("Int64")
    return frame


# --------------------------------------------------------------------------------------------
# 4. Alerts
# --------------------------------------------------------------------------------------------


def change_sentence(row: Mapping[str, Any] | pd.Series) -> str:
    """'loss on reviews with length in [612, 2,505] rose by 0.312 (95% CI 0.180..0.441, 2,310 reviews)'.

    Three decimals: a retrained model typically moves the overall loss by a few thousandths.
    """
    verb = "rose" if row["delta"] >= 0 else "fell"
    return (
        f"loss on {row['description']} {verb} by {abs(row['delta']):.3f} "
        f"({CI_LEVEL:.0%} CI {row['ci_low']:.3f}..{row['ci_high']:.3f}, {int(row['n']):,} reviews)"
    )


def regression_alerts(
    changes: pd.DataFrame, threshold: float = 0.1, min_support: float = 0.02
) -> pd.DataFrame:
    """The segments of `changes` that raise an alert, the most certain regression first.

    Rule: ci_low (lower bound of the 95% paired-bootstrap interval of new - old mean loss, nats)
    > `threshold` AND share >= `min_support`. The "all reviews" row is the overall alert (its
    share is 1). Columns: those of `changes` plus `message`, a one-line sentence.
    """
    flagged = changes[(changes["ci_low"] > threshold) & (changes["share"] >= min_support)]
    flagged = flagged.sort_values(["ci_low", "n"], ascending=False, kind="stable").copy()
    flagged["message"] = [change_sentence(row) for _, row in flagged.iterrows()]
    return flagged.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# 5. Attribution drift
# --------------------------------------------------------------------------------------------

_IMPORTANCE_NAMES = ("importance", "mean_abs_attribution", "mean_abs", "attribution", "score")


def _importance_series(importance: pd.DataFrame | pd.Series | None) -> pd.Series:
    """token -> importance from a Series, a token-indexed frame or a frame with a `token` column."""
    if importance is None:
        return pd.Series(dtype=float)
    if isinstance(importance, pd.DataFrame):
        frame = importance.set_index("token") if "token" in importance.columns else importance
        named = [c for c in _IMPORTANCE_NAMES if c in frame.columns]
        numeric = named or list(frame.select_dtypes("number").columns)
        if not numeric:
            raise ValueError("token importance table has no numeric column")
        importance = frame[numeric[0]]
    series = importance.astype(float)
    series.index = series.index.astype(str)
    return series.groupby(level=0).mean()  # a repeated token counts once


def token_drift(
    new_importance: pd.DataFrame | pd.Series | None,
    old_importance: pd.DataFrame | pd.Series | None,
    top: int = 20,
) -> pd.DataFrame:
    """The `top` tokens whose global importance changed most.

    Importance is a token table's `importance` column (the analysis logs the mean attribution
    toward "positive" per occurrence, so a word that changed sides moves by the sum of both).
    Union of both vocabularies, a token missing from one side counting 0 (that model never relied
    on it). Empty frame when either side is missing: drift cannot be judged on one model alone.
    Raw values: if the two models' attributions differ in overall scale, every token moves.
    """
    if new_importance is None or old_importance is None:
        return pd.DataFrame(columns=list(DRIFT_COLUMNS))
    both = pd.concat(
        {
            "old_importance": _importance_series(old_importance),
            "new_importance": _importance_series(new_importance),
        },
        axis=1,
    ).fillna(0.0)
    both["change"] = both["new_importance"] - both["old_importance"]
    both["abs_change"] = both["change"].abs()
    both = both.rename_axis("token").reset_index()
    both = both.sort_values(["abs_change", "token"], ascending=[False, True], kind="stable")
    return both.head(top).reset_index(drop=True)[list(DRIFT_COLUMNS)]


# --------------------------------------------------------------------------------------------
# 6. Report
# --------------------------------------------------------------------------------------------


def regression_markdown(
    flips: tuple[dict[str, int], pd.DataFrame],
    alerts: pd.DataFrame,
    changes: pd.DataFrame,
    drift: pd.DataFrame | None,
    name: str,
    *,
    threshold: float = 0.1,
    min_support: float = 0.02,
    max_rows: int = 10,
) -> str:
    """Markdown: the verdict (alerts or "No regression alert") first, then flips, segments, drift."""
    counts, examples = flips
    lines = [f"# Regression check: {name} against the champion", ""]
    rule = (
        f"Rule: a segment raises an alert when the lower bound of the {CI_LEVEL:.0%} paired-"
        f"bootstrap interval of its mean-loss increase exceeds {threshold:g} nats and it holds at "
        f"least {min_support:.0%} of the test reviews."
    )
    if alerts.empty:
        lines += ["## No regression alert", ""]
        overall = changes[changes["kind"] == "overall"]
        if not overall.empty:
            lines.append(f"Overall, {change_sentence(overall.iloc[0])}.")
        lines += [rule, ""]
    else:
        lines += [f"## REGRESSION ALERT: {len(alerts)} segment(s), promotion blocked", ""]
        lines += [f"- {markdown_cell(msg, 300)}" for msg in alerts["message"]]
        lines += ["", rule, ""]

    lines += ["## Prediction flips", ""]
    lines.append(
        f"Of {counts['n']:,} reviews, {counts['right_to_wrong']:,} went right -> wrong and "
        f"{counts['wrong_to_right']:,} wrong -> right (net {counts['net']:+,}); "
        f"{counts['both_wrong']:,} are wrong for both models."
    )
    if not examples.empty:
        lines += ["", "| review | direction | label | old p(pos) | new p(pos) | loss change |"]
        lines[-1] += " text |" if "text" in examples.columns else ""
        lines.append("|---" * (7 if "text" in examples.columns else 6) + "|")
        for row in examples.itertuples(index=False):
            line = (
                f"| {markdown_cell(row.review_id, CELL_WIDTH)} "
                f"| {row.direction.replace('_', ' ')} | {row.label} | "
                f"{row.old_prob_positive:.2f} | {row.new_prob_positive:.2f} | "
                f"{row.loss_change:+.2f} |"
            )
            if "text" in examples.columns:
                line += f" {markdown_cell(row.text, CELL_WIDTH)} |"
            lines.append(line)
    lines.append("")

    lines += ["## Segments with the largest loss increase", ""]
    if changes.empty:
        lines += ["No segments.", ""]
    else:
        # Segments below the alert's support are left out: one or two reviews top the list
        # by chance on any retraining (seen on IMDB: a "length = 1,746" bin of one review).
        supported = changes[changes["share"] >= min_support]
        top = supported.sort_values("delta", ascending=False, kind="stable").head(max_rows)
        lines += [
            f"Segments holding at least {min_support:.0%} of the reviews "
            f"({len(changes) - len(supported)} smaller ones left out).",
            "",
            "| segment | reviews | share | old loss | new loss | delta | 95% CI |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in top.itertuples(index=False):
            lines.append(
                f"| {markdown_cell(row.description, CELL_WIDTH)} | {row.n:,} | {row.share:.1%} "
                f"| {row.old_loss:.3f} "
                f"| {row.new_loss:.3f} | {row.delta:+.3f} | {row.ci_low:+.3f}..{row.ci_high:+.3f} |"
            )
        best = supported.loc[supported["delta"].idxmin()] if not supported.empty else None
        if best is not None and best["delta"] < 0:
            lines += ["", f"Largest improvement: {change_sentence(best)}."]
        lines.append("")

    lines += ["## Attribution drift", ""]
    if drift is None or drift.empty:
        lines += ["No token importance for one of the models: drift not computed.", ""]
    else:
        lines += [
            "Words whose mean attribution toward *positive* changed most (same reviews for both).",
            "",
            "| token | old importance | new importance | change |",
            "|---|---|---|---|",
        ]
        for row in drift.itertuples(index=False):
            lines.append(
                f"| {markdown_cell(row.token, CELL_WIDTH)} | {row.old_importance:.4f} "
                f"| {row.new_importance:.4f} "
                f"| {row.change:+.4f} |"
            )
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# 7. Promotion gate
# --------------------------------------------------------------------------------------------


def compare_with_champion(
    new: pd.DataFrame,
    old: pd.DataFrame,
    *,
    threshold: float = 0.1,
    min_support: float = 0.02,
    n_boot: int = 1000,
    seed: int = 0,
    features: Sequence[str] = REGRESSION_FEATURES,
    bins: int | Mapping[str, Sequence[float]] = DEFAULT_BINS,
    new_importance: pd.DataFrame | pd.Series | None = None,
    old_importance: pd.DataFrame | pd.Series | None = None,
    text: Mapping[Any, str] | pd.Series | None = None,
    name: str = "new model",
) -> dict[str, Any]:
    """Everything above for one (new, champion) pair, plus the gate's verdict.

    Returns flips (counts), flip_examples, clusters, changes, alerts, drift, markdown, alert
    (True blocks promotion) and reason (one sentence: the most certain regression, or why none).
    """
    counts, examples = prediction_flips(new, old, text=text)
    clusters = (
        match_clusters(new, old)
        if "cluster" in new.columns and "cluster" in old.columns
        else pd.DataFrame(columns=list(CLUSTER_MATCH_COLUMNS))
    )
    changes = segment_changes(new, old, features, bins, n_boot=n_boot, seed=seed, clusters=clusters)
    alerts = regression_alerts(changes, threshold=threshold, min_support=min_support)
    drift = token_drift(new_importance, old_importance)
    alert = not alerts.empty
    if alert:
        reason = alerts["message"].iloc[0]
        if len(alerts) > 1:
            reason += f" (+{len(alerts) - 1} more alert{'s' if len(alerts) > 2 else ''})"
    else:
        overall = changes[changes["kind"] == "overall"]
        reason = f"no regression alert (threshold {threshold:g} nats on the CI lower bound)"
        if not overall.empty:
            reason += f"; overall {change_sentence(overall.iloc[0])}"
    markdown = regression_markdown(
        (counts, examples),
        alerts,
        changes,
        drift,
        name,
        threshold=threshold,
        min_support=min_support,
    )
    return {
        "alert": alert,
        "reason": reason,
        "flips": counts,
        "flip_examples": examples,
        "clusters": clusters,
        "changes": changes,
        "alerts": alerts,
        "drift": drift,
        "markdown": markdown,
    }
