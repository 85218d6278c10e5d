"""The summary of one pipeline run in Markdown: each model's test metrics and MLflow run, its
behavioural pass rates, how it compares with its champion, and the promotion decisions.

Pure rendering of the steps' typed results; `tasks.summary` publishes it as a Prefect artifact.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import pandas as pd

from analysis.behaviour.suite import BehaviourReport
from analysis.common.render import fmt_number, markdown_table
from analysis.paired.champion import RegressionCheck
from models.registry import PromotionDecision
from models.train import TrainResult

NAN = float("nan")


def summary_markdown(
    trained: Mapping[str, TrainResult],
    decisions: Mapping[str, PromotionDecision],
    run_url: Callable[[str], str],
    behaviour: Mapping[str, BehaviourReport] | None = None,
    comparison_run: str | None = None,
    regressions: Mapping[str, RegressionCheck] | None = None,
    skipped: str | None = None,
    notes: Sequence[str] = (),
) -> str:
    """Markdown for the run; `run_url(run_id)` links a run in the MLflow UI. `skipped`: why
    nothing was trained; `notes`: one line each about the data (intake, version, drift)."""
    data = ["", "## Data", "", *(f"- {line}" for line in notes)] if notes else []
    if skipped:
        return "\n".join(["# imdb-sentiment run", "", f"**Skipped: {skipped}.**", *data]) + "\n"
    rows = []
    for arch, result in trained.items():
        decision = decisions.get(arch)
        verdict = (
            f"v{decision.version} {'promoted' if decision.promoted else 'not promoted'}"
            if decision
            else "not registered"
        )
        metrics = {
            label: fmt_number(result.metrics.get(key, NAN), 4)
            for key, label in (
                ("test_acc", "test acc"),
                ("test_loss", "test loss"),
                ("test_f1", "test F1"),
                ("test_roc_auc", "ROC AUC"),
            )
        }
        rows.append(
            {"model": arch}
            | metrics
            | {
                "train s": f"{result.train_seconds:.0f}",
                "MLflow run": f"[{result.run_id[:8]}]({run_url(result.run_id)})",
                "champion": verdict,
            }
        )
    lines = ["# imdb-sentiment run", "", markdown_table(pd.DataFrame(rows))]
    if comparison_run:
        lines += ["", f"Dense vs CNN comparison: [{comparison_run[:8]}]({run_url(comparison_run)})"]
    if behaviour:
        checks = sorted({check for report in behaviour.values() for check in report.pass_rates})
        rates = pd.DataFrame(
            [
                {"model": arch} | {c: fmt_number(report.pass_rates[c], 2) for c in checks}
                for arch, report in behaviour.items()
            ]
        )
        lines += ["", "## Behavioural checks (pass rate)", "", markdown_table(rates)]
    if regressions:
        lines += ["", "## This run vs the champion", ""]
        for arch, check in regressions.items():
            lines.append(f"- **{arch}**: {regression_line(check)}")
    lines += data
    lines += ["", "## Promotion decisions", ""]
    for arch, d in decisions.items():
        champion = (
            f", champion v{d.champion_version} {d.champion_score:.4f})"
            if d.champion_score is not None
            else ")"
        )
        lines.append(
            f"- **{arch}** ({d.model_name} v{d.version}): {d.reason} (new {d.new_score:.4f}"
            + champion
        )
    return "\n".join(lines) + "\n"


def regression_line(check: RegressionCheck) -> str:
    """One line of the regression check: flips, matched clusters, drift, verdict."""
    if not check.compared or check.flips is None:
        return f"not compared: {check.reason}"
    parts = [
        f"against v{check.champion_version}: {check.flips.right_to_wrong} reviews now wrong, "
        f"{check.flips.wrong_to_right} now right",
        f"{check.matched_clusters} clusters matched",
    ]
    if check.drifted_tokens:
        parts.append("most drifted words: " + ", ".join(check.drifted_tokens))
    verdict = "**REGRESSION ALERT**: " if check.alert else ""
    return "; ".join(parts) + f". {verdict}{check.reason}"
