"""Prefect tasks that analyse one trained model (errors, behaviour) and log it to its MLflow run."""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from prefect import task

from analysis.behaviour import behaviour_markdown, behaviour_metrics, run_behaviour_suite
from analysis.report import analyse
from data.prepare import PreparedData
from data.text import tokenize
from models.memory import release_free_memory


@task(name="analyse", retries=0)
def analyse_model(
    run_id: str,
    model_uri: str,
    prepared_dir: str,
    metadata_path: str,
    model_name: str = "model",
    split: str = "test",
    explain_ids: list[str] | None = None,
) -> dict:
    """Analyse the model at `model_uri`, logged by `run_id`, on `split`; artifacts land under `analysis/`."""
    model = mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
    data = PreparedData.load(prepared_dir)
    samples, ids = data.split(split)
    metadata = pd.read_parquet(metadata_path)
    if not metadata["review_id"].equals(samples["review_id"]):
        raise ValueError(f"text metadata {metadata_path} does not match the {split} split")
    with tempfile.TemporaryDirectory(prefix="analysis-") as tmp:
        out_dir = Path(tmp) / "analysis"
        result = analyse(
            model.net,
            samples,
            ids,
            list(data.vocab.tokens),
            out_dir,
            metadata=metadata[["subjectivity", "polarity"]],
            explain_ids=list(explain_ids or []),
            tokenize=tokenize,
            model_name=model_name,
        )
        with mlflow.start_run(run_id=run_id):
            mlflow.log_artifacts(str(out_dir), artifact_path="analysis")
            table = result["table"]
            mlflow.log_table(table.drop(columns=["text"], errors="ignore"), "analysis/samples.json")
            mlflow.log_metrics(
                {f"analysis_seconds_{step}": float(sec) for step, sec in result["timings"].items()}
            )
    release_free_memory()
    return {"run_id": run_id, "timings": result["timings"], "n_samples": len(samples)}


@task(name="behaviour-tests", retries=0)
def behaviour_tests(run_id: str, model_uri: str, seed: int = 0) -> dict[str, float]:
    """Run the templated behavioural checks on the logged model; pass rates land in its run."""
    model = mlflow.pyfunc.load_model(model_uri).unwrap_python_model()

    def predict_proba(texts: list[str]) -> np.ndarray:
        return model.predict(None, pd.DataFrame({"review": texts}))["prob_positive"].to_numpy()

    summary, results = run_behaviour_suite(predict_proba, seed=seed)
    metrics = behaviour_metrics(summary)
    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics(metrics)
        mlflow.log_text(behaviour_markdown(summary, results), "behaviour/report.md")
        mlflow.log_text(results.to_csv(index=False), "behaviour/results.csv")
    return metrics
