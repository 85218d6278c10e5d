"""Prefect tasks that compare models: this run vs the previous champion, and dense vs CNN.

Both read the per-review tables the analysis logged (`analysis/samples.parquet`) back from MLflow,
so a champion trained in an earlier flow run is compared exactly like today's models.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from prefect import task

from analysis.common.artifacts import logged_samples, logged_token_importance, run_url
from analysis.common.thresholds import DEFAULT_THRESHOLDS, Thresholds
from analysis.paired.champion import RegressionCheck, compare_with_champion
from analysis.paired.runs import compare_runs
from data.prepare import PreparedData
from models.registry import current_champion, registered_name


@dataclass(frozen=True)
class ModelComparison:
    """The parent MLflow run of a dense-vs-CNN comparison and what it logged."""

    run_id: str
    numbers: dict[str, float]
    files: list[str]


@task(name="check-regression", retries=0)
def check_regression(
    run_id: str, arch: str, thresholds: Thresholds = DEFAULT_THRESHOLDS
) -> RegressionCheck:
    """Compare a new run with the run of its architecture's current champion, on the same reviews.

    A segment whose loss rose by more than `thresholds.loss_rise` (bootstrap lower bound) with at
    least `thresholds.min_support` of the reviews raises an alert; it is logged to the new run and
    blocks promotion downstream.
    """
    client = MlflowClient()
    name = registered_name(arch)
    champion = current_champion(client, name)
    if champion is None:
        return RegressionCheck.not_compared(arch, "no champion yet")
    old_run = client.get_model_version(name, champion).run_id
    new, old = logged_samples(run_id), logged_samples(old_run)
    if set(new["review_id"]) != set(old["review_id"]):
        return RegressionCheck.not_compared(
            arch,
            f"champion v{champion} was evaluated on other test reviews; not compared",
            champion,
        )
    result = compare_with_champion(
        new,
        old,
        thresholds=thresholds,
        new_importance=logged_token_importance(run_id),
        old_importance=logged_token_importance(old_run),
        name=f"{arch} (new vs v{champion})",
    )
    with mlflow.start_run(run_id=run_id):
        mlflow.log_text(result.markdown, f"comparison/regression_vs_v{champion}.md")
        mlflow.log_metric("regression_alert", float(result.alert))
        if not result.drift.empty:
            mlflow.log_text(
                result.drift.to_csv(index=False), f"comparison/token_drift_vs_v{champion}.csv"
            )
        mlflow.log_metrics({f"flips_{k}": float(v) for k, v in result.flips.as_dict().items()})
        mlflow.set_tag("regression_alert", str(result.alert).lower())
    return RegressionCheck.from_comparison(arch, champion, result)


@task(name="compare-models", retries=0)
def compare_models(
    runs: Mapping[str, str],
    prepared_dir: str,
    regressions: Mapping[str, RegressionCheck],
) -> ModelComparison:
    """Two models (arch -> run id, dense first) on the same test reviews, logged as a parent run
    tagged kind=comparison with both model runs nested under it."""
    (name_a, run_a), (name_b, run_b) = runs.items()
    reviews, _ = PreparedData.load(prepared_dir).split("test")
    alerts = [
        f"{arch}: {'REGRESSION ALERT, promotion blocked: ' if r.alert else ''}{r.reason}"
        for arch, r in regressions.items()
    ]
    links = {f"{arch} analysis": run_url(run_id) for arch, run_id in runs.items()}
    with (
        mlflow.start_run(run_name=f"{name_a}-vs-{name_b}", tags={"kind": "comparison"}) as parent,
        tempfile.TemporaryDirectory(prefix="comparison-") as tmp,
    ):
        written = compare_runs(run_a, run_b, reviews, Path(tmp), alerts=alerts, links=links)
        mlflow.log_artifacts(tmp, artifact_path="comparison")
        mlflow.log_metrics(written.numbers)
        mlflow.log_params({f"{arch}_run_id": run_id for arch, run_id in runs.items()})
        alert = any(r.alert for r in regressions.values())
        mlflow.set_tag("regression_alert", str(alert).lower())
        # The run's description in the MLflow UI: where to start reading.
        report = f"{run_url(parent.info.run_id)}/artifacts/comparison/report.html"
        mlflow.set_tag(
            "mlflow.note.content",
            f"{name_a} vs {name_b} on the same {len(reviews):,} test reviews. Read first: "
            f"[comparison/report.html]({report}). "
            + " · ".join(f"[{label}]({url})" for label, url in links.items()),
        )
    client = MlflowClient()
    for run_id in runs.values():  # nest both model runs under the comparison in the UI
        client.set_tag(run_id, "mlflow.parentRunId", parent.info.run_id)
    return ModelComparison(
        parent.info.run_id, written.numbers, sorted(p.name for p in written.paths.values())
    )
