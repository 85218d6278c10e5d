"""The drift measures of one comparison, reference vs current: frames in, a `DriftReport` out.

Inputs are DataFrames with columns `text`, `label` (1 positive) and optionally `rating` (1-10),
the tokenizer and vocabulary the champion reads text with (passed in, never loaded here), and
optionally the champion's P(positive) on each side. No I/O: the caller logs and writes.
"""

from __future__ import annotations

from collections.abc import Container

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from analysis.common.schema import CLASS_NAMES, per_sample_loss
from analysis.drift import stats
from analysis.drift.inputs import (
    Tokenizer,
    TokenProfile,
    checked_labels,
    checked_probs,
    checked_ratings,
    profile_texts,
)
from analysis.drift.result import DriftMeasure, DriftReport, fmt_p
from analysis.drift.thresholds import DEFAULT_DRIFT_THRESHOLDS, DriftThresholds
from data.text import tokenize

TOP_OOV_WORDS = 30  # rows of the missing-words table: enough to see a theme, short enough to read
RATINGS = np.arange(1, 11)


def _share_table(
    index: list[str], index_name: str, ref_counts: np.ndarray, cur_counts: np.ndarray, eps: float
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            index_name: index,
            "reference_count": ref_counts.astype(np.int64),
            "reference_share": stats.shares(ref_counts),
            "current_count": cur_counts.astype(np.int64),
            "current_share": stats.shares(cur_counts),
            "psi_term": stats.psi_terms(ref_counts, cur_counts, eps),
        }
    )


def label_balance(
    ref_labels: np.ndarray, cur_labels: np.ndarray, th: DriftThresholds
) -> tuple[DriftMeasure, pd.DataFrame]:
    """Share of positive reviews: absolute difference, pooled two-proportion z-test."""
    k_ref, n_ref = int(ref_labels.sum()), len(ref_labels)
    k_cur, n_cur = int(cur_labels.sum()), len(cur_labels)
    p_ref, p_cur = k_ref / n_ref, k_cur / n_cur
    test = stats.two_proportion_ztest(k_ref, n_ref, k_cur, n_cur)
    diff = abs(p_cur - p_ref)
    measure = DriftMeasure(
        name="label_balance",
        statistic="abs_diff",
        value=diff,
        value_reference=p_ref,
        value_current=p_cur,
        threshold=th.label_diff,
        drifted=diff > th.label_diff and test.p_value < th.alpha,
        detail=f"share positive {p_ref:.3f} → {p_cur:.3f}: difference {diff:.3f} "
        f"(drift above {th.label_diff:g}), two-proportion z = {test.statistic:.2f}, "
        f"p {fmt_p(test.p_value)}",
        test="two-proportion z",
        p_value=test.p_value,
        stats={"z": test.statistic},
    )
    counts = (np.bincount(ref_labels, minlength=2), np.bincount(cur_labels, minlength=2))
    table = _share_table([CLASS_NAMES[0], CLASS_NAMES[1]], "label", *counts, th.psi_eps)
    return measure, table.drop(columns="psi_term")


def _psi_measure(
    name: str,
    ref_counts: np.ndarray,
    cur_counts: np.ndarray,
    test: stats.TestResult,
    test_name: str,
    sides: tuple[float, float],
    unit: str,
    th: DriftThresholds,
    extra: dict[str, float],
) -> DriftMeasure:
    """A distribution measure judged by PSI (effect) and a test (significance)."""
    value = stats.psi(ref_counts, cur_counts, th.psi_eps)
    return DriftMeasure(
        name=name,
        statistic="psi",
        value=value,
        value_reference=sides[0],
        value_current=sides[1],
        threshold=th.psi,
        drifted=value >= th.psi and test.p_value < th.alpha,
        detail=f"mean {unit} {sides[0]:.2f} → {sides[1]:.2f}: PSI {value:.3f} (drift from "
        f"{th.psi:g}), {test_name} {test.statistic:.3f}, p {fmt_p(test.p_value)}",
        test=test_name,
        p_value=test.p_value,
        stats=extra,
    )


def rating_drift(
    ref_ratings: np.ndarray, cur_ratings: np.ndarray, th: DriftThresholds
) -> tuple[DriftMeasure, pd.DataFrame]:
    """Ratings 1-10 as ten bins: PSI and a chi-square test of homogeneity."""
    ref_counts = np.bincount(ref_ratings, minlength=11)[1:]
    cur_counts = np.bincount(cur_ratings, minlength=11)[1:]
    test = stats.chi_square(ref_counts, cur_counts)
    measure = _psi_measure(
        "rating",
        ref_counts,
        cur_counts,
        test,
        "chi-square",
        (float(ref_ratings.mean()), float(cur_ratings.mean())),
        "rating",
        th,
        {"chi2": test.statistic},
    )
    table = _share_table([str(r) for r in RATINGS], "rating", ref_counts, cur_counts, th.psi_eps)
    return measure, table


def _bin_names(cuts: np.ndarray) -> list[str]:
    if cuts.size == 0:
        return ["all"]
    edges = [f"{c:g}" for c in cuts]
    middle = [f"[{lo}, {hi})" for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    return [f"< {edges[0]}", *middle, f">= {edges[-1]}"]


def length_drift(
    ref_lengths: np.ndarray, cur_lengths: np.ndarray, th: DriftThresholds
) -> tuple[DriftMeasure, pd.DataFrame]:
    """Tokens per review: PSI over the reference's quantile bins, two-sample KS.

    Quantile bins give each bin ~1/n of the reference, so PSI weighs every part of the length
    range alike. A reference with a few distinct lengths has fewer bins, and PSI cannot see a
    shift inside one; the KS statistic in the detail still shows it.
    """
    cuts = stats.quantile_cuts(ref_lengths, th.length_bins)
    ref_counts, cur_counts = (
        stats.bin_counts(ref_lengths, cuts),
        stats.bin_counts(cur_lengths, cuts),
    )
    test = stats.ks_test(ref_lengths, cur_lengths)
    measure = _psi_measure(
        "review_length",
        ref_counts,
        cur_counts,
        test,
        "KS D",
        (float(ref_lengths.mean()), float(cur_lengths.mean())),
        "tokens",
        th,
        {
            "ks": test.statistic,
            "median_reference": float(np.median(ref_lengths)),
            "median_current": float(np.median(cur_lengths)),
        },
    )
    table = _share_table(_bin_names(cuts), "tokens", ref_counts, cur_counts, th.psi_eps)
    return measure, table


def oov_drift(
    ref: TokenProfile, cur: TokenProfile, th: DriftThresholds
) -> tuple[DriftMeasure, pd.DataFrame]:
    """Mean per-review OOV share: absolute difference, two-sample KS on the per-review shares.

    Per review rather than pooled over all tokens, so a few very long reviews do not decide it;
    the pooled share is kept in the stats and the table.
    """
    ref_shares, cur_shares = ref.oov_shares, cur.oov_shares
    m_ref, m_cur = float(ref_shares.mean()), float(cur_shares.mean())
    diff = abs(m_cur - m_ref)
    test = stats.ks_test(ref_shares, cur_shares)
    pooled = [float(p.oov_counts.sum() / max(p.lengths.sum(), 1)) for p in (ref, cur)]
    measure = DriftMeasure(
        name="oov_rate",
        statistic="abs_diff",
        value=diff,
        value_reference=m_ref,
        value_current=m_cur,
        threshold=th.oov_diff,
        drifted=diff > th.oov_diff and test.p_value < th.alpha,
        detail=f"mean share of a review's tokens missing from the vocabulary {m_ref:.3f} → "
        f"{m_cur:.3f}: difference {diff:.3f} (drift above {th.oov_diff:g}), KS D "
        f"{test.statistic:.3f}, p {fmt_p(test.p_value)}",
        test="KS D",
        p_value=test.p_value,
        stats={"ks": test.statistic, "pooled_reference": pooled[0], "pooled_current": pooled[1]},
    )
    table = pd.DataFrame(
        {
            "side": ["reference", "current"],
            "reviews": [len(ref_shares), len(cur_shares)],
            "mean_oov_share": [m_ref, m_cur],
            "median_oov_share": [float(np.median(ref_shares)), float(np.median(cur_shares))],
            "p90_oov_share": [float(np.quantile(s, 0.9)) for s in (ref_shares, cur_shares)],
            "pooled_oov_share": pooled,
        }
    )
    return measure, table


def oov_words(ref: TokenProfile, cur: TokenProfile, top: int = TOP_OOV_WORDS) -> pd.DataFrame:
    """The words the vocabulary lacks that occur in the most current reviews (reviews, not
    occurrences: one review repeating a word fifty times is not a trend), with how common each
    was in the reference; a word with reference share 0 is new."""
    n_ref, n_cur = max(len(ref.lengths), 1), max(len(cur.lengths), 1)
    ranked = sorted(cur.oov_reviews.items(), key=lambda kv: (-kv[1], -cur.oov_tokens[kv[0]], kv[0]))
    rows = [
        {
            "word": word,
            "current_reviews": n,
            "current_share": n / n_cur,
            "current_count": cur.oov_tokens[word],
            "reference_reviews": ref.oov_reviews.get(word, 0),
            "reference_share": ref.oov_reviews.get(word, 0) / n_ref,
        }
        for word, n in ranked[:top]
    ]
    columns = [
        "word",
        "current_reviews",
        "current_share",
        "current_count",
        "reference_reviews",
        "reference_share",
    ]
    return pd.DataFrame(rows, columns=columns)


def champion_accuracy(
    ref_labels: np.ndarray,
    ref_prob: np.ndarray,
    cur_labels: np.ndarray,
    cur_prob: np.ndarray,
    th: DriftThresholds,
    rng: np.random.Generator,
) -> tuple[DriftMeasure, pd.DataFrame]:
    """The champion's accuracy drop (reference - current) with Newcombe's interval and a
    z-test, and its mean loss rise with a bootstrap interval. Only a drop counts as drift: a
    model doing better on new data is no reason to retrain."""
    level = 1 - th.alpha
    right = [
        (p >= 0.5).astype(int) == y for p, y in ((ref_prob, ref_labels), (cur_prob, cur_labels))
    ]
    (k_ref, n_ref), (k_cur, n_cur) = [(int(r.sum()), len(r)) for r in right]
    acc_ref, acc_cur = k_ref / n_ref, k_cur / n_cur
    drop = acc_ref - acc_cur
    low, high = stats.newcombe_interval(k_ref, n_ref, k_cur, n_cur, level)
    test = stats.two_proportion_ztest(k_ref, n_ref, k_cur, n_cur)
    loss_ref, loss_cur = (
        per_sample_loss(ref_prob, ref_labels),
        per_sample_loss(cur_prob, cur_labels),
    )
    rise = float(loss_cur.mean() - loss_ref.mean())
    rise_low, rise_high = stats.bootstrap_mean_diff_ci(loss_ref, loss_cur, th.n_boot, rng, level)
    measure = DriftMeasure(
        name="champion_accuracy",
        statistic="accuracy_drop",
        value=drop,
        value_reference=acc_ref,
        value_current=acc_cur,
        threshold=th.accuracy_drop,
        drifted=drop > th.accuracy_drop and test.p_value < th.alpha,
        detail=f"accuracy {acc_ref:.3f} → {acc_cur:.3f}: drop {drop:+.3f} ({level:.0%} "
        f"interval {low:+.3f} to {high:+.3f}; drift above {th.accuracy_drop:g}), p "
        f"{fmt_p(test.p_value)}; mean loss {loss_ref.mean():.3f} → {loss_cur.mean():.3f} nats "
        f"(rise {rise:+.3f}, {level:.0%} bootstrap interval {rise_low:+.3f} to {rise_high:+.3f})",
        test="two-proportion z",
        p_value=test.p_value,
        stats={
            "drop_low": low,
            "drop_high": high,
            "z": test.statistic,
            "loss_reference": float(loss_ref.mean()),
            "loss_current": float(loss_cur.mean()),
            "loss_rise": rise,
            "loss_rise_low": rise_low,
            "loss_rise_high": rise_high,
        },
    )
    intervals = [stats.wilson_interval(k, n, level) for k, n in ((k_ref, n_ref), (k_cur, n_cur))]
    table = pd.DataFrame(
        {
            "side": ["reference", "current"],
            "reviews": [n_ref, n_cur],
            "accuracy": [acc_ref, acc_cur],
            "accuracy_low": [lo for lo, _ in intervals],
            "accuracy_high": [hi for _, hi in intervals],
            "mean_loss": [float(loss_ref.mean()), float(loss_cur.mean())],
        }
    )
    return measure, table


def build_drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    vocabulary: Container[str],
    *,
    tokenizer: Tokenizer = tokenize,
    reference_prob: ArrayLike | None = None,
    current_prob: ArrayLike | None = None,
    thresholds: DriftThresholds = DEFAULT_DRIFT_THRESHOLDS,
    reference_name: str = "reference",
    current_name: str = "current",
    top_words: int = TOP_OOV_WORDS,
    seed: int = 0,
) -> DriftReport:
    """Every measure of `current` against `reference`.

    `vocabulary`: the champion's (a `data.text.Vocabulary` or a set of tokens); `tokenizer`: how
    the champion splits text (default: the project's `data.text.tokenize`). `reference_prob`,
    `current_prob`: the champion's P(positive) per row, both or neither (the accuracy measure
    needs both). A rating column missing or empty on either side skips the rating measure; each
    skip is recorded with its reason in `skipped`. `seed`: the bootstrap's generator.
    """
    th = thresholds
    ref_labels = checked_labels(reference, reference_name)
    cur_labels = checked_labels(current, current_name)
    if (reference_prob is None) != (current_prob is None):
        raise ValueError("champion predictions are needed for both sides, or for neither")
    measures: list[DriftMeasure] = []
    tables: dict[str, pd.DataFrame] = {}
    skipped: dict[str, str] = {}

    def add(name: str, result: tuple[DriftMeasure, pd.DataFrame]) -> None:
        measure, table = result
        if "side" in table.columns:  # the comparison's own names read better than "reference"
            names = {"reference": reference_name, "current": current_name}
            table = table.assign(side=table["side"].map(names))
        measures.append(measure)
        tables[name] = table

    add("label_balance", label_balance(ref_labels, cur_labels, th))

    ratings = (checked_ratings(reference, reference_name), checked_ratings(current, current_name))
    if ratings[0] is not None and ratings[1] is not None:
        add("rating", rating_drift(ratings[0], ratings[1], th))
    else:
        side = " and ".join(
            n for n, r in zip((reference_name, current_name), ratings, strict=True) if r is None
        )
        skipped["rating"] = f"no ratings in {side}"

    ref_tokens = profile_texts(reference["text"].tolist(), vocabulary, tokenizer)
    cur_tokens = profile_texts(current["text"].tolist(), vocabulary, tokenizer)
    add("review_length", length_drift(ref_tokens.lengths, cur_tokens.lengths, th))
    if ref_tokens.oov_shares.size and cur_tokens.oov_shares.size:
        add("oov_rate", oov_drift(ref_tokens, cur_tokens, th))
    else:
        skipped["oov_rate"] = "a side has no review with any token"
    tables["oov_words"] = oov_words(ref_tokens, cur_tokens, top_words)

    if reference_prob is not None and current_prob is not None:
        ref_p = checked_probs(reference_prob, len(reference), f"{reference_name} predictions")
        cur_p = checked_probs(current_prob, len(current), f"{current_name} predictions")
        rng = np.random.default_rng(seed)
        add("champion_accuracy", champion_accuracy(ref_labels, ref_p, cur_labels, cur_p, th, rng))
    else:
        skipped["champion_accuracy"] = "no champion predictions given"

    return DriftReport(
        reference_name=reference_name,
        current_name=current_name,
        n_reference=len(reference),
        n_current=len(current),
        measures=measures,
        tables=tables,
        thresholds=th,
        skipped=skipped,
    )
