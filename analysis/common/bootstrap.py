"""Bootstrap means, drawn in chunks: the one resampling loop of the regression check and the
drift report."""

from __future__ import annotations

import numpy as np

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
