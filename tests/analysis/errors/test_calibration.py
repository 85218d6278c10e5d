"""Calibration measures with planted answers: ECE, Brier, the reliability table, per segment."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.common.thresholds import Thresholds
from analysis.errors.calibration import (
    CalibrationReport,
    brier_score,
    calibration_markdown,
    calibration_report,
    expected_calibration_error,
    plot_reliability,
    reliability_table,
)
from models.calibration import fit_temperature, logits_from_probs, sigmoid


def grouped(groups: list[tuple[float, int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """(probability, reviews, positives) groups -> probabilities and labels, shuffled."""
    p = np.concatenate([np.full(n, prob) for prob, n, _ in groups])
    y = np.concatenate([np.r_[np.ones(k), np.zeros(n - k)] for _, n, k in groups])
    order = np.random.default_rng(0).permutation(len(p))
    return p[order], y[order].astype(int)


BINNINGS = ("equal_mass", "equal_width")


@pytest.mark.parametrize("binning", BINNINGS)
def test_ece_of_calibrated_probabilities_is_zero(binning: str):
    # Each predicted value comes true exactly that often: a perfectly calibrated model.
    p, y = grouped([(0.1, 100, 10), (0.3, 100, 30), (0.5, 100, 50), (0.7, 100, 70), (0.9, 100, 90)])
    assert expected_calibration_error(p, y, binning=binning) == pytest.approx(0.0, abs=1e-12)


def test_ece_of_sampled_calibrated_probabilities_is_small():
    rng = np.random.default_rng(1)
    p = rng.random(20_000)
    y = (rng.random(20_000) < p).astype(int)
    assert expected_calibration_error(p, y) < 0.02
    assert expected_calibration_error(p, 1 - y) > 0.4  # the same probabilities, labels flipped


@pytest.mark.parametrize("binning", BINNINGS)
def test_ece_of_a_known_miscalibration(binning: str):
    # 300 reviews at 0.9 of which 240 positive (gap -0.1), 100 at 0.4 of which 60 (gap +0.2):
    # ECE = 300/400 x 0.1 + 100/400 x 0.2 = 0.125.
    p, y = grouped([(0.9, 300, 240), (0.4, 100, 60)])
    assert expected_calibration_error(p, y, binning=binning) == pytest.approx(0.125)
    # Opposite gaps must not cancel: 0.2 -> 30% positive, 0.8 -> 70%: ECE 0.1, not 0.
    p, y = grouped([(0.2, 500, 150), (0.8, 500, 350)])
    assert expected_calibration_error(p, y, binning=binning) == pytest.approx(0.1)


def test_reliability_table_per_bin():
    p, y = grouped([(0.9, 300, 240), (0.4, 100, 60)])
    table = reliability_table(p, y)
    assert table["count"].tolist() == [100, 300]
    np.testing.assert_allclose(table["mean_predicted"], [0.4, 0.9])
    np.testing.assert_allclose(table["observed"], [0.6, 0.8])
    np.testing.assert_allclose(table["gap"], [0.2, -0.1])
    # Equal-mass bins hold similar numbers of reviews; equal-width ones follow the values.
    p = np.random.default_rng(2).beta(0.3, 0.3, 3_000)
    mass = reliability_table(p, p > 0.5, n_bins=15)
    assert len(mass) == 15 and mass["count"].between(150, 250).all()
    width = reliability_table(p, p > 0.5, n_bins=15, binning="equal_width")
    assert width["count"].max() > 3 * width["count"].min()
    with pytest.raises(ValueError, match="binning"):
        reliability_table(p, p > 0.5, binning="nope")  # type: ignore[arg-type]


def test_brier_score_known_value():
    p, y = np.array([0.9, 0.2, 0.6]), np.array([1, 0, 0])
    assert brier_score(p, y) == pytest.approx((0.01 + 0.04 + 0.36) / 3)
    assert brier_score(np.array([1.0, 0.0]), np.array([1, 0])) == 0.0
    assert np.isnan(brier_score(np.zeros(0), np.zeros(0)))


def overconfident(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True logits z, labels from sigmoid(z), and a model's logits 3 z (over-confident)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 2.0, n)
    return z, (rng.random(n) < sigmoid(z)).astype(int), 3.0 * z


def test_the_validation_temperature_calibrates_the_test_split():
    _, y_val, logits_val = overconfident(5_000, seed=3)
    _, y_test, logits_test = overconfident(5_000, seed=4)
    t = fit_temperature(logits_val, y_val)
    report = calibration_report(logits_test, y_test, t)
    assert report.temperature == pytest.approx(3.0, abs=0.25)
    assert report.ece > 0.1 and report.ece_calibrated < 0.03
    assert report.brier_calibrated < report.brier
    assert report.metrics("test") == {
        "test_ece": report.ece,
        "test_brier": report.brier,
        "test_ece_calibrated": report.ece_calibrated,
        "test_brier_calibrated": report.brier_calibrated,
        "temperature": report.temperature,
    }
    # The raw probabilities are the network's: from logits or from their probabilities alike.
    p = sigmoid(logits_test)
    assert report.ece == pytest.approx(expected_calibration_error(p, y_test))
    assert report.brier == pytest.approx(brier_score(p, y_test))
    from_probs = calibration_report(logits_from_probs(p), y_test, t)
    assert from_probs.ece_calibrated == pytest.approx(report.ece_calibrated, abs=1e-3)
    assert "makes the ECE worse" not in calibration_markdown(report)


def test_a_temperature_that_does_not_carry_over_is_called_out():
    true_logits, y, _ = overconfident(5_000, seed=7)  # this split is calibrated as it is
    report = calibration_report(true_logits, y, 3.0)
    assert report.ece < 0.03 < report.ece_calibrated
    assert "makes the ECE worse" in calibration_markdown(report)


def test_temperature_one_leaves_the_probabilities_as_they_are():
    _, y, logits = overconfident(2_000, seed=5)
    report = calibration_report(logits, y, 1.0)
    assert report.ece_calibrated == report.ece and report.brier_calibrated == report.brier
    raw, calibrated = (
        report.reliability[report.reliability["probabilities"] == kind].reset_index(drop=True)
        for kind in ("raw", "calibrated")
    )
    pd.testing.assert_frame_equal(
        raw.drop(columns="probabilities"), calibrated.drop(columns="probabilities")
    )
    assert "no fitted temperature" in calibration_markdown(report)


@pytest.fixture(scope="module")
def segmented() -> CalibrationReport:
    """Long reviews (length >= 600) are over-confident (logits x 4); short ones calibrated. The
    rating is the label (<= 4 negative, >= 7 positive), as in IMDB."""
    rng = np.random.default_rng(6)
    n = 6_000
    length = rng.integers(10, 1_000, n).astype(float)
    z = rng.normal(0.0, 1.5, n)
    y = (rng.random(n) < sigmoid(z)).astype(int)
    logits = np.where(length >= 600, 4.0 * z, z)
    rating = np.where(y == 1, rng.integers(7, 11, n), rng.integers(1, 5, n)).astype(float)
    polarity = rng.uniform(-1.0, 1.0, n)
    features = pd.DataFrame({"length": length, "rating": rating, "polarity": polarity})
    return calibration_report(logits, y, 1.0, features, thresholds=Thresholds(min_support=0.05))


def test_per_segment_calibration_finds_the_planted_segment(segmented: CalibrationReport):
    segments = segmented.segments
    # No rating segments: within one rating every label is the same, so ECE there is no
    # calibration (it was the spurious "worst segment" on full IMDB).
    assert set(segments["feature"]) == {"length", "polarity"}
    length = segments[segments["feature"] == "length"]
    assert len(length) == 5 and length["count"].sum() == 6_000  # quantile bins, every review
    worst = segmented.worst_segment()
    assert worst is not None and worst["segment"] in {"length bin 3", "length bin 4"}
    long_ = length[length["segment"].isin(["length bin 3", "length bin 4"])]
    short = length[length["segment"].isin(["length bin 0", "length bin 1"])]
    assert long_["ece"].min() > 2 * short["ece"].max()
    assert long_["brier"].min() > short["brier"].max()
    assert segments["ece_calibrated"].is_monotonic_decreasing  # worst first
    text = calibration_markdown(segmented)
    assert "## Calibration" in text and "Worst-calibrated segment" in text
    assert f"({int(worst['count']):,} reviews)" in text


def test_worst_segment_skips_segments_under_min_support(segmented: CalibrationReport):
    rigid = calibration_report(
        np.zeros(3), np.array([0, 1, 1]), 1.0, pd.DataFrame({"polarity": [-0.5, 0.0, 0.5]})
    )
    assert rigid.worst_segment() is not None  # every polarity value is a third of the reviews
    strict = replace(rigid, min_support=0.5)
    assert strict.worst_segment() is None
    assert "Worst-calibrated" not in calibration_markdown(strict)


def test_csv_table_and_reliability_figure(segmented: CalibrationReport, tmp_path: Path):
    table = segmented.table()
    assert set(table["part"]) == {"reliability", "segment"}
    bins = table[table["part"] == "reliability"]
    assert len(bins) == 2 * 15 and bins["count"].sum() == 2 * 6_000
    assert table.loc[table["part"] == "segment", "ece"].notna().all()
    path = plot_reliability(segmented, tmp_path / "calibration.png")
    assert path.read_bytes()[:4] == b"\x89PNG" and path.stat().st_size > 20_000


def test_misaligned_inputs_are_refused():
    with pytest.raises(ValueError, match="same length"):
        calibration_report(np.zeros(3), np.zeros(2), 1.0)
    with pytest.raises(ValueError, match="same length"):
        calibration_report(np.zeros(3), np.zeros(3), 1.0, pd.DataFrame({"length": [1.0]}))
