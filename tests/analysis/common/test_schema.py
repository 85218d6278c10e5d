"""The per-review table's schema: a table of another shape fails with the column and the reason."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.common.schema import (
    SAMPLE_COLUMNS,
    confidence_from_prob,
    per_sample_loss,
    validate_samples,
)


def table(n: int = 4) -> pd.DataFrame:
    prob = np.linspace(0.1, 0.9, n)
    label = np.arange(n) % 2
    return pd.DataFrame(
        {
            "review_id": [f"r{i}" for i in range(n)],
            "label": label,
            "pred": (prob >= 0.5).astype(int),
            "prob_positive": prob,
            "loss": per_sample_loss(prob, label),
            "confidence": confidence_from_prob(prob),
        }
    )


def test_a_valid_table_passes_with_types_coerced() -> None:
    raw = table().assign(label=lambda t: t["label"].astype(float))
    checked = validate_samples(raw)
    assert checked["label"].dtype == np.int64
    assert list(checked.columns) == list(raw.columns)


@pytest.mark.parametrize(
    ("spoil", "named"),
    [
        (lambda t: t.drop(columns="loss"), "lacks column(s) loss"),
        (lambda t: t.assign(review_id=["r0", "r0", "r1", "r2"]), "review_id repeated"),
        (lambda t: t.assign(label=[0, 1, 2, 1]), "label fails"),
        (lambda t: t.assign(prob_positive=[0.1, 1.5, 0.2, 0.3]), "prob_positive fails"),
        (lambda t: t.assign(loss=[-1.0, 0.1, 0.1, 0.1]), "loss fails"),
    ],
)
def test_a_bad_table_is_refused_naming_the_column(spoil, named: str) -> None:
    with pytest.raises(ValueError, match="champion") as error:
        validate_samples(spoil(table()), name="champion")
    assert named in str(error.value)


def test_loss_is_finite_for_certain_wrong_predictions_and_confidence_is_symmetric() -> None:
    loss = per_sample_loss(np.array([0.0, 1.0, 0.5]), np.array([1, 0, 1]))
    assert np.all(np.isfinite(loss)) and loss[0] == pytest.approx(loss[1]) and loss[0] > 15
    assert confidence_from_prob(np.array([0.0, 0.5, 0.9])) == pytest.approx([1.0, 0.0, 0.8])


def test_sample_columns_are_unique() -> None:
    assert len(set(SAMPLE_COLUMNS)) == len(SAMPLE_COLUMNS)
