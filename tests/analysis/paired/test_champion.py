"""Champion comparison (analysis/paired/champion.py and its report) on synthetic per-review tables
whose right answers are planted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.common.schema import confidence_from_prob
from analysis.common.thresholds import Thresholds
from analysis.paired.champion import (
    ChampionComparison,
    RegressionCheck,
    compare_with_champion,
    prediction_flips,
    regression_alerts,
    segment_changes,
)
from analysis.paired.champion_report import regression_markdown
from analysis.paired.clusters import match_clusters
from analysis.paired.drift import token_drift
from analysis.paired.pairing import FlipCounts, pair_with_champion

N_BOOT = 200  # enough for stable 95% bounds at these effect sizes, and fast
FAST = Thresholds(n_boot=N_BOOT)


def champion_table(n: int = 5000, seed: int = 0, k: int = 5) -> pd.DataFrame:
    """Independent features, so a loss change planted on one feature's bin leaks to the others'
    segments only in proportion to that bin's share."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, n)
    loss = rng.exponential(0.3, n)
    prob_true = np.exp(-loss)  # loss = -log p(true class)
    prob_positive = np.where(label == 1, prob_true, 1 - prob_true)
    return pd.DataFrame(
        {
            "review_id": np.arange(n) + 1000,
            "label": label,
            "rating": np.where(label == 1, rng.integers(7, 11, n), rng.integers(1, 5, n)),
            "pred": (prob_positive > 0.5).astype(int),
            "prob_positive": prob_positive,
            "loss": loss,
            "confidence": np.abs(prob_positive - 0.5) * 2,
            "length": rng.integers(10, 1010, n),  # uniform: equal-width bins hold ~10% each
            "oov_count": rng.integers(0, 20, n),
            "oov_ratio": rng.uniform(0, 0.05, n),
            "subjectivity": rng.uniform(0, 1, n),
            "polarity": rng.uniform(-1, 1, n),
            "x": rng.normal(size=n),
            "y": rng.normal(size=n),
            "cluster": rng.integers(0, k, n),
        }
    )


def retrained(old: pd.DataFrame, loss_delta: np.ndarray, seed: int = 1) -> pd.DataFrame:
    """`old` with the loss shifted per review, rows shuffled and cluster ids permuted (as a new
    k-means run would number them), predictions following the new loss."""
    new = old.copy()
    new["loss"] = np.maximum(old["loss"].to_numpy() + loss_delta, 0.0)
    prob_true = np.exp(-new["loss"].to_numpy())
    new["prob_positive"] = np.where(new["label"] == 1, prob_true, 1 - prob_true)
    new["pred"] = (new["prob_positive"] > 0.5).astype(int)
    rng = np.random.default_rng(seed)
    ids = np.sort(old["cluster"].unique())
    new["cluster"] = new["cluster"].map(dict(zip(ids, rng.permutation(ids) + 10, strict=True)))
    return new.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def test_identical_copy_raises_no_alert() -> None:
    old = champion_table()
    result = compare_with_champion(retrained(old, np.zeros(len(old))), old, thresholds=FAST)
    assert isinstance(result, ChampionComparison)
    assert result.alert is False and result.alerts.empty
    assert result.reason.startswith("no regression alert")
    assert (result.changes["delta"].abs() < 1e-12).all()
    assert result.flips.right_to_wrong == result.flips.wrong_to_right == 0
    assert result.matched_clusters == 5


def test_planted_degraded_segment_raises_exactly_that_alert_and_blocks() -> None:
    old = champion_table()
    long = (old["length"] >= 910).to_numpy()  # the top equal-width length bin, ~10%
    jitter = np.random.default_rng(3).normal(0.0, 0.05, len(old))
    new = retrained(old, np.where(long, 0.6, 0.0) + jitter)
    result = compare_with_champion(new, old, thresholds=FAST)
    alerts = result.alerts
    assert result.alert is True
    assert list(alerts["segment"]) == ["length bin 9"]
    row = alerts.iloc[0]
    assert row["n"] == long.sum() and row["ci_low"] > 0.1
    assert 0.1 < row["ci_low"] < row["delta"] < row["ci_high"]
    assert abs(row["delta"] - 0.6) < 0.02  # the planted shift (jitter, clipping at 0 aside)
    assert result.reason.startswith(
        "loss on reviews with length of at least 910 tokens rose by 0.6"
    )
    assert f"{int(long.sum()):,} reviews" in result.reason
    # The overall rise (~0.06) is real but under the threshold: no overall alert.
    overall = result.changes.iloc[0]
    assert overall["kind"] == "overall" and 0.03 < overall["delta"] < 0.1


def test_planted_regression_in_a_cluster_is_named_by_both_ids() -> None:
    old = champion_table()
    hit = (old["cluster"] == 3).to_numpy()
    new = retrained(old, np.where(hit, 0.5, 0.0))
    result = compare_with_champion(new, old, thresholds=FAST)
    assert list(result.alerts["segment"]) == ["cluster old 3"]
    new_id = int(result.clusters.set_index("old_cluster").loc[3, "new_cluster"])
    assert f"champion cluster 3 (new cluster {new_id}, Jaccard 1.00)" in result.reason


def test_noise_only_raises_no_alert_even_where_the_point_estimate_crosses() -> None:
    # Losses lifted by 2 nats so that zero-mean noise of spread ~1 keeps them >= 0, as they must be.
    old = champion_table(n=2000).pipe(lambda t: t.assign(loss=t["loss"] + 2.0))
    jitter = np.random.default_rng(5).uniform(-1.7, 1.7, len(old))
    new = old.assign(loss=old["loss"] + jitter)
    changes = segment_changes(new, old, thresholds=FAST)
    # Noise pushes some small segments' point estimate over the threshold ...
    assert (changes["delta"] > 0.1).any()
    # ... but not the lower bound of their interval.
    assert regression_alerts(changes, Thresholds(loss_rise=0.1)).empty


def test_min_support_filters_small_segments() -> None:
    old = champion_table()
    changes = segment_changes(
        retrained(old, np.where(old["length"] >= 910, 0.6, 0.0)), old, thresholds=FAST
    )
    assert len(regression_alerts(changes, Thresholds(min_support=0.02))) == 1
    assert regression_alerts(changes, Thresholds(min_support=0.5)).empty


def test_bootstrap_is_deterministic_given_the_seed() -> None:
    old = champion_table(n=3000).pipe(lambda t: t.assign(loss=t["loss"] + 2.0))
    new = old.assign(loss=old["loss"] + np.random.default_rng(2).normal(0, 0.3, len(old)))
    first = segment_changes(new, old, thresholds=FAST, seed=7)
    again = segment_changes(new, old, thresholds=FAST, seed=7)
    other = segment_changes(new, old, thresholds=FAST, seed=8)
    pd.testing.assert_frame_equal(first, again)
    assert not np.allclose(first["ci_low"], other["ci_low"])
    assert (first["ci_low"] <= first["delta"]).all() and (first["delta"] <= first["ci_high"]).all()


def test_bins_use_the_champion_edges_and_membership() -> None:
    old = champion_table(n=2000)
    new = old.copy()
    new["length"] = new["length"] * 3  # a new table's own values must not move the groups
    changes = segment_changes(new, old, features=("length",), thresholds=Thresholds(n_boot=20))
    bins = changes[changes["kind"] == "feature"]
    assert len(bins) == 10 and bins["n"].sum() == len(old)
    assert bins["bin_left"].iloc[0] == old["length"].min()
    assert bins["bin_right"].iloc[-1] == old["length"].max()
    assert bins["bin"].tolist() == list(range(10))
    # Membership is the champion's histogram: [left, right), the maximum in the last bin.
    counts, _ = np.histogram(old["length"], bins=10)
    assert bins["n"].tolist() == counts.tolist()
    # A feature with few values is cut per value, with no bin or edges.
    rating = segment_changes(new, old, features=("rating",), thresholds=Thresholds(n_boot=20))
    per_value = rating[rating["kind"] == "feature"]
    assert per_value["segment"].tolist() == [f"rating={v}" for v in sorted(old["rating"].unique())]
    assert per_value["bin"].isna().all() and per_value["bin_left"].isna().all()


def test_match_clusters_recovers_a_permutation() -> None:
    old = champion_table(n=1000, k=6)
    new = old.copy()
    mapping = {0: 4, 1: 0, 2: 5, 3: 1, 4: 3, 5: 2}
    new["cluster"] = new["cluster"].map(mapping)
    # Move 5% of reviews to another cluster: matching must still find the permutation.
    moved = np.random.default_rng(0).random(len(new)) < 0.05
    new.loc[moved, "cluster"] = (new.loc[moved, "cluster"] + 1) % 6
    matched = match_clusters(new, old)
    assert dict(zip(matched["old_cluster"], matched["new_cluster"], strict=True)) == mapping
    assert (matched["jaccard"] > 0.8).all() and (matched["jaccard"] <= 1).all()
    assert list(matched.columns) == [
        "new_cluster",
        "old_cluster",
        "jaccard",
        "new_size",
        "old_size",
        "overlap",
    ]


def test_match_clusters_reports_unmatched_clusters() -> None:
    old = champion_table(n=600, k=3)
    new = old.copy()
    new["cluster"] = np.where(old["cluster"] == 2, np.where(old.index % 2 == 0, 7, 8), 0)
    new.loc[old["cluster"] == 1, "cluster"] = 9
    matched = match_clusters(new, old)
    assert matched["old_cluster"].notna().sum() == 3
    unmatched = matched[matched["old_cluster"].isna()]
    assert len(unmatched) == 1 and unmatched["new_cluster"].iloc[0] in (7, 8)
    changes = segment_changes(
        new, old, features=(), thresholds=Thresholds(n_boot=20), clusters=matched
    )
    assert changes["kind"].tolist().count("cluster") == 4  # 3 champion + 1 new-only


def hand_made() -> tuple[pd.DataFrame, pd.DataFrame]:
    old = pd.DataFrame(
        {
            "review_id": ["a", "b", "c", "d", "e", "f"],
            "label": [1, 1, 0, 0, 1, 0],
            "pred": [1, 1, 0, 1, 0, 0],  # d, e wrong
            "prob_positive": [0.9, 0.8, 0.2, 0.7, 0.4, 0.1],
            "loss": [0.1, 0.2, 0.2, 1.2, 0.9, 0.1],
        }
    )
    old["confidence"] = confidence_from_prob(old["prob_positive"])
    new = pd.DataFrame(
        {
            "review_id": ["f", "e", "d", "c", "b", "a"],
            "label": [0, 1, 0, 0, 1, 1],
            # a, b: right -> wrong; d: wrong -> right; e stays wrong; c, f stay right
            "pred": [0, 0, 0, 0, 0, 0],
            "prob_positive": [0.1, 0.3, 0.3, 0.2, 0.45, 0.2],
            "loss": [0.1, 1.2, 0.4, 0.2, 0.8, 1.6],
        }
    )
    new["confidence"] = confidence_from_prob(new["prob_positive"])
    return new, old


def test_flips_counted_both_ways_on_a_hand_made_table() -> None:
    new, old = hand_made()
    counts, examples = prediction_flips(new, old, text={"a": "Great film.", "d": "Dull."})
    assert counts == FlipCounts(n=6, both_right=2, both_wrong=1, right_to_wrong=2, wrong_to_right=1)
    assert counts.net == -1
    assert counts.as_dict() == {
        "n": 6,
        "both_right": 2,
        "both_wrong": 1,
        "right_to_wrong": 2,
        "wrong_to_right": 1,
        "net": -1,
    }
    assert list(examples["review_id"]) == ["a", "b", "d"]  # a's loss rose most: first
    assert list(examples["direction"]) == ["right_to_wrong", "right_to_wrong", "wrong_to_right"]
    assert examples["loss_change"].round(6).tolist() == [1.5, 0.6, -0.8]
    assert examples["text"].tolist()[0] == "Great film." and pd.isna(examples["text"].iloc[1])
    _, one = prediction_flips(new, old, examples=1)
    assert list(one["review_id"]) == ["a", "d"]


def test_mismatched_review_ids_give_an_error_naming_them() -> None:
    new, old = hand_made()
    new = new.assign(review_id=["f", "e", "d", "c", "b", "zz"])  # "a" gone, "zz" new
    with pytest.raises(ValueError, match=r"1 only in old \(a\), 1 only in new \(zz\)"):
        prediction_flips(new, old)
    with pytest.raises(ValueError, match=r"new table .*review_id repeated \(e.g. b\)"):
        pair_with_champion(pd.concat([old, old.iloc[[1]]]), old)


def test_the_champion_pairing_keeps_its_order_and_names_columns_old_and_new() -> None:
    new, old = hand_made()
    joined = pair_with_champion(new, old)
    assert joined["review_id"].tolist() == old["review_id"].tolist()
    assert list(joined.columns[:2]) == ["review_id", "label"]
    assert {"pred_old", "pred_new", "loss_old", "loss_new"} <= set(joined.columns)
    assert "label_old" not in joined.columns and "label_new" not in joined.columns
    assert joined["loss_new"].tolist() == [1.6, 0.8, 0.2, 0.4, 1.2, 0.1]


def test_token_drift_union_and_order() -> None:
    old = pd.DataFrame({"token": ["great", "awful", "plot"], "importance": [0.5, 0.4, 0.1]})
    new = pd.Series({"great": 0.45, "awful": 0.9, "ending": 0.3})
    drift = token_drift(new, old, top=3)
    assert drift["token"].tolist() == ["awful", "ending", "plot"]
    assert drift["change"].round(6).tolist() == [0.5, 0.3, -0.1]
    assert drift.loc[drift["token"] == "ending", "old_importance"].item() == 0.0
    assert token_drift(None, old).empty


def test_markdown_states_the_alert_first() -> None:
    old = champion_table(n=3000)
    new = retrained(old, np.where(old["length"] >= 910, 0.6, 0.0))
    importance = pd.DataFrame({"token": ["great", "awful"], "importance": [0.5, 0.4]})
    result = compare_with_champion(
        new, old, thresholds=FAST, new_importance=importance, old_importance=importance, name="cnn"
    )
    text = result.markdown
    sections = [line for line in text.splitlines() if line.startswith("## ")]
    assert sections[0].startswith("## REGRESSION ALERT: 1 segment")
    assert sections[1:] == [
        "## Prediction flips",
        "## Segments with the largest loss increase",
        "## Attribution drift",
    ]
    assert text.index(result.alerts["message"].iloc[0]) < text.index("## Prediction flips")
    assert "no regression alert" not in text.lower()


def test_markdown_says_no_regression_alert_when_there_is_none() -> None:
    new, old = hand_made()
    flips, examples = prediction_flips(new, old)
    changes = segment_changes(new, old, features=(), thresholds=Thresholds(n_boot=50))
    alerts = regression_alerts(changes, Thresholds(loss_rise=5.0))
    text = regression_markdown(flips, examples, alerts, changes, None, "lstm")
    first_section = next(line for line in text.splitlines() if line.startswith("## "))
    assert first_section == "## No regression alert"
    assert "2 went right -> wrong and 1 wrong -> right (net -1)" in text
    assert "drift not computed" in text


def test_markdown_escapes_review_text_and_cuts_long_reviews() -> None:
    new, old = hand_made()
    text = {"a": "A <script>alert(1)</script> | pipe " + "long " * 100, "d": "Dull.<br />"}
    flips, examples = prediction_flips(new, old, text=text)
    changes = segment_changes(new, old, features=(), thresholds=Thresholds(n_boot=50))
    report = regression_markdown(flips, examples, regression_alerts(changes), changes, None, "cnn")
    row_a = next(line for line in report.splitlines() if line.startswith("| a |"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt; \\| pipe" in row_a
    assert "<" not in row_a and row_a.endswith("… |")
    assert row_a.count(" | ") == 6  # seven cells: the pipe inside the review did not split it
    assert "Dull.&lt;br /&gt;" in report


def test_segment_table_leaves_out_segments_below_the_support() -> None:
    # The one very long review gets much worse: its own tiny bin must not top the table.
    old = champion_table(n=3000)
    longest = old.index == 0
    old.loc[longest, "length"] = 50_000  # alone in the top length bin, everyone else in the first
    new = retrained(old, np.where(longest, 3.0, 0.0))
    setup = {"features": ("length",), "thresholds": FAST}
    changes = segment_changes(new, old, **setup)
    tiny = changes[changes["share"] < 0.02]
    assert not tiny.empty and tiny["delta"].max() > 1.0  # the planted outlier is there...
    text = compare_with_champion(new, old, **setup).markdown
    table = text.split("## Segments with the largest loss increase")[1].split("## ")[0]
    for description in tiny["description"]:
        assert f"| {description} |" not in table  # ...but not in the report's table
    assert f"({len(tiny)} smaller ones left out)" in table


def test_regression_check_from_a_comparison_and_when_not_compared() -> None:
    old = champion_table(n=3000)
    new = retrained(old, np.where(old["length"] >= 910, 0.6, 0.0))
    importance = pd.DataFrame({"token": ["great", "awful", "plot"], "importance": [0.5, 0.4, 0.1]})
    moved = importance.assign(importance=[-0.3, 0.4, 0.15])
    result = compare_with_champion(
        new, old, thresholds=FAST, new_importance=moved, old_importance=importance
    )
    check = RegressionCheck.from_comparison("cnn", "3", result)
    assert check == RegressionCheck(
        arch="cnn",
        compared=True,
        alert=True,
        reason=result.reason,
        champion_version="3",
        flips=result.flips,
        matched_clusters=5,
        drifted_tokens=("great", "plot", "awful"),
    )
    assert check.blocks_promotion(allow_regression=False) == result.reason
    assert check.blocks_promotion(allow_regression=True) is None
    first = RegressionCheck.not_compared("dense", "no champion yet")
    assert not first.compared and not first.alert and first.flips is None
    assert first.blocks_promotion(allow_regression=False) is None
