"""The typed result of a drift comparison: `DriftMeasure` (one measure, its verdict) and
`DriftReport` (all measures of one reference-vs-current comparison, their tables, the MLflow
numbers). Built by `analysis.drift.measures`, rendered by `analysis.drift.report`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from analysis.drift.thresholds import DriftThresholds

# Display order and the words a reader sees for each measure's metric key.
MEASURE_TITLES = {
    "label_balance": "Label balance (share positive)",
    "rating": "Rating distribution (1-10)",
    "review_length": "Review length (tokens)",
    "oov_rate": "Out-of-vocabulary rate (champion's vocabulary)",
    "champion_accuracy": "Champion accuracy",
}


def fmt_p(p_value: float) -> str:
    """A p-value for display: "< 0.001" below a thousandth (3 decimals would print 0.000)."""
    if not math.isfinite(p_value):
        return "n/a"
    return "< 0.001" if p_value < 0.001 else f"{p_value:.3f}"


@dataclass(frozen=True)
class DriftMeasure:
    """One measure of one comparison.

    `statistic` names the effect statistic and `value` is it (e.g. "psi", 0.31); `threshold` is
    what `value` is held against; `test` and `p_value` the significance test. `value_reference`
    and `value_current` summarise each side in the measure's own unit (share positive, mean
    rating, mean tokens, mean OOV share, accuracy). `drifted`: effect past its threshold AND
    p_value < alpha. `stats`: every further number, logged as `drift_<name>_<key>`.
    """

    name: str
    statistic: str
    value: float
    value_reference: float
    value_current: float
    threshold: float
    drifted: bool
    detail: str
    test: str = ""
    p_value: float = 1.0
    stats: Mapping[str, float] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return MEASURE_TITLES.get(self.name, self.name)

    def numbers(self) -> dict[str, float]:
        """The measure's numbers by key: its statistic, p-value, both sides, stats, drifted 0/1."""
        out = {
            self.statistic: self.value,
            "p_value": self.p_value,
            "reference": self.value_reference,
            "current": self.value_current,
            **{k: float(v) for k, v in self.stats.items()},
            "drifted": float(self.drifted),
        }
        return {k: float(v) for k, v in out.items()}


@dataclass(frozen=True)
class DriftReport:
    """Drift of `current` against `reference` (e.g. new reviews vs the test split).

    `measures`: one `DriftMeasure` per measure that could be computed, in display order.
    `skipped`: measure -> why it was not measured (no rating column, no predictions).
    `tables`: name -> DataFrame behind the measures ("label_balance", "rating",
    "review_length", "oov_rate", "oov_words", "champion_accuracy"), written as CSVs.
    """

    reference_name: str
    current_name: str
    n_reference: int
    n_current: int
    measures: list[DriftMeasure]
    tables: dict[str, pd.DataFrame]
    thresholds: DriftThresholds
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def drifted(self) -> list[DriftMeasure]:
        return [m for m in self.measures if m.drifted]

    @property
    def any_drift(self) -> bool:
        return bool(self.drifted)

    def measure(self, name: str) -> DriftMeasure:
        for m in self.measures:
            if m.name == name:
                return m
        raise KeyError(f"no drift measure {name!r} (measured: {[m.name for m in self.measures]})")

    def metrics(self, prefix: str = "drift") -> dict[str, float]:
        """Flat numbers for MLflow: `<prefix>_<measure>_<stat>` (stat: the effect statistic,
        p_value, reference, current, the measure's further stats), `<prefix>_<measure>_drifted`
        (0/1), `<prefix>_any`, `<prefix>_n_reference`, `<prefix>_n_current`. Two comparisons
        logged to one run take two prefixes (e.g. "drift_train", "drift_new")."""
        out: dict[str, float] = {
            f"{prefix}_n_reference": float(self.n_reference),
            f"{prefix}_n_current": float(self.n_current),
        }
        for m in self.measures:
            out.update({f"{prefix}_{m.name}_{k}": v for k, v in m.numbers().items()})
        out[f"{prefix}_any"] = float(self.any_drift)
        bad = [k for k, v in out.items() if not math.isfinite(v)]
        if bad:  # a bug upstream: MLflow would store NaN and charts would break silently
            raise ValueError(f"non-finite drift metrics: {bad}")
        return out

    def measure_frame(self) -> pd.DataFrame:
        """One row per measure: measure, statistic, value, threshold, test, p_value, both sides,
        drifted, detail (the measures table of the report and `measures.csv`)."""
        return pd.DataFrame(
            [
                {
                    "measure": m.name,
                    "statistic": m.statistic,
                    "value": m.value,
                    "threshold": m.threshold,
                    "test": m.test,
                    "p_value": m.p_value,
                    "reference": m.value_reference,
                    "current": m.value_current,
                    "drifted": m.drifted,
                    "detail": m.detail,
                }
                for m in self.measures
            ],
            columns=[
                "measure",
                "statistic",
                "value",
                "threshold",
                "test",
                "p_value",
                "reference",
                "current",
                "drifted",
                "detail",
            ],
        )
