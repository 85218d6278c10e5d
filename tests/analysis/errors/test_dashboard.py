from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.errors.dashboard import (
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


def test_bins_match_hand_computation() -> None:
    bins = metadata_loss_table(tiny_table(), features=["length"], bins=2)
    # edges 0, 2, 4: [0, 2) holds 0 and 1; [2, 4] holds 2, 3 and 4 (last bin closed)
    assert bins["bin_left"].tolist() == [0.0, 2.0]
    assert bins["bin_right"].tolist() == [2.0, 4.0]
    assert bins["count"].tolist() == [2, 3]
    assert bins["mean_loss"].tolist() == pytest.approx([1.5, 4.0])
    assert bins["accuracy"].tolist() == pytest.approx([0.5, 2 / 3])
    assert bins["spearman_rho"].tolist() == pytest.approx([1.0, 1.0])


def test_empty_bin_and_constant_feature_write_empty_cells(tmp_path: Path) -> None:
    table = tiny_table().assign(length=[0, 0, 0, 0, 10])
    bins = metadata_loss_table(table, features=["length", "constant", "missing"], bins=5)
    assert set(bins["feature"]) == {"length", "constant"}  # a missing column is skipped
    length = bins[bins["feature"] == "length"]
    assert length["count"].tolist() == [4, 0, 0, 0, 1]
    assert math.isnan(length["mean_loss"].iloc[1])
    constant = bins[bins["feature"] == "constant"]
    assert constant["count"].tolist() == [5]
    assert math.isnan(constant["spearman_rho"].iloc[0])
    path = write_metadata_loss_csv(bins, tmp_path / "m.csv")
    text = path.read_text()
    assert "nan" not in text.lower()
    assert text.splitlines()[-1] == "constant,0,6.5,7.5,5,3,0.6,,"
    assert pd.read_csv(path)["spearman_rho"].isna().sum() == 1


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
