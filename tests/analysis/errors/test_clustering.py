from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.common.thresholds import Thresholds
from analysis.errors.clustering import (
    choose_clusters,
    class_tfidf_top_words,
    cluster_table,
    plot_clusters,
    remove_class_direction,
    what_sets_apart,
)
from analysis.errors.insights import find_weak_segments


def blobs(n_per: int = 60, centres: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(centres), n_per)
    latent = rng.normal(scale=0.3, size=(len(truth), 5)) + np.eye(centres, 5)[truth] * 6
    return latent, truth


def test_planted_blobs_are_recovered() -> None:
    latent, truth = blobs(centres=5)  # k is searched from 3: plant more than the smallest k
    clustering = choose_clusters(latent)
    labels, scores = clustering.labels, clustering.silhouette
    assert max(scores, key=scores.get) == 5
    # the partition equals the truth up to renaming
    assert pd.crosstab(labels, truth).gt(0).sum(axis=1).eq(1).all()
    assert len(np.unique(labels)) == 5


@pytest.mark.parametrize("n", [0, 1, 2])
def test_fewer_samples_than_clusters_give_one_cluster(
    n: int, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        clustering = choose_clusters(np.ones((n, 4)) * np.arange(n)[:, None])
    assert clustering.labels.tolist() == [0] * n and clustering.silhouette == {}
    assert "single cluster" in caplog.text


def test_identical_vectors_give_one_cluster() -> None:
    assert set(choose_clusters(np.ones((50, 3))).labels) == {0}
    # vectors that differ only along the predicted class are one group once it is removed
    predicted = np.repeat([0, 1], 25)
    latent = np.ones((50, 3)) + np.outer(predicted, [4.0, 0.0, 0.0])
    assert set(choose_clusters(latent, predicted=predicted).labels) == {0}


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
    assert first["predicted_positive_share"] == 0.5 and second["predicted_positive_share"] == 0.0
    overall = table["loss"].mean()  # 0.675
    assert first["loss_lift"] == pytest.approx(1.05 / overall)
    assert first["lift_low"] <= first["loss_lift"] <= first["lift_high"]
    # oov_count 1 vs 7: 6 pooled sds apart, more than length (3.2) or polarity (3.8)
    assert (second["apart_feature"], second["apart_in"], second["apart_rest"]) == (
        "oov_count",
        7,
        1,
    )
    assert second["apart_smd"] == pytest.approx(6.0)
    png = plot_clusters(table, tmp_path / "c.png", clusters)
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 20_000


# --------------------------------------------------------------------------------------------
# Subpopulations beyond the predicted class, planted
# --------------------------------------------------------------------------------------------

PLANTED = ("oov", "long", "topic")  # groups 1, 2, 3; group 0 is the ordinary reviews
TOPIC_WORDS = ["zombie", "gore", "undead"]


def planted_subpopulations(
    n: int = 1200, seed: int = 0
) -> tuple[pd.DataFrame, np.ndarray, list[str], np.ndarray]:
    """Per-review table, latent vectors, texts and the planted group of each review.

    The latent vectors are dominated by the predicted class (+-6 along one direction against unit
    noise: the split a k-means on raw vectors finds first) and hold three groups spread over both
    classes, each 4 units off along a direction of its own: out-of-vocabulary-heavy reviews (many
    made-up words, 3x the loss), very long reviews, and reviews about one topic (shared words).
    A random rotation keeps any direction from being a coordinate axis.
    """
    rng = np.random.default_rng(seed)
    group = rng.choice(4, size=n, p=[0.55, 0.15, 0.15, 0.15])
    pred = rng.integers(0, 2, n)
    latent = rng.normal(0.0, 1.0, (n, 12))
    latent[:, 0] += np.where(pred == 1, 6.0, -6.0)
    for g in (1, 2, 3):
        latent[group == g, g] += 4.0
    rotation, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    length = np.where(group == 2, rng.integers(700, 1200, n), rng.integers(60, 300, n))
    oov = np.where(group == 1, rng.integers(15, 40, n), rng.poisson(1.0, n))
    wrong = rng.random(n) < np.where(group == 1, 0.35, 0.08)
    label = np.where(wrong, 1 - pred, pred)
    table = pd.DataFrame(
        {
            "label": label,
            "pred": pred,
            "loss": rng.exponential(np.where(group == 1, 0.9, 0.25)),
            "length": length,
            "oov_count": oov,
            "oov_ratio": oov / length,
            "subjectivity": rng.uniform(0.3, 0.7, n),
            "polarity": np.where(pred == 1, 1, -1) * rng.uniform(0.05, 0.4, n),
            "rating": np.where(label == 1, rng.integers(7, 11, n), rng.integers(1, 5, n)),
        }
    )
    common = ["film", "plot", "acting", "scene", "story", "music", "ending", "cast", "camera"]
    docs = []
    for g in group:
        words = list(rng.choice(common, 12))
        words += TOPIC_WORDS if g == 3 else []
        words += [f"zq{rng.integers(10**6)}x" for _ in range(5)] if g == 1 else []
        docs.append(" ".join(words))
    return table, latent @ rotation, docs, group


def best_match(labels: np.ndarray, members: np.ndarray) -> tuple[int, float]:
    """The cluster of highest Jaccard overlap with `members`, and that overlap."""
    jaccard = {
        int(c): ((labels == c) & members).sum() / ((labels == c) | members).sum()
        for c in np.unique(labels)
    }
    best = max(jaccard, key=jaccard.__getitem__)
    return best, float(jaccard[best])


@pytest.fixture(scope="module")
def planted() -> dict[str, object]:
    table, latent, docs, group = planted_subpopulations()
    clustering = choose_clusters(latent, predicted=table["pred"].to_numpy())
    clusters = cluster_table(table, docs, clustering.labels, thresholds=Thresholds(n_boot=200))
    return {
        "table": table.assign(cluster=clustering.labels),
        "latent": latent,
        "group": group,
        "clustering": clustering,
        "clusters": clusters.set_index("cluster", drop=False),
    }


def test_each_planted_group_is_recovered_by_one_cluster(planted: dict) -> None:
    labels, group = planted["clustering"].labels, planted["group"]
    matched = {}
    for g, name in enumerate(PLANTED, start=1):
        matched[name], overlap = best_match(labels, group == g)
        assert overlap >= 0.7, f"{name}: best Jaccard {overlap:.2f}"
    assert len(set(matched.values())) == 3  # three different clusters
    clusters = planted["clusters"]
    oov, long, topic = (clusters.loc[matched[name]] for name in PLANTED)
    # what sets each apart is what was planted
    assert oov["apart_feature"] in {"oov_count", "oov_ratio"}
    assert oov["apart_in"] > 5 * oov["apart_rest"]
    assert long["apart_feature"] == "length" and long["apart_in"] > 3 * long["apart_rest"]
    assert set(TOPIC_WORDS) <= set(topic["top_words"].split()[:3])
    # the OOV-heavy cluster loses 3x: its lift interval clears 1.5 at the lower bound
    assert oov["lift_low"] > 1.5 and long["lift_high"] < 1.5


def test_clusters_are_not_the_predicted_classes(planted: dict) -> None:
    clusters = planted["clusters"]
    assert len(clusters) > 2
    assert clusters["predicted_positive_share"].between(0.35, 0.65).all()  # every one mixed
    assert clusters["apart_feature"].nunique() > 1
    assert 0.5 < planted["clustering"].class_variance < 0.9  # the class held most of the variance


def test_without_removing_the_class_direction_the_groups_are_split_by_class(
    planted: dict,
) -> None:
    """The planted answer is not reachable by the old clustering: what the projection buys."""
    labels = choose_clusters(planted["latent"]).labels  # no predicted classes given
    overlaps = [best_match(labels, planted["group"] == g)[1] for g in (1, 2, 3)]
    assert min(overlaps) < 0.7
    pure = pd.crosstab(labels, planted["table"]["pred"]).min(axis=1) == 0
    assert pure.all()  # every cluster is one predicted class


def test_the_class_direction_is_removed() -> None:
    rng = np.random.default_rng(1)
    predicted = rng.integers(0, 2, 400)
    latent = rng.normal(size=(400, 5)) + np.outer(predicted, [3.0, -2.0, 0.0, 0.0, 1.0])
    space, share = remove_class_direction(latent, predicted)
    assert np.allclose(space[predicted == 1].mean(axis=0), space[predicted == 0].mean(axis=0))
    assert 0.4 < share < 0.9
    # the spread across the class direction is kept: the vectors are not collapsed
    assert np.linalg.matrix_rank(space) == 4
    _, none = remove_class_direction(latent, np.ones(400, dtype=int))  # one class: nothing to do
    assert none == 0.0


def test_what_sets_a_group_apart_is_the_largest_standardised_difference() -> None:
    table = pd.DataFrame(
        {
            "length": [100, 110, 90, 105, 400, 420],  # far apart in sd units
            "oov_count": [1, 2, 1, 2, 3, 4],  # apart, but less
            "rating": [1, 10, 1, 10, 1, 10],  # the same on both sides
        }
    )
    apart = what_sets_apart(table, np.array([0, 0, 0, 0, 1, 1], dtype=bool))
    assert apart is not None and apart.feature == "length"
    assert (apart.inside, apart.rest) == (410.0, 101.25) and apart.smd > 10
    assert apart.text() == "length 410 tokens vs 101 tokens elsewhere"
    assert what_sets_apart(table, np.ones(6, dtype=bool)) is None


def test_only_the_oov_cluster_is_a_weak_segment(planted: dict) -> None:
    table, clusters = planted["table"], planted["clusters"].reset_index(drop=True)
    oov_cluster, _ = best_match(planted["clustering"].labels, planted["group"] == 1)
    weak = find_weak_segments(table, Thresholds(n_boot=200), clusters=clusters)
    named = " ".join(weak["description"]) + " " + " ".join(weak["same_as"])
    clusters_named = {int(c) for c in re.findall(r"[Rr]eviews in cluster (\d+)", named)}
    assert clusters_named == {oov_cluster}
    row = weak[weak["segment"] == f"cluster={oov_cluster}"].iloc[0]
    assert "out-of-vocabulary count" in row["description"] and row["ratio_low"] >= 1.5
