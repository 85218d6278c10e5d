"""The statistics of the drift report: pure functions over counts and arrays, no data knowledge.

Every function returns finite numbers on degenerate input (an empty side, one category, a
constant sample): a drift report must never log NaN to MLflow or crash on a small batch of new
reviews. "No evidence of a difference" is the answer there (statistic 0, p-value 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from analysis.common.bootstrap import bootstrap_means


@dataclass(frozen=True)
class TestResult:
    """A test's statistic and two-sided p-value."""

    statistic: float
    p_value: float

    __test__ = False  # not a pytest test class, despite the name


def shares(counts: ArrayLike) -> np.ndarray:
    """Counts as shares of their total; all zeros when the total is 0."""
    c = np.asarray(counts, dtype=float)
    total = c.sum()
    return c / total if total > 0 else np.zeros_like(c)


def psi_terms(ref_counts: ArrayLike, cur_counts: ArrayLike, eps: float = 1e-4) -> np.ndarray:
    """Each bin's term of the population stability index, (p_cur - p_ref) * ln(p_cur / p_ref).

    Empty bins get share `eps` (on both sides, so a bin empty in both adds exactly 0); each term
    is >= 0, so the PSI (their sum) is 0 only for identical distributions.
    """
    ref, cur = np.asarray(ref_counts, dtype=float), np.asarray(cur_counts, dtype=float)
    if ref.shape != cur.shape:
        raise ValueError(f"bin counts differ in shape: {ref.shape} vs {cur.shape}")
    p_ref = np.maximum(shares(ref), eps)
    p_cur = np.maximum(shares(cur), eps)
    return (p_cur - p_ref) * np.log(p_cur / p_ref)


def psi(ref_counts: ArrayLike, cur_counts: ArrayLike, eps: float = 1e-4) -> float:
    """Population stability index of two binned distributions (counts per bin, same bins)."""
    return float(psi_terms(ref_counts, cur_counts, eps).sum())


def quantile_cuts(reference: ArrayLike, n_bins: int) -> np.ndarray:
    """Inner cut points at the reference's quantiles 1/n .. (n-1)/n, repeated values dropped.

    Lengths are integers with ties, so fewer than `n_bins` bins may remain; the outer bins are
    open (-inf, first cut) and [last cut, inf), so current values outside the reference's range
    still land in a bin.
    """
    ref = np.asarray(reference, dtype=float)
    if ref.size == 0 or n_bins < 2:
        return np.empty(0)
    return np.unique(np.quantile(ref, np.arange(1, n_bins) / n_bins))


def bin_counts(values: ArrayLike, cuts: np.ndarray) -> np.ndarray:
    """Counts of `values` in the len(cuts) + 1 bins that `cuts` define (a value equal to a cut
    goes to the bin above it)."""
    idx = np.searchsorted(cuts, np.asarray(values, dtype=float), side="right")
    return np.bincount(idx, minlength=len(cuts) + 1)


def two_proportion_ztest(k_ref: int, n_ref: int, k_cur: int, n_cur: int) -> TestResult:
    """Pooled two-proportion z-test of k_ref/n_ref vs k_cur/n_cur (z > 0: current is higher)."""
    if n_ref == 0 or n_cur == 0:
        return TestResult(0.0, 1.0)
    pooled = (k_ref + k_cur) / (n_ref + n_cur)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_ref + 1 / n_cur))
    if se == 0:  # both sides all-0 or all-1: identical
        return TestResult(0.0, 1.0)
    z = (k_cur / n_cur - k_ref / n_ref) / se
    return TestResult(float(z), float(2 * stats.norm.sf(abs(z))))


def chi_square(ref_counts: ArrayLike, cur_counts: ArrayLike) -> TestResult:
    """Chi-square test of homogeneity of two count vectors over the same categories.

    Categories empty on both sides are dropped (they carry no information, and would make the
    expected counts 0); with fewer than two categories left, the sides cannot differ.
    """
    table = np.vstack([np.asarray(ref_counts, float), np.asarray(cur_counts, float)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return TestResult(0.0, 1.0)
    result = stats.chi2_contingency(table, correction=False)
    return TestResult(float(result.statistic), float(result.pvalue))


def ks_test(reference: ArrayLike, current: ArrayLike) -> TestResult:
    """Two-sample Kolmogorov-Smirnov test (statistic D = largest gap between the two ECDFs).

    On integer data (lengths) ties make the p-value conservative: it errs toward "no drift".
    """
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
    if ref.size == 0 or cur.size == 0:
        return TestResult(0.0, 1.0)
    result = stats.ks_2samp(ref, cur)
    return TestResult(float(result.statistic), float(result.pvalue))


def wilson_interval(k: int, n: int, level: float = 0.99) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n; (0, 1) when n is 0.

    Wilson rather than the normal approximation: it stays inside [0, 1] and keeps its coverage
    near accuracy 0.9 on a few hundred reviews, where the normal interval is too narrow.
    """
    if n == 0:
        return 0.0, 1.0
    z = float(stats.norm.ppf(0.5 + level / 2))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_interval(
    k_ref: int, n_ref: int, k_cur: int, n_cur: int, level: float = 0.99
) -> tuple[float, float]:
    """Interval of the difference p_ref - p_cur of two independent proportions (Newcombe's
    hybrid score method: each side's Wilson interval, combined), e.g. an accuracy drop."""
    p_ref = k_ref / n_ref if n_ref else 0.0
    p_cur = k_cur / n_cur if n_cur else 0.0
    l_ref, u_ref = wilson_interval(k_ref, n_ref, level)
    l_cur, u_cur = wilson_interval(k_cur, n_cur, level)
    diff = p_ref - p_cur
    low = diff - math.sqrt((p_ref - l_ref) ** 2 + (u_cur - p_cur) ** 2)
    high = diff + math.sqrt((u_ref - p_ref) ** 2 + (p_cur - l_cur) ** 2)
    return low, high


def bootstrap_mean_diff_ci(
    reference: ArrayLike,
    current: ArrayLike,
    n_boot: int,
    rng: np.random.Generator,
    level: float = 0.99,
) -> tuple[float, float]:
    """Percentile interval of mean(current) - mean(reference), each side resampled on its own
    (unpaired: the two sides are different reviews). (0, 0) when a side is empty."""
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    if ref.size == 0 or cur.size == 0:
        return 0.0, 0.0
    diffs = bootstrap_means(cur, n_boot, rng) - bootstrap_means(ref, n_boot, rng)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(diffs, [tail, 100 - tail])
    return float(low), float(high)
