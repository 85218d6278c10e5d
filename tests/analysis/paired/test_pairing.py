"""The pairing core: joining two per-review tables, and the right/wrong 2x2 both comparisons use."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.common.schema import confidence_from_prob, per_sample_loss
from analysis.paired.champion import prediction_flips
from analysis.paired.dense_vs_cnn import triage
from analysis.paired.pairing import FlipCounts, outcome, pair_tables

LABELS = [1, 0, 1, 0, 1, 0]


def table(probs: list[float], ids: list[str] | None = None, labels=LABELS) -> pd.DataFrame:
    prob = np.asarray(probs)
    return pd.DataFrame(
        {
            "review_id": ids or [f"r{i}" for i in range(len(probs))],
            "label": labels,
            "pred": (prob > 0.5).astype(int),
            "prob_positive": prob,
            "loss": per_sample_loss(prob, np.asarray(labels)),
            "confidence": confidence_from_prob(prob),
            "length": np.arange(len(probs)) * 10,
        }
    )


# r0 both right, r1 both wrong (both sure), r2 only A wrong, r3 only B wrong, r4 both wrong
# (B unsure), r5 both right.
A = table([0.9, 0.95, 0.2, 0.1, 0.1, 0.3])
B = table([0.8, 0.9, 0.7, 0.6, 0.45, 0.4])


def test_pair_tables_keeps_the_first_tables_order_and_the_label_once() -> None:
    shuffled = B.iloc[[5, 3, 1, 0, 4, 2]]
    paired = pair_tables(A, shuffled, "dense", "cnn")
    assert paired["review_id"].tolist() == A["review_id"].tolist()
    assert paired["loss_cnn"].tolist() == pytest.approx(B["loss"].tolist())
    assert list(paired.columns) == [
        "review_id",
        "label",
        *(f"{c}_dense" for c in ("pred", "prob_positive", "loss", "confidence", "length")),
        *(f"{c}_cnn" for c in ("pred", "prob_positive", "loss", "confidence", "length")),
    ]
    # In the other table's order when it comes first.
    back = pair_tables(shuffled, A, "cnn", "dense")
    assert back["review_id"].tolist() == ["r5", "r3", "r1", "r0", "r4", "r2"]


def test_pair_tables_carries_only_the_columns_asked_for() -> None:
    paired = pair_tables(A, B, "old", "new", columns=("loss",))
    assert list(paired.columns) == ["review_id", "label", "loss_old", "loss_new"]
    with pytest.raises(ValueError, match="lacks column"):
        pair_tables(A, B.drop(columns="length"), "old", "new", columns=("length",))


def test_pair_tables_names_a_few_ids_found_on_one_side_only() -> None:
    other = table([0.5] * 6, ids=["r0", "r1", "x7", "x8", "x9", "x10"])
    with pytest.raises(ValueError, match="different reviews") as error:
        pair_tables(A, other, "dense", "cnn")
    message = str(error.value)
    assert "4 only in dense (r2, r3, r4, ...)" in message
    assert "4 only in cnn (x10, x7, x8, ...)" in message
    assert "r5" not in message  # a few ids, not all of them
    assert "r0" not in message and "r1" not in message  # nor those both hold


def test_pair_tables_rejects_repeated_ids_and_different_labels() -> None:
    with pytest.raises(ValueError, match=r"cnn table .*review_id repeated \(e.g. r1\)"):
        pair_tables(A, pd.concat([B, B.iloc[[1]]]), "dense", "cnn")
    flipped = B.assign(label=[1, 0, 1, 0, 0, 1])
    with pytest.raises(ValueError, match=r"disagree on the labels of 2 review\(s\) \(r4, r5\)"):
        pair_tables(A, flipped, "dense", "cnn")
    with pytest.raises(ValueError, match="different names"):
        pair_tables(A, B, "cnn", "cnn")


def test_pair_tables_checks_the_schema() -> None:
    with pytest.raises(ValueError, match="lacks column"):
        pair_tables(A.drop(columns="confidence"), B, "dense", "cnn")
    with pytest.raises(ValueError, match="prob_positive"):
        pair_tables(A, B.assign(prob_positive=1.5), "dense", "cnn")


def test_outcome_is_the_two_by_two() -> None:
    cells = outcome(pair_tables(A, B, "dense", "cnn"), "dense", "cnn")
    assert cells.labels.tolist() == [
        "both_right",
        "both_wrong",
        "only_dense_wrong",
        "only_cnn_wrong",
        "both_wrong",
        "both_right",
    ]
    assert cells.counts() == {
        "n": 6,
        "both_right": 2,
        "both_wrong": 2,
        "only_dense_wrong": 1,
        "only_cnn_wrong": 1,
    }


def test_triage_and_flips_are_both_read_off_the_outcome() -> None:
    cells = outcome(pair_tables(A, B, "old", "new"), "old", "new").counts()
    triaged = triage(A, B, "old", "new").counts.set_index("category")["count"]
    assert triaged["only_old_wrong"] == cells["only_old_wrong"]
    assert triaged["only_new_wrong"] == cells["only_new_wrong"]
    assert triaged["both_right"] == cells["both_right"]
    # Triage splits both_wrong by confidence: r1 sure for both, r4 not (B at 0.45).
    assert triaged["both_wrong_confident"] == 1 and triaged["both_wrong"] == 1
    assert triaged["both_wrong_confident"] + triaged["both_wrong"] == cells["both_wrong"]
    # Flips: A is the champion. Right -> wrong is only the new model wrong, and back.
    flips, _ = prediction_flips(B, A)
    assert flips == FlipCounts(
        n=6,
        both_right=cells["both_right"],
        both_wrong=cells["both_wrong"],
        right_to_wrong=cells["only_new_wrong"],
        wrong_to_right=cells["only_old_wrong"],
    )
    assert flips.net == 0
