"""Dense vs CNN with likely label errors set aside (analysis/paired/label_errors.py and its part of
dense_vs_cnn / comparison_report), on planted tables: 4 label errors both models get confidently
"wrong", 6 reviews only the dense model gets wrong."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import pytest

from analysis.common.schema import confidence_from_prob, per_sample_loss
from analysis.paired.comparison_report import comparison_report
from analysis.paired.dense_vs_cnn import compare, comparison_numbers
from analysis.paired.label_errors import paired_label_errors

# (kind, reviews per class, dense P(given label), cnn P(given label))
KINDS = (
    ("label_error", 2, 0.03, 0.03),  # both confidently against the label: the label is wrong
    ("dense_only", 3, 0.05, 0.90),  # the dense model's own mistakes, which the CNN fixes
    ("next", 2, 0.60, 0.90),  # right, but the dense model's least sure
    ("easy", 43, 0.90, 0.90),
)


def _tables() -> tuple[pd.DataFrame, pd.DataFrame, dict[str, list[str]]]:
    rows, kinds = [], {}
    for kind, per_class, p_dense, p_cnn in KINDS:
        for label in (1, 0):
            for i in range(per_class):
                rid = f"{kind}-{label}-{i}"
                kinds.setdefault(kind, []).append(rid)
                rows.append((rid, label, p_dense, p_cnn))
    frame = pd.DataFrame(rows, columns=["review_id", "label", "p_dense", "p_cnn"])

    def table(p_given: pd.Series) -> pd.DataFrame:
        label = frame["label"].to_numpy()
        prob = np.where(label == 1, p_given, 1 - p_given)
        return pd.DataFrame(
            {
                "review_id": frame["review_id"],
                "label": label,
                "pred": (prob >= 0.5).astype(int),
                "prob_positive": prob,
                "loss": per_sample_loss(prob, label),
                "confidence": confidence_from_prob(prob),
            }
        )

    return table(frame["p_dense"]), table(frame["p_cnn"]), kinds


def test_each_model_flags_its_confident_contradictions_and_both_flag_the_label_errors() -> None:
    dense, cnn, kinds = _tables()
    errors = paired_label_errors(dense, cnn)
    assert errors.by_b == set(kinds["label_error"])
    assert errors.by_a == set(kinds["label_error"]) | set(kinds["dense_only"])
    assert errors.both == set(kinds["label_error"])


def test_loss_reduction_on_the_dense_top_losses_once_label_errors_are_set_aside() -> None:
    dense, cnn, kinds = _tables()
    comp = compare(dense, cnn, {}, {}, top_k=10)
    raw_dense = (4 * -np.log(0.03) + 6 * -np.log(0.05)) / 10
    raw_cnn = (4 * -np.log(0.03) + 6 * -np.log(0.90)) / 10
    assert comp.transfer_ab.loss_reduction == pytest.approx(1 - raw_cnn / raw_dense)
    clean = comp.transfer_ab_clean
    assert clean is not None
    # The label errors leave; the next-worst reviews of the dense model take their places.
    assert set(clean.table["review_id"]) == set(kinds["dense_only"]) | set(kinds["next"])
    clean_dense = (6 * -np.log(0.05) + 4 * -np.log(0.60)) / 10
    expected = 1 + np.log(0.90) / clean_dense
    assert clean.loss_reduction == pytest.approx(expected)
    numbers = comparison_numbers(comp)
    assert numbers["loss_reduction_dense_top10_by_cnn_clean"] == pytest.approx(expected)
    assert numbers["top10_dense_label_errors"] == 4
    assert numbers["label_errors_both"] == 4
    markdown, page = comparison_report(comp)
    sentence = "4 of dense's top 10 losses are likely label errors"
    assert sentence in markdown and html.escape(sentence) in page
    assert "(dense's flag 10 of them, cnn's 4); 4 test reviews in all" in markdown
    assert "Once they are set aside: on the 10 reviews where dense has" in markdown
    assert f"loss reduction {100 * expected:.0f}%" in markdown


def test_without_any_label_error_the_clean_transfer_is_the_plain_one() -> None:
    dense, cnn, _ = _tables()
    cnn = cnn.assign(prob_positive=np.where(cnn["label"] == 1, 0.9, 0.1))  # never against a label
    cnn = cnn.assign(loss=per_sample_loss(cnn["prob_positive"], cnn["label"]))
    comp = compare(dense, cnn, {}, {}, top_k=10)
    assert comp.label_errors is not None and comp.label_errors.both == frozenset()
    assert comp.transfer_ab_clean is not None
    assert comp.transfer_ab_clean.loss_reduction == comp.transfer_ab.loss_reduction
