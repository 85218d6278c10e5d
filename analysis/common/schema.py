"""The per-review table: one row per evaluated review, the contract between every analysis step.

One model's analysis writes it (`errors.predict.build_sample_table`, then cluster and map
coordinates), MLflow stores it as `analysis/samples.parquet`, and the comparisons read it back.
`validate_samples` checks it where it enters a step from outside (read from MLflow, or handed to a
comparison), so a table of another shape fails with the column and the reason, not a KeyError.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pandera.pandas as pa

from data.text import OOV_ID, PAD_ID  # the token-id contract lives with the data layer

__all__ = [
    "CLASS_NAMES",
    "METADATA_COLUMNS",
    "OOV_ID",
    "PAD_ID",
    "SAMPLE_COLUMNS",
    "confidence_from_prob",
    "per_sample_loss",
    "validate_samples",
]

CLASS_NAMES = {0: "negative", 1: "positive"}
METADATA_COLUMNS = ("subjectivity", "polarity")  # TextBlob, from the text alone
# The columns of the per-review table, in order; the analysis adds cluster, x and y.
SAMPLE_COLUMNS = (
    "review_id",
    "label",
    "rating",
    "pred",
    "prob_positive",
    "loss",
    "confidence",
    "length",
    "oov_count",
    "oov_ratio",
    *METADATA_COLUMNS,
)
MAP_COLUMNS = ("cluster", "x", "y")
# What a comparison of two runs needs at the least.
PAIRED_COLUMNS = ("review_id", "label", "pred", "prob_positive", "loss", "confidence")
# Probabilities are clipped so that a confidently wrong prediction costs ~16 nats, not inf.
PROB_EPS = 1e-7

_UNIT = pa.Check.in_range(0.0, 1.0)
_SCHEMA = pa.DataFrameSchema(
    {
        "review_id": pa.Column(str, unique=True, coerce=True),
        "label": pa.Column(int, pa.Check.isin([0, 1]), coerce=True),
        "rating": pa.Column(float, nullable=True, coerce=True, required=False),
        "pred": pa.Column(int, pa.Check.isin([0, 1]), coerce=True),
        "prob_positive": pa.Column(float, _UNIT, coerce=True),
        "loss": pa.Column(float, pa.Check.ge(0.0), coerce=True),
        "confidence": pa.Column(float, _UNIT, coerce=True),
        "length": pa.Column(int, pa.Check.ge(0), coerce=True, required=False),
        "oov_count": pa.Column(int, pa.Check.ge(0), coerce=True, required=False),
        "oov_ratio": pa.Column(float, _UNIT, coerce=True, required=False),
        "subjectivity": pa.Column(float, coerce=True, required=False),
        "polarity": pa.Column(float, coerce=True, required=False),
        "cluster": pa.Column(int, coerce=True, required=False),
    },
    strict=False,  # reports may carry more columns (text, x, y)
)


def validate_samples(
    table: pd.DataFrame, name: str = "samples", required: Sequence[str] = PAIRED_COLUMNS
) -> pd.DataFrame:
    """`table` checked against the per-review schema (types coerced), or a ValueError that names
    `name` and each failing column with its reason: missing, repeated ids, values out of range."""
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise ValueError(f"{name} table lacks column(s) {', '.join(missing)}")
    try:
        return _SCHEMA.validate(table, lazy=True)
    except pa.errors.SchemaErrors as error:
        cases = error.failure_cases
        problems = []
        for (column, check), group in cases.groupby(["column", "check"], sort=False, dropna=False):
            shown = ", ".join(map(str, group["failure_case"].drop_duplicates().head(3)))
            what = "repeated" if check == "field_uniqueness" else f"fails {check}"
            problems.append(f"{column} {what} (e.g. {shown})")
        raise ValueError(f"{name} table is not a per-review table: {'; '.join(problems)}") from None


def confidence_from_prob(prob_positive: np.ndarray) -> np.ndarray:
    """Distance of the predicted probability from the 0.5 decision boundary, scaled to [0, 1]."""
    return np.abs(np.asarray(prob_positive, dtype=float) - 0.5) * 2.0


def per_sample_loss(prob_positive: np.ndarray, label: np.ndarray) -> np.ndarray:
    """Binary cross-entropy (nats) of the true label given P(positive), clipped to stay finite."""
    p = np.clip(np.asarray(prob_positive, dtype=float), PROB_EPS, 1.0 - PROB_EPS)
    y = np.asarray(label, dtype=float)
    return -(y * np.log(p) + (1.0 - y) * np.log1p(-p))
