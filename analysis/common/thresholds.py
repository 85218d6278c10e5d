"""The numbers that decide what the analysis calls weak, a regression or confident: set once.

The flow takes a `Thresholds` parameter and passes it down to the insights, the regression check
and the dense-vs-CNN triage, so one setting changes every report that uses it and no function
carries its own default copy of a threshold.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Thresholds(BaseModel):
    """What counts as a finding. Losses are mean cross-entropy in nats."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    loss_rise: float = Field(
        default=0.1,
        ge=0.0,
        description="regression alert: the lower bound of the paired-bootstrap interval of a "
        "segment's mean-loss increase must exceed this many nats",
    )
    min_support: float = Field(
        default=0.02,
        gt=0.0,
        le=1.0,
        description="smallest share of the reviews a weak segment or an alert may hold",
    )
    loss_ratio: float = Field(
        default=1.5,
        gt=1.0,
        description="a segment is weak when its mean loss is at least this multiple of the mean",
    )
    n_boot: int = Field(default=1000, ge=1, description="bootstrap resamples per interval")
    confident: float = Field(
        default=0.6,
        ge=0.0,
        le=1.0,
        description="confidence |P(positive) - 0.5| x 2 from which a prediction counts as sure "
        "(0.6: P >= 0.8 or <= 0.2)",
    )


DEFAULT_THRESHOLDS = Thresholds()
