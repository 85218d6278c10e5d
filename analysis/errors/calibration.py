"""Calibration: do the model's probabilities mean what they say, raw and after temperature scaling?

Measured on P(positive), the probability the model serves (not the top-label confidence): in a
binary task it is the whole prediction, and its reliability diagram tells over-confidence toward
"positive" apart from over-confidence toward "negative".

- ECE (expected calibration error) = sum over bins of (bin share) x |mean P(positive) - share of
  positive labels|. Bins are EQUAL-MASS by default (`DEFAULT_BINNING`, 15 of them; the "adaptive"
  ECE of Nixon et al., 2019): the reviews ranked by P(positive) and cut into 15 runs of equal
  size, identical probabilities kept in one bin (`bin_index`). A trained model puts most reviews
  near 0 or 1, so 15 equal-width bins leave a few reviews in each middle bin (noisy gaps) and pool
  most of them in the two end bins, where the over-confident mistakes hide; equal-mass bins give
  every bin real support and resolve the extremes. Equal-width bins (15 slices of [0, 1],
  [left, right), the last closed: the bin rule of `common.segments`) are there for comparison
  with the literature. Either way the estimate is biased upward by noise in small bins, so small
  segments read worse than they are: the worst-segment ranking skips those under
  `Thresholds.min_support`.
- Brier score = mean (P(positive) - label)^2.
- The temperature T comes from the logged model (fitted on the validation split at training time,
  `models.calibration`, the one definition of the fit and of applying T); "calibrated" means
  sigmoid(logit / T), "raw" the network's own sigmoid(logit).
- Per segment: ECE and Brier in the segments of `common.segments.feature_segments` (quantile bins
  of each review feature, as the insights cut them), except the star rating, which fixes the label
  (`CALIBRATION_FEATURES`).

`calibration_report` returns the numbers (`CalibrationReport`); `plot_reliability`,
`calibration_markdown` and `CalibrationReport.table` display them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis.common.render import DPI, fmt_number, fmt_pct
from analysis.common.segments import SEGMENT_FEATURES, assign_bins, feature_segments
from analysis.common.thresholds import DEFAULT_THRESHOLDS, Thresholds
from analysis.errors.insights import QUANTILE_BINS
from models.calibration import apply_temperature_to_logits

Binning = Literal["equal_mass", "equal_width"]
DEFAULT_BINS = 15
DEFAULT_BINNING: Binning = "equal_mass"
RAW, CALIBRATED = "raw", "calibrated"
RELIABILITY_COLUMNS = (
    "probabilities",
    "bin",
    "count",
    "p_min",
    "p_max",
    "mean_predicted",
    "observed",
    "gap",
)
SEGMENT_COLUMNS = (
    "segment",
    "feature",
    "description",
    "count",
    "share",
    "ece",
    "brier",
    "ece_calibrated",
    "brier_calibrated",
)
# Segments are cut by every review feature but the star rating: IMDB labels ARE the rating
# (<= 4 negative, >= 7 positive), so within a rating segment every label is the same and "ECE"
# there only measures how far P(positive) is from 0 or 1 (on full IMDB it made "rating 4/10" the
# worst-calibrated segment, at 0.25, for a model whose overall ECE was 0.016).
CALIBRATION_FEATURES = tuple(name for name in SEGMENT_FEATURES if name != "rating")


def bin_index(
    prob: np.ndarray, n_bins: int = DEFAULT_BINS, binning: Binning = DEFAULT_BINNING
) -> np.ndarray:
    """The bin of each probability, numbered 0, 1, ... in increasing P(positive).

    Equal-width: n_bins slices of [0, 1] under the bin rule of `common.segments` ([left, right),
    the last closed). Equal-mass: the reviews ranked by P(positive) and cut into n_bins runs of
    n / n_bins, each tie group going whole to the bin of its first member: saturated predictions
    (many reviews at exactly 1.0) stay in one bin, and distinct values are never pooled across a
    whole bin's worth of reviews, as quantile edges collapsing on ties would."""
    p = np.asarray(prob, dtype=np.float64)
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    if binning == "equal_width":
        return assign_bins(p, np.linspace(0.0, 1.0, n_bins + 1))
    if binning != "equal_mass":
        raise ValueError(f"binning must be 'equal_mass' or 'equal_width', got {binning!r}")
    if len(p) == 0:
        return np.zeros(0, dtype=np.int64)
    first_rank = np.searchsorted(np.sort(p), p, side="left")  # ties share their first rank
    _, which = np.unique(first_rank * n_bins // len(p), return_inverse=True)
    return which.astype(np.int64)


def reliability_table(
    prob: np.ndarray,
    labels: np.ndarray,
    n_bins: int = DEFAULT_BINS,
    binning: Binning = DEFAULT_BINNING,
) -> pd.DataFrame:
    """Per non-empty bin: count, range and mean of P(positive), observed share of positives, and
    gap = observed - mean predicted (negative: the model says "positive" too readily)."""
    p = np.asarray(prob, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    frame = pd.DataFrame({"bin": bin_index(p, n_bins, binning), "p": p, "y": y})
    grouped = frame[frame["bin"] >= 0].groupby("bin")
    table = pd.DataFrame(
        {
            "count": grouped.size(),
            "p_min": grouped["p"].min(),
            "p_max": grouped["p"].max(),
            "mean_predicted": grouped["p"].mean(),
            "observed": grouped["y"].mean(),
        }
    ).reset_index()
    table["gap"] = table["observed"] - table["mean_predicted"]
    return table


def expected_calibration_error(
    prob: np.ndarray,
    labels: np.ndarray,
    n_bins: int = DEFAULT_BINS,
    binning: Binning = DEFAULT_BINNING,
) -> float:
    """ECE of P(positive): the count-weighted mean |gap| of the reliability bins; NaN if empty."""
    table = reliability_table(prob, labels, n_bins, binning)
    if table.empty:
        return math.nan
    return float((table["count"] * table["gap"].abs()).sum() / table["count"].sum())


def brier_score(prob: np.ndarray, labels: np.ndarray) -> float:
    """Mean squared difference between P(positive) and the label (NaN: no reviews)."""
    p = np.asarray(prob, dtype=np.float64)
    return float(np.mean((p - np.asarray(labels, dtype=np.float64)) ** 2)) if len(p) else math.nan


@dataclass(frozen=True)
class CalibrationReport:
    """Calibration of one model on one split, raw and after its temperature."""

    temperature: float
    n_reviews: int
    n_bins: int
    binning: Binning
    ece: float
    brier: float
    ece_calibrated: float
    brier_calibrated: float
    reliability: pd.DataFrame  # RELIABILITY_COLUMNS, raw and calibrated bins
    segments: pd.DataFrame  # SEGMENT_COLUMNS, worst calibrated ECE first
    min_support: float  # segments smaller than this share are not ranked in `worst_segment`

    def metrics(self, split: str = "test") -> dict[str, float]:
        """`<split>_ece`, `<split>_brier`, their `_calibrated` twins and `temperature`."""
        return {
            f"{split}_ece": self.ece,
            f"{split}_brier": self.brier,
            f"{split}_ece_calibrated": self.ece_calibrated,
            f"{split}_brier_calibrated": self.brier_calibrated,
            "temperature": self.temperature,
        }

    def worst_segment(self) -> pd.Series | None:
        """The segment with the highest calibrated ECE among those of at least `min_support`."""
        eligible = self.segments[self.segments["share"] >= self.min_support]
        return None if eligible.empty else eligible.iloc[0]

    def table(self) -> pd.DataFrame:
        """calibration.csv: the reliability bins (`part` = reliability) then the segments."""
        bins = self.reliability.assign(part="reliability")
        segments = self.segments.assign(part="segment")
        return pd.concat([bins, segments], ignore_index=True)[
            ["part", *RELIABILITY_COLUMNS, *[c for c in SEGMENT_COLUMNS if c != "count"]]
        ]


def _segment_rows(
    features: pd.DataFrame,
    raw: np.ndarray,
    calibrated: np.ndarray,
    labels: np.ndarray,
    n_bins: int,
    binning: Binning,
    names: Sequence[str],
) -> pd.DataFrame:
    rows = []
    n = len(labels)
    for name in names:
        if name not in features.columns:
            continue
        values = features[name].to_numpy(dtype=float)
        for segment in feature_segments(values, name, QUANTILE_BINS, rule="quantile"):
            m = segment.mask
            rows.append(
                {
                    "segment": segment.name,
                    "feature": name,
                    "description": segment.description,
                    "count": int(m.sum()),
                    "share": float(m.sum()) / n,
                    "ece": expected_calibration_error(raw[m], labels[m], n_bins, binning),
                    "brier": brier_score(raw[m], labels[m]),
                    "ece_calibrated": expected_calibration_error(
                        calibrated[m], labels[m], n_bins, binning
                    ),
                    "brier_calibrated": brier_score(calibrated[m], labels[m]),
                }
            )
    frame = pd.DataFrame(rows, columns=list(SEGMENT_COLUMNS))
    return frame.sort_values("ece_calibrated", ascending=False, kind="stable").reset_index(
        drop=True
    )


def calibration_report(
    logits: np.ndarray,
    labels: np.ndarray,
    temperature: float,
    features: pd.DataFrame | None = None,
    *,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    n_bins: int = DEFAULT_BINS,
    binning: Binning = DEFAULT_BINNING,
    segment_features: Sequence[str] = CALIBRATION_FEATURES,
) -> CalibrationReport:
    """Calibration of binary `logits` (z1 - z0) against `labels`, raw and divided by `temperature`.

    `features` (aligned with the logits; e.g. the per-review table) gives the per-segment rows,
    one per `common.segments.feature_segments` segment of each of `segment_features` it holds.
    Probability inputs: pass `models.calibration.logits_from_probs(p)`.
    """
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if len(z) != len(y) or (features is not None and len(features) != len(z)):
        raise ValueError("logits, labels and features must have the same length")
    raw = apply_temperature_to_logits(z, 1.0)
    calibrated = apply_temperature_to_logits(z, temperature)
    reliability = pd.concat(
        [
            reliability_table(p, y, n_bins, binning).assign(probabilities=kind)
            for kind, p in ((RAW, raw), (CALIBRATED, calibrated))
        ],
        ignore_index=True,
    )[list(RELIABILITY_COLUMNS)]
    segments = _segment_rows(
        features if features is not None else pd.DataFrame(index=range(len(z))),
        raw,
        calibrated,
        y,
        n_bins,
        binning,
        segment_features,
    )
    return CalibrationReport(
        temperature=float(temperature),
        n_reviews=len(z),
        n_bins=n_bins,
        binning=binning,
        ece=expected_calibration_error(raw, y, n_bins, binning),
        brier=brier_score(raw, y),
        ece_calibrated=expected_calibration_error(calibrated, y, n_bins, binning),
        brier_calibrated=brier_score(calibrated, y),
        reliability=reliability,
        segments=segments,
        min_support=thresholds.min_support,
    )


def plot_reliability(report: CalibrationReport, path: Path) -> Path:
    """calibration.png: observed share of positives against mean P(positive) per bin, raw and
    calibrated, on the diagonal of perfect calibration; below, the reviews in each bin."""
    fig = Figure(figsize=(6.4, 7.2), dpi=DPI)
    top, bottom = fig.subplots(2, 1, height_ratios=[3, 1], sharex=True)
    top.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfect calibration")
    styles = {
        RAW: (
            "#b42318",
            "o",
            f"raw: ECE {fmt_number(report.ece)}, Brier {fmt_number(report.brier)}",
        ),
        CALIBRATED: (
            "#1f6feb",
            "s",
            f"T = {report.temperature:.2f}: ECE {fmt_number(report.ece_calibrated)}, "
            f"Brier {fmt_number(report.brier_calibrated)}",
        ),
    }
    width = 0.8 / (2 * report.n_bins)
    for offset, (kind, (color, marker, label)) in zip((-0.5, 0.5), styles.items(), strict=True):
        bins = report.reliability[report.reliability["probabilities"] == kind]
        top.plot(bins["mean_predicted"], bins["observed"], marker=marker, color=color, label=label)
        bottom.bar(
            bins["mean_predicted"] + offset * width, bins["count"], width, color=color, alpha=0.7
        )
    top.set(xlim=(0, 1), ylim=(0, 1), ylabel="observed share of positive reviews")
    what = "equal-mass" if report.binning == "equal_mass" else "equal-width"
    top.set_title(
        f"Reliability of P(positive), {report.n_bins} {what} bins, {report.n_reviews:,} reviews",
        fontsize=10,
    )
    top.legend(loc="upper left", fontsize=8)
    bottom.set(xlabel="mean predicted P(positive) in the bin", ylabel="reviews per bin")
    fig.tight_layout()
    fig.savefig(path)
    return path


def calibration_markdown(report: CalibrationReport) -> str:
    """The "Calibration" section of insights.md: ECE and Brier before/after T, the worst segment."""
    what = "equal-mass" if report.binning == "equal_mass" else "equal-width"
    lines = ["", "## Calibration", ""]
    if report.temperature == 1.0:
        lines.append(
            "The model carries no fitted temperature (T = 1: logged before calibration, or the "
            "fit was not possible), so the served probabilities are the raw ones."
        )
    else:
        lines.append(
            f"Served probabilities are temperature-scaled: logits divided by T = "
            f"{report.temperature:.3f}, fitted on the validation split at training time "
            f"({'softer' if report.temperature > 1 else 'sharper'} than the raw network)."
        )
    lines += [
        "",
        f"On these {report.n_reviews:,} reviews ({report.n_bins} {what} bins of P(positive); "
        "calibration.png, calibration.csv):",
        "",
        "| | raw | calibrated |",
        "|---|---:|---:|",
        f"| ECE | {fmt_number(report.ece)} | {fmt_number(report.ece_calibrated)} |",
        f"| Brier score | {fmt_number(report.brier)} | {fmt_number(report.brier_calibrated)} |",
    ]
    if report.ece_calibrated > report.ece:
        # Seen on full IMDB (dense, T = 1.10): the validation split's fit need not carry over.
        lines += [
            "",
            "On these reviews the temperature makes the ECE worse: the miscalibration it corrects "
            "on the validation split is not the one seen here.",
        ]
    worst = report.worst_segment()
    if worst is not None:
        description = str(worst["description"])
        lines += [
            "",
            f"Worst-calibrated segment (of those with at least {fmt_pct(report.min_support)} of "
            f"the reviews): {description[:1].lower()}{description[1:]} "
            f"({worst['count']:,} reviews), ECE {fmt_number(worst['ece_calibrated'])} calibrated "
            f"(raw {fmt_number(worst['ece'])}).",
        ]
    return "\n".join(lines) + "\n"
