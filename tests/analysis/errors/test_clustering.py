from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.errors.clustering import (
    choose_clusters,
    class_tfidf_top_words,
    cluster_table,
    plot_clusters,
)


def blobs(n_per: int = 60, centres: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(centres), n_per)
    latent = rng.normal(scale=0.3, size=(len(truth), 5)) + np.eye(centres, 5)[truth] * 6
    return latent, truth


def test_planted_blobs_are_recovered() -> None:
    latent, truth = blobs()
    labels, scores = choose_clusters(latent)
    assert max(scores, key=scores.get) == 3
    # the partition equals the truth up to renaming
    assert pd.crosstab(labels, truth).gt(0).sum(axis=1).eq(1).all()
    assert len(np.unique(labels)) == 3


@pytest.mark.parametrize("n", [0, 1, 2])
def test_fewer_samples_than_clusters_give_one_cluster(
    n: int, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        labels, scores = choose_clusters(np.ones((n, 4)) * np.arange(n)[:, None])
    assert labels.tolist() == [0] * n and scores == {}
    assert "single cluster" in caplog.text


def test_identical_vectors_give_one_cluster() -> None:
    labels, _ = choose_clusters(np.ones((50, 3)))
    assert set(labels) == {0}


def test_ctfidf_finds_the_planted_words() -> None:
    docs = ["the film was superb and superb"] * 5 + ["the film was dreadful dreadful plot"] * 5
    docs += [["zorblax", "<oov>", "film"]] * 0  # token lists are accepted too (none here)
    top = class_tfidf_top_words(docs, np.array([0] * 5 + [1] * 5), top_n=2)
    assert top[0][0] == "superb" and top[1][0] == "dreadful"
    assert "the" not in top[0] + top[1]  # stop words never win
    tokens = [["<oov>", "<oov>", "film", "<pad>"]] * 4 + [["great", "film"]] * 4
    top = class_tfidf_top_words(tokens, np.array([0] * 4 + [1] * 4), top_n=1)
    assert top == {0: ["<oov>"], 1: ["great"]}
    assert class_tfidf_top_words(["", "the"], np.array([0, 1])) == {0: [], 1: []}


def test_cluster_table_and_plot(tmp_path: Path) -> None:
    table = pd.DataFrame(
        {
            "label": [1, 1, 0, 0],
            "pred": [1, 0, 0, 0],
            "loss": [0.1, 2.0, 0.2, 0.4],
            "oov_count": [0, 2, 6, 8],
            "length": [10, 20, 30, 50],
            "polarity": [0.5, 0.1, -0.2, -0.4],
            "x": [0.0, 1.0, 5.0, 6.0],
            "y": [0.0, 1.0, 5.0, 6.0],
            "cluster": [0, 0, 1, 1],
        }
    )
    docs = ["great great fun", "great fun", "zorblax zorblax plot", "zorblax plot"] * 1
    clusters = cluster_table(table, docs, table["cluster"].to_numpy())
    first, second = clusters.to_dict("records")
    assert (first["size"], first["accuracy"], first["errors"]) == (2, 0.5, 1)
    assert first["mean_loss"] == pytest.approx(1.05)
    assert (second["mean_oov_count"], second["mean_length"]) == (7.0, 40.0)
    assert second["mean_polarity"] == pytest.approx(-0.3)
    assert first["top_words"].split()[0] == "great" and second["top_words"].split()[0] == "zorblax"
    png = plot_clusters(table, tmp_path / "c.png", clusters)
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 20_000
