from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.common.thresholds import Thresholds
from analysis.errors.dashboard import (
    BIN_COLUMNS,
    metadata_loss_table,
    plot_metadata_loss,
    spearman,
    write_metadata_loss_csv,
)


def tiny_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "length": [0, 1, 2, 3, 4],
            "constant": [7, 7, 7, 7, 7],
            "loss": [1.0, 2.0, 3.0, 4.0, 5.0],
            "label": [1, 1, 1, 1, 1],
            "pred": [1, 0, 1, 1, 0],
        }
    )


def ramp_table(n: int = 20) -> pd.DataFrame:
    """20 distinct lengths 0..19, loss = length / 10, every third review wrong."""
    length = np.arange(n)
    return pd.DataFrame(
        {
            "length": length,
            "loss": length / 10,
            "label": np.ones(n, dtype=int),
            "pred": (length % 3 != 0).astype(int),
        }
    )


def test_bins_match_hand_computation() -> None:
    bins = metadata_loss_table(ramp_table(), features=["length"], bins=2)
    # quantile bins: [0, 10) holds 0..9 and [10, 19] holds 10..19 (last bin closed)
    assert bins["bin_left"].tolist() == [0.0, 10.0]
    assert bins["bin_right"].tolist() == [10.0, 19.0]
    assert bins["count"].tolist() == [10, 10]
    assert bins["median"].tolist() == [4.5, 14.5]
    assert bins["mean_loss"].tolist() == pytest.approx([0.45, 1.45])
    assert bins["accuracy"].tolist() == pytest.approx([0.6, 0.7])  # 0, 3, 6, 9 / 12, 15, 18 wrong
    assert bins["spearman_rho"].tolist() == pytest.approx([1.0, 1.0])
    # the interval holds the mean and lies inside the bin's range of losses
    assert (bins["loss_low"] < bins["mean_loss"]).all()
    assert (bins["mean_loss"] < bins["loss_high"]).all()
    assert (bins["loss_low"] > [0.0, 1.0]).all() and (bins["loss_high"] < [0.9, 1.9]).all()
    equal = metadata_loss_table(ramp_table(), ["length"], bins=4, rule="equal_width")
    assert equal["bin_left"].tolist() == [0.0, 4.75, 9.5, 14.25]


def test_a_feature_with_few_values_is_cut_per_value_and_a_constant_one_writes_empty_cells(
    tmp_path: Path,
) -> None:
    table = tiny_table().assign(length=[0, 0, 0, 0, 10])
    bins = metadata_loss_table(table, features=["length", "constant", "missing"], bins=5)
    assert set(bins["feature"]) == {"length", "constant"}  # a missing column is skipped
    length = bins[bins["feature"] == "length"]
    assert length["count"].tolist() == [4, 1]
    assert length["bin_left"].tolist() == length["bin_right"].tolist() == [0.0, 10.0]
    # one review: nothing to resample, the interval is the point
    assert length[["loss_low", "loss_high"]].iloc[1].tolist() == [5.0, 5.0]
    constant = bins[bins["feature"] == "constant"]
    assert constant["count"].tolist() == [5]
    assert math.isnan(constant["spearman_rho"].iloc[0])
    path = write_metadata_loss_csv(bins, tmp_path / "m.csv")
    text = path.read_text()
    assert "nan" not in text.lower()
    assert text.splitlines()[0] == ",".join(BIN_COLUMNS)
    last = text.splitlines()[-1].split(",")
    assert last[:7] == ["constant", "0", "7", "7", "5", "7", "3"] and last[-3:] == ["0.6", "", ""]
    assert 1 <= float(last[7]) < 3 < float(last[8]) <= 5  # loss_low, loss_high
    assert pd.read_csv(path)["spearman_rho"].isna().sum() == 1


def long_tail_table(n: int = 4000, seed: int = 0) -> pd.DataFrame:
    """Lengths with a long tail; the longest 10% lose 3x; 40 reviews rated 1 with a few huge
    losses (a tail value whose mean is noise)."""
    rng = np.random.default_rng(seed)
    length = rng.lognormal(5, 1, n).round() + 1
    loss = rng.exponential(0.3, n) * np.where(length > np.quantile(length, 0.9), 3.0, 1.0)
    rating = rng.choice([2, 3, 4, 7, 8, 9], n).astype(float)
    rating[:40] = 1
    loss[:3] = 12.0  # three confidently wrong among the 40
    return pd.DataFrame(
        {
            "length": length,
            "rating": rating,
            "loss": loss,
            "label": rng.integers(0, 2, n),
            "pred": rng.integers(0, 2, n),
        }
    )


def test_quantile_bins_hold_equal_counts_and_intervals_separate_signal_from_noise() -> None:
    table = long_tail_table()
    overall = table["loss"].mean()
    bins = metadata_loss_table(
        table, ["length", "rating"], bins=10, thresholds=Thresholds(n_boot=300)
    )
    length = bins[bins["feature"] == "length"]
    assert len(length) == 10 and length["count"].between(360, 440).all()
    # the planted top decile clears the overall mean at its lower bound; no other bin does
    assert length["loss_low"].iloc[-1] > overall
    assert (length["loss_low"].iloc[:-1] < overall).all()
    # the 40-review rating tail: a high mean, but an interval wider than any length bin's
    rating = bins[bins["feature"] == "rating"].set_index("median")
    width = rating["loss_high"] - rating["loss_low"]
    assert rating.at[1.0, "mean_loss"] > 2 * overall and rating.at[1.0, "loss_low"] < overall
    assert width[1.0] > 5 * (length["loss_high"] - length["loss_low"]).max()


def test_spearman_sign_on_planted_relations() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 100, 300)
    loss = np.exp(-x / 30) + rng.normal(0, 0.05, 300)  # loss falls as x grows
    rho, p = spearman(x, loss)
    assert rho < -0.8 and p < 1e-6
    assert spearman(x, -loss)[0] > 0.8
    assert all(math.isnan(v) for v in spearman(np.ones(10), loss[:10]))
    assert all(math.isnan(v) for v in spearman(x[:2], loss[:2]))


def test_plot_metadata_loss_writes_a_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 120
    table = pd.DataFrame(
        {
            "length": rng.integers(5, 500, n),
            "oov_count": rng.integers(0, 9, n),
            "subjectivity": rng.uniform(0, 1, n),
            "confidence": rng.uniform(0, 1, n),
            "polarity": np.zeros(n),  # constant: undefined rho must not break the picture
            "rating": rng.integers(1, 11, n),
            "loss": rng.exponential(0.4, n),
            "label": rng.integers(0, 2, n),
            "pred": rng.integers(0, 2, n),
        }
    )
    path = plot_metadata_loss(table, tmp_path / "m.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 20_000
    path = plot_metadata_loss(long_tail_table(), tmp_path / "tail.png", ["length", "rating"])
    assert path.stat().st_size > 20_000  # a long tail (log axis) and per-value bars
