"""The paired bootstrap: an interval for the mean per-review loss change of a segment.

Resampling the per-review differences (new - old) keeps each review's two losses together, which
removes the between-review variance that dominates an unpaired comparison.
"""

from __future__ import annotations

import math
import zlib

import numpy as np

CI_LEVEL = 0.95
_BOOT_CHUNK = 2_000_000  # resampled indices held at once: bounds memory for 25,000-row segments


def bootstrap_mean_ci(
    diff: np.ndarray, n_boot: int, rng: np.random.Generator, level: float = CI_LEVEL
) -> tuple[float, float]:
    """Percentile interval of the mean of `diff` over `n_boot` resamples (with replacement).

    Indices are drawn in chunks so a 25,000-review segment never holds 25M at once.
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


def segment_rng(seed: int, segment: str) -> np.random.Generator:
    """The generator of one segment's interval, keyed by its name: adding a segment (a feature, a
    cluster) leaves the other segments' intervals unchanged."""
    return np.random.default_rng([seed, zlib.crc32(segment.encode())])
