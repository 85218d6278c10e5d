"""Prefect tasks that analyse one trained model (errors, behaviour) and log it to its MLflow run."""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from prefect import task

from analysis.behaviour.components import run_component_suite
from analysis.behaviour.suite import BehaviourReport, run_behaviour_suite
from analysis.common.artifacts import ANALYSIS_DIR, log_folder, logged_model
from analysis.common.thresholds import DEFAULT_THRESHOLDS, Thresholds
from analysis.errors.analyse import AnalysisSummary, analyse_errors
from analysis.errors.label_issues import attach_texts
from data.prepare import PreparedData
from data.text import tokenize
from models.memory import release_free_memory
from models.pyfunc import predict_logit_parts
from models.scores import SplitScores


@task(name="analyse", retries=0)
def analyse_model(
    run_id: str,
    model_uri: str,
    prepared_dir: str,
    metadata_path: str,
    model_name: str = "model",
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    split: str = "test",
    explain_ids: list[str] | None = None,
    label_probs: str | None = None,
    test_scores: str | None = None,
) -> AnalysisSummary:
    """Analyse the model at `model_uri`, logged by `run_id`, on `split`; artifacts land under `analysis/`.

    `label_probs`: the training split's out-of-sample probabilities (`tasks.data.train_label_probs`),
    so the likely label errors cover the training reviews too. `test_scores`: training's test pass
    (`TrainResult.test_scores`), reused instead of scoring the split again, then deleted.
    """
    model = logged_model(model_uri)
    data = PreparedData.load(prepared_dir)
    samples, ids = data.split(split)
    metadata = pd.read_parquet(metadata_path)
    if not metadata["review_id"].equals(samples["review_id"]):
        raise ValueError(f"text metadata {metadata_path} does not match the {split} split")
    scores = SplitScores.load(test_scores) if test_scores and split == "test" else None
    train_probs = None
    if label_probs is not None:
        train, _ = data.split("train")
        train_probs = attach_texts(pd.read_parquet(label_probs), train["review_id"], train["text"])
    with tempfile.TemporaryDirectory(prefix="analysis-") as tmp:
        out_dir = Path(tmp) / ANALYSIS_DIR
        result = analyse_errors(
            model.net,
            samples,
            ids,
            list(data.vocab.tokens),
            out_dir,
            metadata=metadata[["subjectivity", "polarity"]],
            thresholds=thresholds,
            explain_ids=list(explain_ids or []),
            tokenize=tokenize,
            model_name=model_name,
            temperature=model.temperature,  # fitted at training; 1 for a model logged before
            train_probs=train_probs,
            scores=scores,
        )
        log_folder(run_id, out_dir, ANALYSIS_DIR)
        with mlflow.start_run(run_id=run_id):
            table = result.table.drop(columns=["text"], errors="ignore")
            mlflow.log_table(table, f"{ANALYSIS_DIR}/samples.json")
            mlflow.log_metrics(
                {f"analysis_seconds_{step}": float(sec) for step, sec in result.timings.items()}
            )
            if result.calibration is not None:  # <split>_ece, _brier, their _calibrated, T
                mlflow.log_metrics(result.calibration.metrics(split))
            if result.label_issues is not None and split == "test":
                mlflow.log_metrics(result.label_issues.metrics())  # label_issues_*, test_acc_...
    if test_scores:
        Path(test_scores).unlink(missing_ok=True)  # read once; the analysis logged what it found
    release_free_memory()
    return result.summary(run_id)


@task(name="behaviour-tests", retries=0)
def behaviour_tests(run_id: str, model_uri: str, seed: int = 0) -> BehaviourReport:
    """Run the templated behavioural checks on the logged model; pass rates land in its run.
    A model with the n-gram branch is also scored per part (`behaviour/parts.md`)."""
    model = logged_model(model_uri)

    def predict_proba(texts: list[str]) -> np.ndarray:
        return model.predict(None, pd.DataFrame({"review": texts}))["prob_positive"].to_numpy()

    report = run_behaviour_suite(predict_proba, seed=seed)
    # With the n-gram branch, the suite again per part: which one a check's failures come from.
    parts = None
    if model.net.has_ngram_branch:
        parts = run_component_suite(
            lambda texts: predict_logit_parts(model.net, model.encode(texts)),
            model.temperature,
            seed=seed,
        )
    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics(report.metrics())
        mlflow.log_text(report.markdown(), "behaviour/report.md")
        mlflow.log_text(report.results.to_csv(index=False), "behaviour/results.csv")
        if parts is not None:
            mlflow.log_metrics(parts.metrics())
            mlflow.log_text(parts.markdown(), "behaviour/parts.md")
            mlflow.log_text(parts.pass_rates().to_csv(index=False), "behaviour/parts.csv")
    return report
