"""Prefect task that publishes the run summary (`analysis.run_summary`) as a markdown artifact."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from prefect import task
from prefect.artifacts import create_markdown_artifact

from analysis.behaviour.suite import BehaviourReport
from analysis.common.artifacts import run_url
from analysis.paired.champion import RegressionCheck
from analysis.run_summary import summary_markdown
from models.registry import PromotionDecision
from models.train import TrainResult


@task(name="publish-summary")
def publish_summary(
    trained: Mapping[str, TrainResult],
    decisions: Mapping[str, PromotionDecision],
    behaviour: Mapping[str, BehaviourReport] | None = None,
    comparison_run: str | None = None,
    regressions: Mapping[str, RegressionCheck] | None = None,
    *,
    skipped: str | None = None,
    notes: Sequence[str] = (),
) -> str:
    markdown = summary_markdown(
        trained, decisions, run_url, behaviour, comparison_run, regressions, skipped, notes
    )
    create_markdown_artifact(
        markdown, key="imdb-sentiment-summary", description="Test metrics and promotion"
    )
    return markdown
