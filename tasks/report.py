"""Prefect task that publishes the run summary as a markdown artifact."""

from __future__ import annotations

import mlflow
from mlflow import MlflowClient
from prefect import task
from prefect.artifacts import create_markdown_artifact

LOCAL_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves a local store by default


def run_url(run_id: str) -> str:
    """Link to a run in the MLflow UI (the tracking server's own, or a local `mlflow ui`)."""
    uri = mlflow.get_tracking_uri()
    base = uri.rstrip("/") if uri.startswith("http") else LOCAL_UI
    experiment_id = MlflowClient().get_run(run_id).info.experiment_id
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"


def summary_markdown(
    trained: dict[str, dict],
    decisions: dict[str, dict],
    behaviour: dict[str, dict] | None = None,
    comparison_run: str | None = None,
    regressions: dict[str, dict] | None = None,
) -> str:
    """Both models' test metrics, links to their MLflow runs, this run vs the champion, and the
    promotion decisions."""
    lines = [
        "# imdb-sentiment run",
        "",
        "| model | test acc | test loss | test F1 | ROC AUC | train s | MLflow run | champion |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for arch, result in trained.items():
        m = result["metrics"]
        decision = decisions.get(arch, {})
        verdict = (
            f"v{decision['version']} {'promoted' if decision['promoted'] else 'not promoted'}"
            if decision
            else "not registered"
        )
        lines.append(
            f"| {arch} | {m.get('test_acc', float('nan')):.4f} | {m.get('test_loss', float('nan')):.4f}"
            f" | {m.get('test_f1', float('nan')):.4f} | {m.get('test_roc_auc', float('nan')):.4f}"
            f" | {result['train_seconds']:.0f} | [{result['run_id'][:8]}]({run_url(result['run_id'])})"
            f" | {verdict} |"
        )
    if comparison_run:
        lines += ["", f"Dense vs CNN comparison: [{comparison_run[:8]}]({run_url(comparison_run)})"]
    if behaviour:
        checks = sorted({key for rates in behaviour.values() for key in rates})
        names = [c.removeprefix("behaviour_").removesuffix("_pass_rate") for c in checks]
        lines += ["", "## Behavioural checks (pass rate)", ""]
        lines += ["| model | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for arch, rates in behaviour.items():
            lines.append(f"| {arch} | " + " | ".join(f"{rates[c]:.2f}" for c in checks) + " |")
    if regressions:
        lines += ["", "## This run vs the champion", ""]
        for arch, check in regressions.items():
            lines.append(f"- **{arch}**: {_regression_line(check)}")
    lines += ["", "## Promotion decisions", ""]
    for arch, decision in decisions.items():
        champ = decision["champion_score"]
        lines.append(
            f"- **{arch}** ({decision['model_name']} v{decision['version']}): {decision['reason']}"
            f" (new {decision['new_score']:.4f}"
            + (
                f", champion v{decision['champion_version']} {champ:.4f})"
                if champ is not None
                else ")"
            )
        )
    return "\n".join(lines) + "\n"


def _regression_line(check: dict) -> str:
    """One line of `check-regression`'s result: flips, matched clusters, drift, verdict."""
    if not check.get("compared"):
        return f"not compared: {check['reason']}"
    flips = check["flips"]
    parts = [
        f"against v{check['champion_version']}: "
        f"{flips.get('right_to_wrong', 0)} reviews now wrong, "
        f"{flips.get('wrong_to_right', 0)} now right",
        f"{check['matched_clusters']} clusters matched",
    ]
    if check.get("drifted_tokens"):
        parts.append("most drifted words: " + ", ".join(check["drifted_tokens"]))
    verdict = "**REGRESSION ALERT**: " if check["alert"] else ""
    return "; ".join(parts) + f". {verdict}{check['reason']}"


@task(name="publish-summary")
def publish_summary(
    trained: dict[str, dict],
    decisions: dict[str, dict],
    behaviour: dict[str, dict] | None = None,
    comparison_run: str | None = None,
    regressions: dict[str, dict] | None = None,
) -> str:
    markdown = summary_markdown(trained, decisions, behaviour, comparison_run, regressions)
    create_markdown_artifact(
        markdown, key="imdb-sentiment-summary", description="Test metrics and promotion"
    )
    return markdown
