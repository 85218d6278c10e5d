"""The regression check in words: the sentence of one segment's change and the Markdown report.

Display only: the numbers come from `analysis.paired.champion` (segment changes, alerts, drift)
and `analysis.paired.pairing` (flip counts). Review text is untrusted and goes through
`markdown_cell` (pipes and angle brackets escaped, long reviews cut).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from analysis.common.render import fmt_number, markdown_cell, markdown_table
from analysis.common.thresholds import DEFAULT_THRESHOLDS, Thresholds
from analysis.paired.bootstrap import CI_LEVEL
from analysis.paired.pairing import FlipCounts

CELL_WIDTH = 120  # characters of a review, segment or word shown in a report table


def _subject(description: str) -> str:
    """A segment description ("Reviews with ...") inside a sentence: "reviews with ..."."""
    return description[:1].lower() + description[1:]


def change_sentence(row: Mapping[str, Any] | pd.Series) -> str:
    """'loss on reviews with length of at least 910 tokens rose by 0.312 (95% CI 0.180..0.441,
    2,310 reviews)' for one row of the segment changes.

    Three decimals: a retrained model typically moves the overall loss by a few thousandths.
    """
    verb = "rose" if row["delta"] >= 0 else "fell"
    return (
        f"loss on {_subject(str(row['description']))} {verb} by {fmt_number(abs(row['delta']))} "
        f"({CI_LEVEL:.0%} CI {row['ci_low']:.3f}..{row['ci_high']:.3f}, "
        f"{fmt_number(int(row['n']))} reviews)"
    )


def _rule(thresholds: Thresholds) -> str:
    return (
        f"Rule: a segment raises an alert when the lower bound of the {CI_LEVEL:.0%} paired-"
        f"bootstrap interval of its mean-loss increase exceeds {thresholds.loss_rise:g} nats and "
        f"it holds at least {thresholds.min_support:.0%} of the test reviews."
    )


def _verdict(alerts: pd.DataFrame, changes: pd.DataFrame, thresholds: Thresholds) -> list[str]:
    if alerts.empty:
        lines = ["## No regression alert", ""]
        overall = changes[changes["kind"] == "overall"]
        if not overall.empty:
            lines.append(f"Overall, {change_sentence(overall.iloc[0])}.")
        return lines + [_rule(thresholds), ""]
    lines = [f"## REGRESSION ALERT: {len(alerts)} segment(s), promotion blocked", ""]
    lines += [f"- {markdown_cell(msg, 300)}" for msg in alerts["message"]]
    return lines + ["", _rule(thresholds), ""]


def _flips_section(flips: FlipCounts, examples: pd.DataFrame) -> list[str]:
    lines = [
        "## Prediction flips",
        "",
        f"Of {flips.n:,} reviews, {flips.right_to_wrong:,} went right -> wrong and "
        f"{flips.wrong_to_right:,} wrong -> right (net {flips.net:+,}); "
        f"{flips.both_wrong:,} are wrong for both models.",
    ]
    if not examples.empty:
        shown = pd.DataFrame(
            {
                "review": examples["review_id"].astype(str),
                "direction": examples["direction"].str.replace("_", " "),
                "label": examples["label"].astype(int),
                "old p(pos)": [fmt_number(v, 2) for v in examples["old_prob_positive"]],
                "new p(pos)": [fmt_number(v, 2) for v in examples["new_prob_positive"]],
                "loss change": [fmt_number(v, 2, signed=True) for v in examples["loss_change"]],
            }
        )
        if "text" in examples.columns:
            shown["text"] = examples["text"].fillna("").to_numpy()
        lines += ["", markdown_table(shown, CELL_WIDTH)]
    return lines + [""]


def _segments_section(changes: pd.DataFrame, min_support: float, max_rows: int) -> list[str]:
    lines = ["## Segments with the largest loss increase", ""]
    if changes.empty:
        return lines + ["No segments.", ""]
    # Segments below the alert's support are left out: one or two reviews top the list by chance
    # on any retraining (seen on IMDB: a length bin of one review).
    supported = changes[changes["share"] >= min_support]
    top = supported.sort_values("delta", ascending=False, kind="stable").head(max_rows)
    shown = pd.DataFrame(
        {
            "segment": top["description"].astype(str),
            "reviews": top["n"].astype(int),
            "share": [f"{v:.1%}" for v in top["share"]],
            "old loss": [fmt_number(v) for v in top["old_loss"]],
            "new loss": [fmt_number(v) for v in top["new_loss"]],
            "delta": [fmt_number(v, signed=True) for v in top["delta"]],
            f"{CI_LEVEL:.0%} CI": [
                f"{fmt_number(lo, signed=True)}..{fmt_number(hi, signed=True)}"
                for lo, hi in zip(top["ci_low"], top["ci_high"], strict=True)
            ],
        }
    )
    lines += [
        f"Segments holding at least {min_support:.0%} of the reviews "
        f"({len(changes) - len(supported)} smaller ones left out).",
        "",
        markdown_table(shown, CELL_WIDTH),
    ]
    best = supported.loc[supported["delta"].idxmin()] if not supported.empty else None
    if best is not None and best["delta"] < 0:
        lines += ["", f"Largest improvement: {change_sentence(best)}."]
    return lines + [""]


def _drift_section(drift: pd.DataFrame | None) -> list[str]:
    lines = ["## Attribution drift", ""]
    if drift is None or drift.empty:
        return lines + ["No token importance for one of the models: drift not computed.", ""]
    shown = pd.DataFrame(
        {
            "token": drift["token"].astype(str),
            "old importance": [fmt_number(v, 4) for v in drift["old_importance"]],
            "new importance": [fmt_number(v, 4) for v in drift["new_importance"]],
            "change": [fmt_number(v, 4, signed=True) for v in drift["change"]],
        }
    )
    return lines + [
        "Words whose mean attribution toward *positive* changed most (same reviews for both).",
        "",
        markdown_table(shown, CELL_WIDTH),
        "",
    ]


def regression_markdown(
    flips: FlipCounts,
    flip_examples: pd.DataFrame,
    alerts: pd.DataFrame,
    changes: pd.DataFrame,
    drift: pd.DataFrame | None,
    name: str,
    *,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    max_rows: int = 10,
) -> str:
    """Markdown: the verdict (alerts or "No regression alert") first, then flips, segments, drift."""
    lines = [f"# Regression check: {name} against the champion", ""]
    lines += _verdict(alerts, changes, thresholds)
    lines += _flips_section(flips, flip_examples)
    lines += _segments_section(changes, thresholds.min_support, max_rows)
    lines += _drift_section(drift)
    return "\n".join(lines)
