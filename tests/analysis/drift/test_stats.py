"""The drift statistics against answers known in advance (hand-computed or by construction)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.drift import stats


def test_psi_of_identical_distributions_is_zero() -> None:
    counts = [10, 0, 30, 60]  # an empty bin too: eps on both sides must cancel
    assert stats.psi(counts, counts) == 0.0
    assert stats.psi(counts, np.asarray(counts) * 7) == pytest.approx(0.0, abs=1e-15)


def test_psi_hand_computed() -> None:
    # shares 0.5/0.5 vs 0.7/0.3: 0.2 ln(0.7/0.5) + (-0.2) ln(0.3/0.5) = 0.2 ln(7/3)
    assert stats.psi([50, 50], [70, 30]) == pytest.approx(0.2 * math.log(7 / 3), rel=1e-12)
    assert stats.psi([50, 50], [70, 30]) == pytest.approx(0.16946, abs=1e-5)
    # an empty current bin takes share eps: (eps - 0.5) ln(eps / 0.5) + (1 - 0.5) ln(1 / 0.5)
    eps = 1e-4
    expected = (eps - 0.5) * math.log(eps / 0.5) + 0.5 * math.log(2.0)
    assert stats.psi([1, 1], [0, 4], eps) == pytest.approx(expected, rel=1e-12)


def test_psi_is_symmetric_and_positive() -> None:
    a, b = [5, 20, 75], [30, 30, 40]
    assert stats.psi(a, b) == pytest.approx(stats.psi(b, a))
    assert (stats.psi_terms(a, b) >= 0).all()
    with pytest.raises(ValueError, match="shape"):
        stats.psi([1, 2], [1, 2, 3])


def test_quantile_bins_cover_everything() -> None:
    ref = np.arange(100)
    cuts = stats.quantile_cuts(ref, 10)
    assert len(cuts) == 9
    counts = stats.bin_counts(ref, cuts)
    assert counts.sum() == 100 and counts.min() >= 9  # ~10 per decile
    outside = stats.bin_counts([-5, 1000], cuts)  # beyond the reference range: the end bins
    assert outside[0] == 1 and outside[-1] == 1
    # ties collapse the cuts; a constant reference is one cut, two bins
    assert len(stats.quantile_cuts([3, 3, 3, 3], 10)) == 1
    assert stats.quantile_cuts([], 10).size == 0


def test_ks_detects_a_planted_length_shift_and_not_a_same_distribution_sample() -> None:
    rng = np.random.default_rng(0)
    ref = rng.lognormal(5.0, 0.7, 2000).round()
    same = rng.lognormal(5.0, 0.7, 2000).round()
    longer = (rng.lognormal(5.0, 0.7, 2000) * 1.5).round()
    assert stats.ks_test(ref, longer).p_value < 1e-10
    assert stats.ks_test(ref, same).p_value > 0.01
    assert stats.ks_test(ref, []).p_value == 1.0


def test_label_balance_test_flags_70_30_at_1000_and_not_51_49_at_200() -> None:
    flagged = stats.two_proportion_ztest(500, 1000, 700, 1000)
    assert flagged.p_value < 1e-10 and flagged.statistic > 0
    quiet = stats.two_proportion_ztest(100, 200, 102, 200)
    assert quiet.p_value > 0.5
    assert stats.two_proportion_ztest(0, 10, 0, 20).p_value == 1.0  # both all-negative
    assert stats.two_proportion_ztest(0, 0, 3, 5).p_value == 1.0


def test_chi_square_matches_z_squared_on_two_categories() -> None:
    # a 2x2 chi-square (no continuity correction) is the square of the pooled z
    z = stats.two_proportion_ztest(500, 1000, 700, 1000)
    chi = stats.chi_square([500, 500], [300, 700])
    assert chi.statistic == pytest.approx(z.statistic**2)
    assert chi.p_value == pytest.approx(z.p_value)
    # categories empty on both sides are dropped; one category left: no difference
    assert stats.chi_square([5, 0, 5], [5, 0, 5]).p_value == pytest.approx(1.0)
    assert stats.chi_square([0, 4], [0, 9]) == stats.TestResult(0.0, 1.0)


def test_wilson_and_newcombe_intervals() -> None:
    low, high = stats.wilson_interval(90, 100, level=0.95)
    assert low == pytest.approx(0.8256, abs=1e-3) and high == pytest.approx(0.9448, abs=1e-3)
    assert stats.wilson_interval(0, 0) == (0.0, 1.0)
    assert stats.wilson_interval(100, 100)[1] == 1.0
    # Newcombe (1998) example 1 (method 10): 56/70 - 48/80 = 0.2, 95% CI 0.0524 to 0.3339
    low, high = stats.newcombe_interval(56, 70, 48, 80, level=0.95)
    assert low == pytest.approx(0.0524, abs=1e-4) and high == pytest.approx(0.3339, abs=1e-4)


def test_bootstrap_interval_holds_the_true_difference() -> None:
    rng = np.random.default_rng(1)
    ref, cur = rng.normal(0.3, 0.2, 1500), rng.normal(0.5, 0.2, 1500)
    low, high = stats.bootstrap_mean_diff_ci(ref, cur, 500, np.random.default_rng(2))
    assert low < 0.2 < high and high - low < 0.1
    assert stats.bootstrap_mean_diff_ci([], cur, 10, rng) == (0.0, 0.0)
