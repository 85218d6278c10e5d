"""What the drift report calls drifted: every threshold of `analysis.drift`, set once.

A measure is drifted when BOTH its effect statistic crosses its threshold AND its significance
test rejects "same distribution" at `alpha`. Either alone misleads: on 25,000 reviews a test
rejects for a shift nobody would retrain for, and on 200 reviews an effect size wobbles past its
threshold by chance. IMDB train vs test (25,000 each, other movies, same population) shows the
first: rating chi-square p < 0.001 at PSI 0.002, length KS p = 0.006 at PSI 0.001, OOV KS
p < 0.001 at a difference of 0.006; every effect is far below its threshold, and none drifts.
The effect thresholds are the usual conventions where one exists (PSI) and otherwise the size of
change that would matter for this model (see each field).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DriftThresholds(BaseModel):
    """The thresholds and settings of the drift measures; the caller passes one to
    `analysis.drift.measures.build_drift_report` (no function carries its own copy)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alpha: float = Field(
        default=0.01,
        gt=0.0,
        lt=1.0,
        description="significance level of every test (z, chi-square, Kolmogorov-Smirnov); the "
        "intervals are at 1 - alpha. 0.01 rather than 0.05: five measures are tested at once, "
        "and a false alarm costs a retraining",
    )
    label_diff: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="label balance: absolute difference in the share of positive reviews "
        "(0.50 -> 0.55 moves the class prior the model's bias was fitted to by 0.2 in log-odds)",
    )
    psi: float = Field(
        default=0.2,
        ge=0.0,
        description="population stability index of the rating and length distributions; the "
        "credit-scoring convention: < 0.1 stable, 0.1-0.2 moderate, >= 0.2 significant",
    )
    psi_eps: float = Field(
        default=1e-4,
        gt=0.0,
        lt=0.1,
        description="share given to an empty bin in PSI, so ln(p_cur / p_ref) stays finite",
    )
    length_bins: int = Field(
        default=10,
        ge=2,
        le=100,
        description="quantile bins of the reference lengths for the length PSI (deciles: the "
        "PSI threshold above is calibrated on about ten bins; more bins inflate PSI)",
    )
    oov_diff: float = Field(
        default=0.02,
        ge=0.0,
        le=1.0,
        description="out-of-vocabulary rate: absolute change in the mean per-review share of "
        "tokens the champion's vocabulary lacks. Measured on IMDB with a vocabulary built from "
        "train: 0.021 on train and 0.027 on test at 20,000 words (`tuned`), 0.048 and 0.052 at "
        "10,000 (`seed`); a rise of 0.02 is the model losing about as many words again",
    )
    accuracy_drop: float = Field(
        default=0.02,
        ge=0.0,
        le=1.0,
        description="champion accuracy: drop from the test split to the new reviews, in "
        "accuracy points (0.02: four times the seed-to-seed spread of a retrained CNN, 0.8943 vs "
        "0.8893 in the README)",
    )
    n_boot: int = Field(
        default=1000, ge=1, description="bootstrap resamples of the mean-loss interval"
    )


DEFAULT_DRIFT_THRESHOLDS = DriftThresholds()
