"""Bootstrap means drawn in chunks, and the percentile interval of a mean: the one resampling loop
of the regression check, the drift report, the metadata dashboard, the weak segments and the
clusters."""

from __future__ import annotations

import math
import zlib

import numpy as np

CI_LEVEL = 0.95  # every bootstrap interval of a mean in the reports
_BOOT_CHUNK = 2_000_000  # resampled indices held at once: bounds memory for 25,000-row samples


def bootstrap_means(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """`n_boot` means of `values` resampled with replacement (`values` must not be empty).

    Indices are drawn in chunks so a 25,000-value sample never holds 25M indices at once.
    """
    values = np.asarray(values)
    n = values.size
    means = np.empty(n_boot)
    chunk = max(1, _BOOT_CHUNK // n)
    for start in range(0, n_boot, chunk):
        stop = min(start + chunk, n_boot)
        idx = rng.integers(0, n, size=(stop - start, n), dtype=np.int32)
        means[start:stop] = values[idx].mean(axis=1)
    return means


def bootstrap_mean_ci(
    values: np.ndarray, n_boot: int, rng: np.random.Generator, level: float = CI_LEVEL
) -> tuple[float, float]:
    """Percentile interval of the mean of `values` over `n_boot` resamples (with replacement).

    (nan, nan) for no values; a single value (or no resample) gives the value itself: a one-review
    segment has no spread to resample, and its interval says so by being a point.
    """
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    if n == 1 or n_boot < 1:
        return float(values[0]) if n == 1 else math.nan, float(values[0]) if n == 1 else math.nan
    means = bootstrap_means(values, n_boot, rng)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return float(lo), float(hi)


def segment_rng(seed: int, segment: str) -> np.random.Generator:
    """The generator of one segment's interval, keyed by its name: adding a segment (a feature, a
    cluster) leaves the other segments' intervals unchanged."""
    return np.random.default_rng([seed, zlib.crc32(segment.encode())])
