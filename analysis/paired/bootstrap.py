"""The paired bootstrap: an interval for the mean per-review loss change of a segment.

Resampling the per-review differences (new - old) keeps each review's two losses together, which
removes the between-review variance that dominates an unpaired comparison.
"""

from __future__ import annotations

# The interval and its generator are shared with the one-model analysis, so they live in common;
# the pairing is the caller's: it resamples the per-review differences.
from analysis.common.bootstrap import CI_LEVEL, bootstrap_mean_ci, segment_rng

__all__ = ["CI_LEVEL", "bootstrap_mean_ci", "segment_rng"]
