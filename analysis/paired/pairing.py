"""The pairing core: two per-review tables joined review by review, and who got each review wrong.

Every comparison of two runs starts here. `pair_tables` joins the tables on `review_id` after
checking both against the per-review schema, and refuses tables that do not hold exactly the same
reviews with the same labels: a comparison on different reviews would silently mean nothing.
`outcome` is the right/wrong 2x2 of two models on the paired table; the dense-vs-CNN triage and the
champion's prediction flips are both read off it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.common.schema import PAIRED_COLUMNS, validate_samples

SHOWN_IDS = 3  # review ids an error message names per side


def check_names(name_first: str, name_second: str) -> None:
    """Raise ValueError unless the two sides have different names: they become column suffixes."""
    if name_first == name_second:
        raise ValueError(f"the two models need different names, got {name_first!r} twice")


def _some(ids: set[str]) -> str:
    shown = sorted(ids)[:SHOWN_IDS]
    return ", ".join(shown) + (", ..." if len(ids) > SHOWN_IDS else "")


def pair_tables(
    first: pd.DataFrame,
    second: pd.DataFrame,
    name_first: str,
    name_second: str,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per review, in `first`'s order: review_id and label once, then every other column
    of `first` suffixed `_<name_first>`, then those of `second` suffixed `_<name_second>`.

    Both tables are checked with `validate_samples` (types coerced: review ids are strings).
    `columns` restricts what is carried to those columns (each table must have them). Raises
    ValueError when a review id repeats, when the tables hold different reviews (naming a few ids
    found on one side only, for each side) or when they disagree on a label.
    """
    check_names(name_first, name_second)
    keep = None if columns is None else [c for c in columns if c not in ("review_id", "label")]
    required = tuple(dict.fromkeys([*PAIRED_COLUMNS, *(keep or ())]))
    sides = []
    for name, table in ((name_first, first), (name_second, second)):
        table = validate_samples(table, name=name, required=required)
        carried = keep if keep is not None else [c for c in table.columns if c != "review_id"]
        carried = [c for c in carried if c != "label"]
        renamed = table[["review_id", "label", *carried]].rename(
            columns={c: f"{c}_{name}" for c in ["label", *carried]}
        )
        sides.append(renamed.reset_index(drop=True))
    left, right = sides
    ids_first, ids_second = set(left["review_id"]), set(right["review_id"])
    if ids_first != ids_second:
        only_first, only_second = ids_first - ids_second, ids_second - ids_first
        raise ValueError(
            f"the two tables hold different reviews: {len(only_first):,} only in {name_first} "
            f"({_some(only_first)}), {len(only_second):,} only in {name_second} "
            f"({_some(only_second)})"
        )
    joined = left.merge(right, on="review_id", how="left", validate="1:1")
    label_first, label_second = joined[f"label_{name_first}"], joined[f"label_{name_second}"]
    differ = set(joined.loc[label_first != label_second, "review_id"])
    if differ:
        raise ValueError(
            f"the two tables disagree on the labels of {len(differ):,} review(s) ({_some(differ)})"
        )
    joined = joined.drop(columns=f"label_{name_second}").rename(
        columns={f"label_{name_first}": "label"}
    )
    return joined.reset_index(drop=True)


@dataclass(frozen=True)
class Outcome:
    """Which of two models got each review of a paired table wrong: the right/wrong 2x2."""

    a: str
    b: str
    wrong_a: np.ndarray  # bool per review
    wrong_b: np.ndarray

    @property
    def names(self) -> tuple[str, str, str, str]:
        """both_right, both_wrong, only_<a>_wrong, only_<b>_wrong."""
        return "both_right", "both_wrong", f"only_{self.a}_wrong", f"only_{self.b}_wrong"

    @property
    def labels(self) -> np.ndarray:
        """Per review, the name of its cell of the 2x2."""
        both_right, both_wrong, only_a, only_b = self.names
        wa, wb = self.wrong_a, self.wrong_b
        return np.select([wa & wb, wa, wb], [both_wrong, only_a, only_b], both_right).astype(object)

    def counts(self) -> dict[str, int]:
        """Reviews per cell, every cell present (0 when empty), plus n."""
        wa, wb = self.wrong_a, self.wrong_b
        cells = (~wa & ~wb, wa & wb, wa & ~wb, ~wa & wb)
        return {"n": len(wa)} | {
            name: int(mask.sum()) for name, mask in zip(self.names, cells, strict=True)
        }


def outcome(paired: pd.DataFrame, a: str, b: str) -> Outcome:
    """The 2x2 of models `a` and `b` on a `pair_tables` table (columns label, pred_<a>, pred_<b>)."""
    check_names(a, b)
    label = paired["label"].to_numpy()
    return Outcome(
        a,
        b,
        paired[f"pred_{a}"].to_numpy() != label,
        paired[f"pred_{b}"].to_numpy() != label,
    )


@dataclass(frozen=True)
class FlipCounts:
    """The 2x2 of a champion ("old") and a new model, read as a change: right -> wrong is a review
    only the new model gets wrong, wrong -> right one only the champion got wrong."""

    n: int
    both_right: int
    both_wrong: int
    right_to_wrong: int
    wrong_to_right: int

    @property
    def net(self) -> int:
        """wrong_to_right - right_to_wrong: negative is worse."""
        return self.wrong_to_right - self.right_to_wrong

    @classmethod
    def from_outcome(cls, cells: Outcome) -> FlipCounts:
        """From `outcome(paired, old, new)`: the champion is the first model."""
        counts = cells.counts()
        _, _, only_old, only_new = cells.names
        return cls(
            n=counts["n"],
            both_right=counts["both_right"],
            both_wrong=counts["both_wrong"],
            right_to_wrong=counts[only_new],
            wrong_to_right=counts[only_old],
        )

    def as_dict(self) -> dict[str, int]:
        """n, both_right, both_wrong, right_to_wrong, wrong_to_right, net (MLflow: flips_<key>)."""
        return {
            "n": self.n,
            "both_right": self.both_right,
            "both_wrong": self.both_wrong,
            "right_to_wrong": self.right_to_wrong,
            "wrong_to_right": self.wrong_to_right,
            "net": self.net,
        }


OLD, NEW = "old", "new"  # the names of a champion check's paired table: loss_old, pred_new, ...


def pair_with_champion(
    new: pd.DataFrame, old: pd.DataFrame, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """`pair_tables(old, new, "old", "new", columns)`: the champion first, so rows are in its
    order, with columns `<column>_old` / `<column>_new` and `label` once."""
    return pair_tables(old, new, OLD, NEW, columns)
