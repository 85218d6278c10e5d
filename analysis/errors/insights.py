"""Weak segments: kinds of review where the model loses much more than on average, in plain words.

Candidate segments are (1) quantile bins of each segment feature (`common.segments`: one bin rule,
per value for a discrete feature such as the rating), (2) fixed, human-meaningful buckets (short,
OOV-heavy, neutral, subjective, wording that contradicts the label, each class) and (3) the
k-means clusters. Each segment's mean loss comes with a 95% bootstrap interval
(`common.bootstrap`, `thresholds.n_boot` resamples, seeded per segment name). A segment is weak
when the LOWER bound of that interval is >= `thresholds.loss_ratio` x the overall mean and it holds
>= `thresholds.min_support` of the reviews: a small segment whose high mean is a few unlucky
reviews has a wide interval and is not called weak. Weak segments are ordered by impact =
excess loss x size = (mean loss - overall mean) x size: the loss the model would save if that
segment were as easy as the average review, so a large, mildly weak segment can outrank a tiny,
very weak one. Segments with exactly the same members are reported once, the other names in
`same_as`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.common.bootstrap import CI_LEVEL, bootstrap_mean_ci, segment_rng
from analysis.common.render import fmt_number, markdown_table
from analysis.common.segments import SEGMENT_FEATURES, Segment, feature_segments
from analysis.common.thresholds import DEFAULT_THRESHOLDS, Thresholds
from analysis.errors.clustering import cluster_apart_text

SEGMENT_COLUMNS = (
    "segment",
    "kind",
    "description",
    "size",
    "share",
    "mean_loss",
    "loss_low",  # the 95% bootstrap interval of the mean loss
    "loss_high",
    "loss_ratio",
    "ratio_low",  # the interval over the overall mean: the weak rule reads ratio_low
    "ratio_high",
    "accuracy",
    "impact",
    "same_as",
)
QUANTILE_BINS = 5


def _bucket_segments(table: pd.DataFrame) -> list[Segment]:
    """Fixed buckets for the kinds of review people ask about, when the columns exist."""
    cols = set(table.columns)
    out = []

    def add(name: str, description: str, mask: pd.Series) -> None:
        out.append(Segment(name, "bucket", description, mask.to_numpy(dtype=bool)))

    if "length" in cols:
        add("short (<50 tokens)", "Short reviews (under 50 tokens)", table["length"] < 50)
    if "oov_ratio" in cols:
        add(
            "oov_ratio>0.1",
            "Reviews with more than 10% out-of-vocabulary tokens",
            table["oov_ratio"] > 0.1,
        )
    if "polarity" in cols:
        polarity = table["polarity"]
        add(
            "neutral (|polarity|<0.05)",
            "Neutral-sounding reviews (|TextBlob polarity| < 0.05)",
            polarity.abs() < 0.05,
        )
        add(
            "wording contradicts label",
            "Reviews whose wording contradicts their label (TextBlob polarity of the opposite sign)",
            ((table["label"] == 1) & (polarity < 0)) | ((table["label"] == 0) & (polarity > 0)),
        )
    if "subjectivity" in cols:
        subjectivity = table["subjectivity"]
        add(
            "subjective (>0.6)",
            "Highly subjective reviews (TextBlob subjectivity > 0.6)",
            subjectivity > 0.6,
        )
        add(
            "objective (<0.3)",
            "Objective-sounding reviews (TextBlob subjectivity < 0.3)",
            subjectivity < 0.3,
        )
    add("label=positive", "Positive reviews", table["label"] == 1)
    add("label=negative", "Negative reviews", table["label"] == 0)
    return out


def _cluster_segments(table: pd.DataFrame, clusters: pd.DataFrame | None) -> list[Segment]:
    if "cluster" not in table.columns or table["cluster"].nunique() < 2:
        return []
    words, apart = {}, {}
    if clusters is not None and "top_words" in clusters.columns:
        words = dict(zip(clusters["cluster"], clusters["top_words"], strict=True))
    if clusters is not None and "apart_feature" in clusters.columns:
        apart = {row.cluster: cluster_apart_text(row) for row in clusters.itertuples(index=False)}
    out = []
    for c in sorted(table["cluster"].unique()):
        top = ", ".join(str(words.get(c, "")).split()[:5])
        said = [f"distinctive words: {top}"] if top else []
        said += [apart[c]] if apart.get(c) else []
        description = f"Reviews in cluster {c}" + (f" ({'; '.join(said)})" if said else "")
        out.append(
            Segment(f"cluster={c}", "cluster", description, (table["cluster"] == c).to_numpy())
        )
    return out


def segment_stats(
    table: pd.DataFrame,
    features: Sequence[str] = SEGMENT_FEATURES,
    clusters: pd.DataFrame | None = None,
    n_bins: int = QUANTILE_BINS,
    *,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    seed: int = 0,
) -> pd.DataFrame:
    """Every candidate segment with size, share, mean loss and its bootstrap interval
    (`thresholds.n_boot` resamples), loss ratio and its interval, accuracy and impact, ordered by
    impact (highest first). Identical member sets are kept once."""
    n = len(table)
    if n == 0:
        return pd.DataFrame(columns=list(SEGMENT_COLUMNS))
    candidates: list[Segment] = []
    for name in features:
        if name in table.columns:
            values = table[name].to_numpy(dtype=float)
            candidates += feature_segments(values, name, n_bins, rule="quantile")
    candidates += _bucket_segments(table) + _cluster_segments(table, clusters)
    loss = table["loss"].to_numpy(dtype=float)
    correct = (table["pred"] == table["label"]).to_numpy()
    overall = float(loss.mean())
    per_overall = 1 / overall if overall > 0 else math.nan
    row_of: dict[bytes, int] = {}
    rows: list[dict[str, object]] = []
    for cand in candidates:
        size = int(cand.mask.sum())
        if size == 0 or size == n:
            continue  # says nothing about a kind of review
        key = np.packbits(cand.mask).tobytes()
        if key in row_of:  # the same reviews under another name: worth saying, not repeating
            row = rows[row_of[key]]
            row["same_as"] = "; ".join(filter(None, [str(row["same_as"]), cand.description]))
            continue
        row_of[key] = len(rows)
        mean_loss = float(loss[cand.mask].mean())
        low, high = bootstrap_mean_ci(
            loss[cand.mask], thresholds.n_boot, segment_rng(seed, cand.name)
        )
        rows.append(
            {
                "segment": cand.name,
                "kind": cand.kind,
                "description": cand.description,
                "size": size,
                "share": size / n,
                "mean_loss": mean_loss,
                "loss_low": low,
                "loss_high": high,
                "loss_ratio": mean_loss * per_overall,
                "ratio_low": low * per_overall,
                "ratio_high": high * per_overall,
                "accuracy": float(correct[cand.mask].mean()),
                "impact": (mean_loss - overall) * size,
                "same_as": "",
            }
        )
    frame = pd.DataFrame(rows, columns=list(SEGMENT_COLUMNS))
    return frame.sort_values("impact", ascending=False, kind="stable").reset_index(drop=True)


def weak_segments(stats: pd.DataFrame, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> pd.DataFrame:
    """The rows of `segment_stats` whose mean loss is >= `loss_ratio` x overall at the LOWER bound
    of its bootstrap interval and whose share is >= `min_support`, by impact."""
    weak = (stats["ratio_low"] >= thresholds.loss_ratio) & (
        stats["share"] >= thresholds.min_support
    )
    return stats[weak].reset_index(drop=True)


def find_weak_segments(
    table: pd.DataFrame,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    features: Sequence[str] = SEGMENT_FEATURES,
    clusters: pd.DataFrame | None = None,
    n_bins: int = QUANTILE_BINS,
) -> pd.DataFrame:
    """`weak_segments` of every candidate segment of `table`."""
    stats = segment_stats(table, features, clusters, n_bins, thresholds=thresholds)
    return weak_segments(stats, thresholds)


def insights_markdown(
    segments: pd.DataFrame,
    table: pd.DataFrame,
    *,
    candidates: pd.DataFrame | None = None,
    clusters: pd.DataFrame | None = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    max_items: int = 15,
) -> str:
    """Plain-language findings. `candidates` (all of `segment_stats`) lets the "nothing found"
    message name the closest miss; `clusters` (from `cluster_table`) adds a cluster summary."""
    min_support, loss_ratio = thresholds.min_support, thresholds.loss_ratio
    lines = ["# Where the model fails", ""]
    n = len(table)
    if n == 0:
        return "\n".join(lines + ["No samples to analyse: the evaluation set is empty.", ""])
    correct = (table["pred"] == table["label"]).to_numpy()
    accuracy, mean_loss = float(correct.mean()), float(table["loss"].mean())
    lines += [
        f"{n:,} reviews, accuracy {accuracy:.3f}, mean loss {mean_loss:.3f} nats, "
        f"{int((~correct).sum()):,} errors.",
        "",
        f"A segment is reported when its mean loss is at least {loss_ratio:g}x the overall mean "
        f"at the lower bound of its {CI_LEVEL:.0%} bootstrap interval (a few unlucky reviews "
        f"are not a finding) and it holds at least {min_support:.0%} of the reviews "
        f"({math.ceil(min_support * n):,}); segments are ordered by impact, the loss they add "
        "beyond the average ((mean loss - overall mean) x size).",
        "",
    ]
    if segments.empty:
        msg = (
            f"No weak segment found: no metadata range, kind of review or cluster holding at "
            f"least {min_support:.0%} of the reviews has {loss_ratio:g}x the mean loss at the lower "
            "bound of its interval."
        )
        if candidates is not None:
            big = candidates[candidates["share"] >= min_support]
            if not big.empty and big["ratio_low"].notna().any():
                worst = big.loc[big["ratio_low"].idxmax()]  # the nearest miss under the rule
                msg += (
                    f" The hardest segment checked is {_lower_first(worst['description'])} "
                    f"({int(worst['size']):,} reviews) at {worst['loss_ratio']:.2f}x the mean loss "
                    f"({_interval(worst['ratio_low'], worst['ratio_high'], '.2f')})."
                )
        lines += [msg, ""]
    else:
        lines.append("## Weak segments")
        lines.append("")
        for i, row in enumerate(segments.head(max_items).itertuples(index=False), start=1):
            lines.append(
                f"{i}. {row.description} ({row.size:,} reviews, {row.share:.1%}) have "
                f"{row.loss_ratio:.1f}x the mean loss ({_interval(row.ratio_low, row.ratio_high)}); "
                f"accuracy {row.accuracy:.2f} vs {accuracy:.2f} overall."
                + (f" The same reviews are: {_same_as_text(row.same_as)}." if row.same_as else "")
            )
        if len(segments) > max_items:
            lines.append(f"\n({len(segments) - max_items} more weak segments in the tables.)")
        lines.append("")
    if clusters is not None and len(clusters) > 1:
        lines += [
            "## Clusters (k-means on the model's latent space, predicted-class direction removed)",
            "",
        ]
        for row in clusters.itertuples(index=False):
            words = ", ".join(str(row.top_words).split()[:6]) or "none"
            apart = cluster_apart_text(row)
            lines.append(
                f"- Cluster {row.cluster}: {row.size:,} reviews ({row.share:.1%}), "
                f"{row.predicted_positive_share:.0%} predicted positive; accuracy "
                f"{row.accuracy:.2f}, mean loss {row.mean_loss:.2f} = {row.loss_lift:.2f}x the "
                f"mean ({_interval(row.lift_low, row.lift_high, '.2f')})"
                + (f"; set apart by {apart}" if apart else "")
                + f"; distinctive words: {words}."
            )
        lines.append("")
    return "\n".join(lines)


def _interval(low: float, high: float, spec: str = ".1f") -> str:
    """'95% CI 1.4x-2.2x'"""
    return f"{CI_LEVEL:.0%} CI {low:{spec}}x-{high:{spec}}x"


def _same_as_text(same_as: str) -> str:
    return "; ".join(_lower_first(d) for d in same_as.split("; "))


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def importance_markdown(importance: pd.DataFrame, reviews: int, top: int = 10) -> str:
    """A section naming the words that push the model hardest each way, from `token_importance`."""
    lines = ["", "## Words the model leans on", ""]
    if importance.empty:
        return "\n".join([*lines, "No token importance computed.", ""])
    lines += [
        f"Mean Integrated-Gradients attribution toward *positive* per occurrence, over {reviews} "
        "reviews picked by id (the same reviews for every model). Full table: "
        "`token_importance.csv`.",
        "",
    ]
    positive = importance.nlargest(top, "importance").reset_index(drop=True)
    negative = importance.nsmallest(top, "importance").reset_index(drop=True)
    n = min(len(positive), len(negative))
    table = pd.DataFrame(
        {
            "toward positive": positive["token"].head(n).astype(str),
            "score": [fmt_number(v, signed=True) for v in positive["importance"].head(n)],
            "toward negative": negative["token"].head(n).astype(str),
            " score": [fmt_number(v, signed=True) for v in negative["importance"].head(n)],
        }
    )
    lines.append(markdown_table(table, right=("score", " score")))
    return "\n".join([*lines, ""])
