"""Likely label errors among two models' test reviews: which to set aside when comparing them.

No model can get a mislabelled review right, so a loss reduction measured on one model's
highest-loss reviews is capped by the label errors among them. Each model's own probabilities
flag reviews by confident learning (`errors.label_issues.flag_label_issues`); a review is set
aside only when BOTH models flag it: two architectures trained apart, confidently agreeing against
the given label. One model's flags alone would set aside exactly its own confident mistakes (for
the source model of a loss transfer, nearly all of its top-loss reviews), which are what the
comparison is about.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from analysis.errors.label_issues import flag_label_issues


@dataclass(frozen=True)
class PairedLabelErrors:
    """The test reviews each model's probabilities flag as likely label errors."""

    name_a: str
    name_b: str
    by_a: frozenset[str]
    by_b: frozenset[str]

    @property
    def both(self) -> frozenset[str]:
        """What a comparison sets aside: flagged under both models."""
        return self.by_a & self.by_b

    def counts_among(self, review_ids: pd.Series) -> dict[str, int]:
        """How many of `review_ids` each model flags, and both: {name_a, name_b, "both"}."""
        ids = review_ids.astype(str)
        return {
            self.name_a: int(ids.isin(self.by_a).sum()),
            self.name_b: int(ids.isin(self.by_b).sum()),
            "both": int(ids.isin(self.both).sum()),
        }


def _flagged(table: pd.DataFrame) -> frozenset[str]:
    flags = flag_label_issues(table["label"].to_numpy(), table["prob_positive"].to_numpy())
    return frozenset(table.loc[flags.flagged, "review_id"].astype(str))


def paired_label_errors(
    a: pd.DataFrame, b: pd.DataFrame, name_a: str = "dense", name_b: str = "cnn"
) -> PairedLabelErrors:
    """Each model's likely label errors, from its per-review table (review_id, label,
    prob_positive); pair the tables first (`pairing.pair_tables`) to check they match."""
    return PairedLabelErrors(name_a, name_b, _flagged(a), _flagged(b))
