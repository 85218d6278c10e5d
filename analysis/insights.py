"""Weak segments: kinds of review where the model loses much more than on average, in plain words.

Candidate segments are (1) quantile ranges of each metadata feature, (2) fixed, human-meaningful
buckets (short, OOV-heavy, neutral, subjective, wording that contradicts the label, each class) and
(3) the k-means clusters. A segment is weak when its mean loss is >= `loss_ratio` x the overall
mean and it holds >= `min_support` of the reviews. Weak segments are ordered by impact = excess
loss x size = (mean loss - overall mean) x size: the loss the model would save if that segment
were as easy as the average review, so a large, mildly weak segment can outrank a tiny, very weak
one. Segments with exactly the same members are reported once, the other names in `same_as`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

INSIGHT_FEATURES = ("length", "oov_count", "oov_ratio", "subjectivity", "polarity", "rating")
# `confidence` is left out on purpose: low confidence means high loss by construction, so it would
# always be "found" and says nothing about *which reviews* are hard.
SEGMENT_COLUMNS = (
    "segment",
    "kind",
    "description",
    "size",
    "share",
    "mean_loss",
    "loss_ratio",
    "accuracy",
    "impact",
    "same_as",
)
QUANTILE_BINS = 5
DISCRETE_MAX_VALUES = 10  # a feature with at most this many values is split per value

# feature -> (how to name it in a sentence, value formatter)
_FEATURE_WORDING: dict[str, tuple[str, Callable[[float], str]]] = {
    "length": ("length", lambda v: f"{v:,.0f} tokens"),
    "oov_count": ("out-of-vocabulary count", lambda v: f"{v:,.0f} tokens"),
    "oov_ratio": ("out-of-vocabulary share", lambda v: f"{v:.1%}"),
    "subjectivity": ("TextBlob subjectivity", lambda v: f"{v:.2f}"),
    "polarity": ("TextBlob polarity", lambda v: f"{v:+.2f}"),
    "rating": ("rating", lambda v: f"{v:g}/10"),
    "confidence": ("model confidence", lambda v: f"{v:.2f}"),
}


@dataclass(frozen=True)
class _Candidate:
    segment: str  # short machine-friendly name
    kind: str  # "feature", "bucket" or "cluster"
    description: str  # "Reviews longer than 612 tokens"
    mask: np.ndarray


def _wording(feature: str) -> tuple[str, Callable[[float], str]]:
    return _FEATURE_WORDING.get(feature, (feature, lambda v: f"{v:.3g}"))


def _range_description(feature: str, lo: float | None, hi: float | None) -> str:
    """Sentence subject for lo < feature <= hi (None: open end)."""
    name, fmt = _wording(feature)
    if feature == "length":
        if lo is None:
            return f"Reviews of at most {fmt(hi)}"
        if hi is None:
            return f"Reviews longer than {fmt(lo)}"
        return f"Reviews longer than {fmt(lo)} and at most {fmt(hi)}"
    if lo is None:
        return f"Reviews with {name} at most {fmt(hi)}"
    if hi is None:
        return f"Reviews with {name} above {fmt(lo)}"
    return f"Reviews with {name} above {fmt(lo)} and at most {fmt(hi)}"


def _feature_candidates(table: pd.DataFrame, feature: str, n_bins: int) -> list[_Candidate]:
    values = table[feature].to_numpy(dtype=float)
    finite = np.isfinite(values)
    distinct = np.unique(values[finite])
    name, fmt = _wording(feature)
    if len(distinct) <= 1:
        return []
    if len(distinct) <= DISCRETE_MAX_VALUES:
        return [
            _Candidate(f"{feature}={v:g}", "feature", f"Reviews with {name} {fmt(v)}", values == v)
            for v in distinct
        ]
    # Right-closed quantile bins (lo, hi]; the first bin includes the minimum.
    edges = np.unique(np.quantile(values[finite], np.linspace(0, 1, n_bins + 1)))
    out = []
    # For whole-number features, x > 2.4 is x > 2 and x <= 19.6 is x <= 19: say the simpler one.
    tidy = np.floor if np.all(distinct == np.round(distinct)) else (lambda v: v)
    for i in range(len(edges) - 1):
        lo = None if i == 0 else float(tidy(edges[i]))
        hi = None if i == len(edges) - 2 else float(tidy(edges[i + 1]))
        mask = finite & (values <= edges[i + 1]) & ((values > edges[i]) if i else True)
        label = f"{feature} in ({'-inf' if lo is None else f'{lo:.4g}'}, "
        label += f"{'inf' if hi is None else f'{hi:.4g}'}]"
        out.append(_Candidate(label, "feature", _range_description(feature, lo, hi), mask))
    return out


def _bucket_candidates(table: pd.DataFrame) -> list[_Candidate]:
    """Fixed buckets for the kinds of review people ask about, when the columns exist."""
    cols = set(table.columns)
    out = []

    def add(name: str, description: str, mask: pd.Series) -> None:
        out.append(_Candidate(name, "bucket", description, mask.to_numpy(dtype=bool)))

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


def _cluster_candidates(table: pd.DataFrame, clusters: pd.DataFrame | None) -> list[_Candidate]:
    if "cluster" not in table.columns or table["cluster"].nunique() < 2:
        return []
    words = {}
    if clusters is not None and "top_words" in clusters.columns:
        words = dict(zip(clusters["cluster"], clusters["top_words"], strict=True))
    out = []
    for c in sorted(table["cluster"].unique()):
        top = ", ".join(str(words.get(c, "")).split()[:5])
        description = f"Reviews in cluster {c}" + (f" (distinctive words: {top})" if top else "")
        out.append(
            _Candidate(f"cluster={c}", "cluster", description, (table["cluster"] == c).to_numpy())
        )
    return out


def segment_stats(
    table: pd.DataFrame,
    features: Sequence[str] = INSIGHT_FEATURES,
    clusters: pd.DataFrame | None = None,
    n_bins: int = QUANTILE_BINS,
) -> pd.DataFrame:
    """Every candidate segment with size, share, mean loss, loss ratio, accuracy and impact,
    ordered by impact (highest first). Identical member sets are kept once."""
    n = len(table)
    if n == 0:
        return pd.DataFrame(columns=list(SEGMENT_COLUMNS))
    candidates: list[_Candidate] = []
    for feature in features:
        if feature in table.columns:
            candidates += _feature_candidates(table, feature, n_bins)
    candidates += _bucket_candidates(table) + _cluster_candidates(table, clusters)
    loss = table["loss"].to_numpy(dtype=float)
    correct = (table["pred"] == table["label"]).to_numpy()
    overall = float(loss.mean())
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
        rows.append(
            {
                "segment": cand.segment,
                "kind": cand.kind,
                "description": cand.description,
                "size": size,
                "share": size / n,
                "mean_loss": mean_loss,
                "loss_ratio": mean_loss / overall if overall > 0 else math.nan,
                "accuracy": float(correct[cand.mask].mean()),
                "impact": (mean_loss - overall) * size,
                "same_as": "",
            }
        )
    frame = pd.DataFrame(rows, columns=list(SEGMENT_COLUMNS))
    return frame.sort_values("impact", ascending=False, kind="stable").reset_index(drop=True)


def find_weak_segments(
    table: pd.DataFrame,
    features: Sequence[str] = INSIGHT_FEATURES,
    min_support: float = 0.02,
    loss_ratio: float = 1.5,
    clusters: pd.DataFrame | None = None,
    n_bins: int = QUANTILE_BINS,
) -> pd.DataFrame:
    """Segments with mean loss >= `loss_ratio` x overall and share >= `min_support`, by impact."""
    stats = segment_stats(table, features, clusters, n_bins)
    weak = (stats["loss_ratio"] >= loss_ratio) & (stats["share"] >= min_support)
    return stats[weak].reset_index(drop=True)


def insights_markdown(
    segments: pd.DataFrame,
    table: pd.DataFrame,
    *,
    candidates: pd.DataFrame | None = None,
    clusters: pd.DataFrame | None = None,
    min_support: float = 0.02,
    loss_ratio: float = 1.5,
    max_items: int = 15,
) -> str:
    """Plain-language findings. `candidates` (all of `segment_stats`) lets the "nothing found"
    message name the closest miss; `clusters` (from `cluster_table`) adds a cluster summary."""
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
        f"and it holds at least {min_support:.0%} of the reviews ({math.ceil(min_support * n):,}); "
        "segments are ordered by impact, the loss they add beyond the average "
        "((mean loss - overall mean) x size).",
        "",
    ]
    if segments.empty:
        msg = (
            f"No weak segment found: no metadata range, kind of review or cluster holding at "
            f"least {min_support:.0%} of the reviews has {loss_ratio:g}x the mean loss."
        )
        if candidates is not None:
            big = candidates[candidates["share"] >= min_support]
            if not big.empty and big["loss_ratio"].notna().any():
                worst = big.loc[big["loss_ratio"].idxmax()]
                msg += (
                    f" The hardest segment checked is {_lower_first(worst['description'])} "
                    f"({int(worst['size']):,} reviews) at {worst['loss_ratio']:.2f}x the mean loss."
                )
        lines += [msg, ""]
    else:
        lines.append("## Weak segments")
        lines.append("")
        for i, row in enumerate(segments.head(max_items).itertuples(index=False), start=1):
            lines.append(
                f"{i}. {row.description} ({row.size:,} reviews, {row.share:.1%}) have "
                f"{row.loss_ratio:.1f}x the mean loss; accuracy {row.accuracy:.2f} vs "
                f"{accuracy:.2f} overall."
                + (f" The same reviews are: {_same_as_text(row.same_as)}." if row.same_as else "")
            )
        if len(segments) > max_items:
            lines.append(f"\n({len(segments) - max_items} more weak segments in the tables.)")
        lines.append("")
    if clusters is not None and len(clusters) > 1:
        lines += ["## Clusters (k-means on the model's latent space)", ""]
        for row in clusters.itertuples(index=False):
            words = ", ".join(str(row.top_words).split()[:6]) or "none"
            lines.append(
                f"- Cluster {row.cluster}: {row.size:,} reviews ({row.share:.1%}), accuracy "
                f"{row.accuracy:.2f}, mean loss {row.mean_loss:.2f}, mean length "
                f"{row.mean_length:.0f} tokens, mean OOV {row.mean_oov_count:.1f}; "
                f"distinctive words: {words}."
            )
        lines.append("")
    return "\n".join(lines)


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
        "| toward positive | score | toward negative | score |",
        "|---|---:|---|---:|",
    ]
    positive = importance.nlargest(top, "importance")
    negative = importance.nsmallest(top, "importance")
    for pos, neg in zip(positive.itertuples(), negative.itertuples(), strict=False):
        lines.append(
            f"| {pos.token} | {pos.importance:+.3f} | {neg.token} | {neg.importance:+.3f} |"
        )
    return "\n".join([*lines, ""])
