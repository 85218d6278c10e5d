"""Prefect tasks that compare models: this run vs the previous champion, and dense vs CNN.

Both read the per-sample tables the analysis logged (`analysis/samples.parquet`) back from MLflow,
so a champion trained in an earlier flow run is compared exactly like today's models.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from prefect import task

from analysis.compare_runs import compare_runs, logged_samples, logged_token_importance
from analysis.regression import compare_with_champion
from data.prepare import PreparedData
from models.registry import current_champion, registered_name
from tasks.report import run_url


@task(name="check-regression", retries=0)
def check_regression(run_id: str, arch: str, threshold: float = 0.1) -> dict:
    """Compare a new run with the run of its architecture's current champion, on the same reviews.

    A segment whose loss rose by more than `threshold` (bootstrap lower bound) with at least 2%
    support raises an alert; it is logged to the new run and blocks promotion downstream.
    """
    client = MlflowClient()
    name = registered_name(arch)
    champion = current_champion(client, name)
    if champion is None:
        return {"arch": arch, "alert": False, "compared": False, "reason": "no champion yet"}
    old_run = client.get_model_version(name, champion).run_id
    new, old = logged_samples(run_id), logged_samples(old_run)
    if set(new["review_id"]) != set(old["review_id"]):
        return {
            "arch": arch,
            "alert": False,
            "compared": False,
            "reason": f"champion v{champion} was evaluated on other test reviews; not compared",
        }
    result = compare_with_champion(
        new,
        old,
        threshold=threshold,
        new_importance=logged_token_importance(run_id),
        old_importance=logged_token_importance(old_run),
        name=f"{arch} (new vs v{champion})",
    )
    with mlflow.start_run(run_id=run_id):
        mlflow.log_text(result["markdown"], f"comparison/regression_vs_v{champion}.md")
        mlflow.log_metric("regression_alert", float(result["alert"]))
        if not result["drift"].empty:
            mlflow.log_text(
                result["drift"].to_csv(index=False), f"comparison/token_drift_vs_v{champion}.csv"
            )
        mlflow.log_metrics({f"flips_{k}": float(v) for k, v in result["flips"].items()})
        mlflow.set_tag("regression_alert", str(result["alert"]).lower())
    return {
        "arch": arch,
        "alert": bool(result["alert"]),
        "compared": True,
        "champion_version": champion,
        "reason": result["reason"],
        "flips": {k: int(v) for k, v in result["flips"].items()},
        "matched_clusters": int(result["clusters"]["old_cluster"].notna().sum()),
        "drifted_tokens": result["drift"]["token"].head(5).tolist(),
    }


@task(name="compare-models", retries=0)
def compare_models(
    trained: dict[str, dict], prepared_dir: str, regressions: dict[str, dict]
) -> dict:
    """Dense vs CNN on the same test reviews, logged as a parent run tagged kind=comparison."""
    runs = {arch: trained[arch]["run_id"] for arch in ("dense", "cnn")}
    reviews, _ = PreparedData.load(prepared_dir).split("test")
    alerts = [
        f"{arch}: {'REGRESSION ALERT, promotion blocked: ' if r['alert'] else ''}{r['reason']}"
        for arch, r in regressions.items()
    ]
    links = {f"{arch} analysis": run_url(run_id) for arch, run_id in runs.items()}
    with (
        mlflow.start_run(run_name="dense-vs-cnn", tags={"kind": "comparison"}) as parent,
        tempfile.TemporaryDirectory(prefix="comparison-") as tmp,
    ):
        paths, numbers = compare_runs(
            runs["dense"], runs["cnn"], reviews, Path(tmp), alerts=alerts, links=links
        )
        mlflow.log_artifacts(tmp, artifact_path="comparison")
        mlflow.log_metrics(numbers)
        mlflow.log_params({f"{arch}_run_id": run_id for arch, run_id in runs.items()})
        alert = any(r["alert"] for r in regressions.values())
        mlflow.set_tag("regression_alert", str(alert).lower())
    client = MlflowClient()
    for run_id in runs.values():  # nest both model runs under the comparison in the UI
        client.set_tag(run_id, "mlflow.parentRunId", parent.info.run_id)
    return {
        "run_id": parent.info.run_id,
        "numbers": numbers,
        "files": sorted(p.name for p in paths.values()),
    }
