"""Running the behavioural checks of `cases` on a model: pass rates, MLflow metrics, a report."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.behaviour.cases import (
    CHECK_DESCRIPTIONS,
    CHECKS,
    MAX_DELTA,
    SEPARATOR,
    THRESHOLD,
    build_cases,
    case_adjectives,
    case_direction,
    case_kind,
    case_passes,
)
from analysis.behaviour.templates import CONTEXTS, NEG_ADJ, POS_ADJ
from analysis.common.render import markdown_table

METRIC_PREFIX, METRIC_SUFFIX = "behaviour_", "_pass_rate"


def metric_name(check: str) -> str:
    """The MLflow metric of a check's pass rate: behaviour_<check>_pass_rate."""
    return f"{METRIC_PREFIX}{check}{METRIC_SUFFIX}"


def check_of_metric(key: str) -> str | None:
    """The check a metric key holds the pass rate of, or None for another metric."""
    if key.startswith(METRIC_PREFIX) and key.endswith(METRIC_SUFFIX):
        return key.removeprefix(METRIC_PREFIX).removesuffix(METRIC_SUFFIX)
    return None


@dataclass(frozen=True)
class BehaviourReport:
    """The suite's outcome: `summary` has one row per check (check, cases, passed, pass_rate,
    description), `results` one row per case (check, case, texts, probs, passed, direction,
    expectation; `direction`: moved the right way, `case_direction`, None for invariance)."""

    summary: pd.DataFrame
    results: pd.DataFrame
    # The sentiment-free opening sentences the cases start with, scored alone (text, prob): where
    # the model puts a review that says nothing, the offset every 0.5 bar is read through.
    filler: pd.DataFrame | None = None

    @property
    def pass_rates(self) -> dict[str, float]:
        """check -> share of its cases passed."""
        return {
            str(c): float(r)
            for c, r in zip(self.summary["check"], self.summary["pass_rate"], strict=True)
        }

    @property
    def kind_pass_rates(self) -> dict[tuple[str, str], float]:
        """(check, kind) -> share of that kind's cases passed, e.g. ("contrast", "verdict_first")."""
        by_kind = _by_kind(self.results)
        return {(str(c), str(k)): r["passed"] / r["cases"] for (c, k), r in by_kind.iterrows()}

    @property
    def kind_direction_rates(self) -> dict[tuple[str, str], float]:
        """(check, kind) -> share of that kind's cases moved the right way, for the kinds whose
        rule has a direction (not invariance or robustness): near 0.5 is a model blind to the
        cue, near 0 one that reads it backwards."""
        by_kind = _by_kind(self.results)
        return {
            (str(c), str(k)): r["right_way"] / r["directed"]
            for (c, k), r in by_kind.iterrows()
            if r["directed"]
        }

    def adjective_pass_rates(self, check: str = "negation") -> dict[str, float]:
        """adjective -> share of `check`'s cases on it passed, for the checks whose cases each
        judge one drawn adjective (negation, diminisher): which words a model fails on."""
        by_adjective = _by_adjective(self.results, check)
        return {str(a): float(r["passed"] / r["cases"]) for a, r in by_adjective.iterrows()}

    def kind_rates(self, check: str) -> dict[str, float]:
        """Flat figures of each kind of `check`: `<check>_<kind>` (passed) and, where its rule has
        a direction, `<check>_<kind>_right_way`, e.g. `contrast_verdict_first_right_way`."""
        passed, right_way = self.kind_pass_rates, self.kind_direction_rates
        out: dict[str, float] = {}
        for (c, kind), rate in passed.items():
            if c == check:
                out[f"{check}_{kind}"] = rate
                if (c, kind) in right_way:
                    out[f"{check}_{kind}_right_way"] = right_way[c, kind]
        return out

    def metrics(self) -> dict[str, float]:
        """MLflow metrics `behaviour_<check>_pass_rate`."""
        return behaviour_metrics(self.summary)

    def markdown(self) -> str:
        return behaviour_markdown(self.summary, self.results, filler=self.filler)


def score_texts(
    predict_proba: Callable[[list[str]], np.ndarray], texts: Sequence[str], batch_size: int = 512
) -> dict[str, float]:
    """P(pos) of each distinct text, in ceil(n_distinct / batch_size) calls."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    unique = list(dict.fromkeys(texts))  # order-preserving dedupe: deterministic batches
    scores: dict[str, float] = {}
    for start in range(0, len(unique), batch_size):
        batch = unique[start : start + batch_size]
        probs = np.asarray(predict_proba(batch), dtype=float).reshape(-1)
        if probs.shape[0] != len(batch):
            raise ValueError(f"predict_proba returned {probs.shape[0]} values for {len(batch)}")
        if not np.all(np.isfinite(probs)):
            raise ValueError("predict_proba returned non-finite probabilities")
        scores.update(zip(batch, probs.tolist(), strict=True))
    return scores


def run_behaviour_suite(
    predict_proba: Callable[[list[str]], np.ndarray], seed: int = 0, batch_size: int = 512
) -> BehaviourReport:
    """The model's pass rate on each check, and the outcome of every case."""
    cases = build_cases(seed)
    texts = [t for c in cases for t in c.texts] + list(CONTEXTS)
    scores = score_texts(predict_proba, texts, batch_size)
    rows = []
    for case in cases:
        probs = [scores[t] for t in case.texts]
        rows.append(
            {
                "check": case.check,
                "case": case.name,
                "texts": SEPARATOR.join(case.texts),
                "probs": SEPARATOR.join(f"{p:.3f}" for p in probs),
                "passed": case_passes(case, probs),
                "direction": case_direction(case, probs),
                "expectation": case.expectation,
            }
        )
    results = pd.DataFrame(rows)
    summary_rows = []
    for check in CHECKS:
        passed = results.loc[results["check"] == check, "passed"]
        summary_rows.append(
            {
                "check": check,
                "cases": int(passed.size),
                "passed": int(passed.sum()),
                "pass_rate": float(passed.mean()) if passed.size else math.nan,
                "description": CHECK_DESCRIPTIONS[check],
            }
        )
    filler = pd.DataFrame({"text": list(CONTEXTS), "prob": [scores[t] for t in CONTEXTS]})
    return BehaviourReport(pd.DataFrame(summary_rows), results, filler)


def filler_sentence(filler: pd.DataFrame) -> str:
    """One sentence on where the model puts the sentiment-free filler, and what that means."""
    low, high = filler["prob"].min(), filler["prob"].max()
    text = (
        f"Sentiment-free filler alone (the {len(filler)} opening sentences the cases start with,"
        f' e.g. "{filler["text"].iloc[0]}") scores P(pos) {low:.2f} to {high:.2f}'
        f" (median {filler['prob'].median():.2f})."
    )
    if high - low >= MAX_DELTA:
        text += (
            " One neutral opening for another moves it by more than invariance allows"
            f" ({MAX_DELTA}), so the rules with a 0.5 bar (negation's not_pos, contrast,"
            " invariance's same label) partly measure the filler; the direction counts below"
            " compare texts that share it."
        )
    return text


def behaviour_metrics(summary: pd.DataFrame) -> dict[str, float]:
    """{"behaviour_<check>_pass_rate": rate} for the five checks (MLflow-metric friendly)."""
    rates = dict(zip(summary["check"], summary["pass_rate"], strict=True))
    missing = [c for c in CHECKS if c not in rates]
    if missing:
        raise ValueError(f"summary lacks checks {missing}")
    return {metric_name(c): float(rates[c]) for c in CHECKS}


def _by_kind(results: pd.DataFrame) -> pd.DataFrame:
    """Per (check, kind), in the order the suite runs them: cases, passed, cases whose rule has a
    direction (`directed`; none for invariance and robustness) and those moved the right way."""
    kinds = results.assign(
        kind=results["case"].map(case_kind),
        directed=results["direction"].notna(),
        right_way=results["direction"].eq(True),
    )
    grouped = kinds.groupby(["check", "kind"], sort=False)
    return pd.DataFrame(
        {
            "cases": grouped.size(),
            "passed": grouped["passed"].sum(),
            "directed": grouped["directed"].sum(),
            "right_way": grouped["right_way"].sum(),
        }
    )


def _by_adjective(results: pd.DataFrame, check: str) -> pd.DataFrame:
    """Per adjective of `check`'s one-adjective cases (`case_adjectives`), in the order of
    `POS_ADJ` then `NEG_ADJ`: cases and passed."""
    rows = results[results["check"] == check]
    adjectives = rows["texts"].str.split(SEPARATOR, regex=False).map(case_adjectives)
    single = adjectives.map(len) == 1
    frame = pd.DataFrame({"adjective": adjectives[single].str[0], "passed": rows["passed"][single]})
    grouped = frame.groupby("adjective")["passed"].agg(cases="size", passed="sum")
    return grouped.reindex([a for a in (*POS_ADJ, *NEG_ADJ) if a in grouped.index])


def behaviour_markdown(
    summary: pd.DataFrame,
    results: pd.DataFrame,
    max_failures_per_check: int = 5,
    filler: pd.DataFrame | None = None,
) -> str:
    """Markdown report: pass-rate table, where the filler alone scores, per-kind breakdown and
    example failures with P(pos)."""
    lines = [
        "## Behavioural tests",
        "",
        f"P(pos) >= {THRESHOLD} reads as positive; invariance/robustness allow |dP| < {MAX_DELTA}.",
        "",
        markdown_table(
            pd.DataFrame(
                {
                    "Check": summary["check"],
                    "Cases": summary["cases"].astype(int),
                    "Passed": summary["passed"].astype(int),
                    "Pass rate": [f"{rate:.1%}" for rate in summary["pass_rate"]],
                    "What it tests": summary["description"],
                }
            ),
            right=("Cases", "Passed", "Pass rate"),
        ),
    ]
    if filler is not None:
        lines += ["", filler_sentence(filler)]
    by_kind = _by_kind(results)
    lines += [
        "",
        "Passed by kind, and where the rule has a direction, moved the right way between the"
        " texts, 0.5 bar or not: near half of a kind is a model blind to its cue, near none one"
        " that reads it backwards (a tie counts as not the right way).",
        "",
    ]
    for check in CHECKS:
        if check not in by_kind.index.get_level_values(0):
            continue
        parts = []
        for kind, r in by_kind.loc[check].iterrows():
            part = f"{kind} {int(r['passed'])}/{int(r['cases'])}"
            if r["directed"]:
                part += f" ({int(r['right_way'])} right way)"
            parts.append(part)
        lines.append(f"- **{check}**: " + ", ".join(parts))
    for check in ("negation", "diminisher"):
        by_adjective = _by_adjective(results, check)
        if not by_adjective.empty:
            parts = [
                f"{a} {int(r['passed'])}/{int(r['cases'])}" for a, r in by_adjective.iterrows()
            ]
            lines.append(f"- **{check}, by adjective**: " + ", ".join(parts))
    for check in CHECKS:
        failed = results[(results["check"] == check) & ~results["passed"]]
        if failed.empty:
            continue
        shown = failed.head(max_failures_per_check)
        lines += ["", f"### {check}: {len(failed)} failed (showing {len(shown)})", ""]
        for row in shown.itertuples(index=False):
            pairs = zip(row.texts.split(SEPARATOR), row.probs.split(SEPARATOR), strict=True)
            scored = "; ".join(f'"{t}" -> P(pos)={p}' for t, p in pairs)
            lines.append(f"- `{row.case}` (expected: {row.expectation}): {scored}")
    return "\n".join(lines) + "\n"
