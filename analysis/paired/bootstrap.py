"""The paired bootstrap: an interval for the mean per-review loss change of a segment.

Resampling the per-review differences (new - old) keeps each review's two losses together, which
removes the between-review variance that dominates an unpaired comparison.
"""

from __future__ import annotations

import math
import zlib

import numpy as np

from analysis.common.bootstrap import bootstrap_means

CI_LEVEL = 0.95


def bootstrap_mean_ci(
    diff: np.ndarray, n_boot: int, rng: np.random.Generator, level: float = CI_LEVEL
) -> tuple[float, float]:
    """Percentile interval of the mean of `diff` over `n_boot` resamples (with replacement)."""
    n = len(diff)
    if n == 0:
        return math.nan, math.nan
    if n == 1 or n_boot < 1:
        return float(diff[0]) if n == 1 else math.nan, float(diff[0]) if n == 1 else math.nan
    means = bootstrap_means(diff, n_boot, rng)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return float(lo), float(hi)


def segment_rng(seed: int, segment: str) -> np.random.Generator:
    """The generator of one segment's interval, keyed by its name: adding a segment (a feature, a
    cluster) leaves the other segments' intervals unchanged."""
    return np.random.default_rng([seed, zlib.crc32(segment.encode())])
