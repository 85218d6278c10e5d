"""Prefect tasks that compare models: this run vs the previous champion, and dense vs CNN.

Both read the per-sample tables the analysis logged (`analysis/samples.parquet`) back from MLflow,
so a champion trained in an earlier flow run is compared exactly like today's models.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from prefect import task

from analysis.attributions import POSITIVE, explain, explain_reviews
from analysis.compare import compare, phrase_scores, write_comparison
from analysis.heatmap import render_heatmap_html, side_by_side
from analysis.regression import compare_with_champion
from data.prepare import PreparedData
from data.text import tokenize
from models.registry import current_champion, registered_name
from tasks.report import run_url

SAMPLES_ARTIFACT = "analysis/samples.parquet"


def logged_samples(run_id: str) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=SAMPLES_ARTIFACT, dst_path=tmp
        )
        return pd.read_parquet(path)


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
        new, old, threshold=threshold, name=f"{arch} (new vs v{champion})"
    )
    with mlflow.start_run(run_id=run_id):
        mlflow.log_text(result["markdown"], f"comparison/regression_vs_v{champion}.md")
        mlflow.log_metric("regression_alert", float(result["alert"]))
        mlflow.log_metrics({f"flips_{k}": float(v) for k, v in result["flips"].items()})
        mlflow.set_tag("regression_alert", str(result["alert"]).lower())
    return {
        "arch": arch,
        "alert": bool(result["alert"]),
        "compared": True,
        "champion_version": champion,
        "reason": result["reason"],
        "flips": {k: int(v) for k, v in result["flips"].items()},
    }


def _phrase_table(net, ids: np.ndarray, vocab: list[str]) -> pd.DataFrame:
    attributions, _ = explain(net, ids, POSITIVE, progress=False)
    return phrase_scores(ids, attributions, vocab)


@task(name="compare-models", retries=0)
def compare_models(
    trained: dict[str, dict],
    prepared_dir: str,
    behaviour: dict[str, dict[str, float]],
    regressions: dict[str, dict],
    heatmap_reviews: int = 10,
    phrase_reviews: int = 200,
) -> dict:
    """Dense vs CNN on the same test reviews, logged as a parent run tagged kind=comparison."""
    a, b = "dense", "cnn"
    runs = {arch: trained[arch]["run_id"] for arch in (a, b)}
    tables = {arch: logged_samples(run_id) for arch, run_id in runs.items()}
    models = {
        arch: mlflow.pyfunc.load_model(trained[arch]["model_uri"]).unwrap_python_model()
        for arch in (a, b)
    }
    data = PreparedData.load(prepared_dir)
    test, ids = data.split("test")
    vocab = list(data.vocab.tokens)
    row_of = {rid: i for i, rid in enumerate(test["review_id"])}
    texts = dict(zip(test["review_id"], test["text"], strict=True))

    # Phrases where the two models disagree most are where context matters.
    joined = tables[a].merge(tables[b], on="review_id", suffixes=(f"_{a}", f"_{b}"))
    gap = (joined[f"prob_positive_{a}"] - joined[f"prob_positive_{b}"]).abs()
    chosen = joined.loc[gap.sort_values(ascending=False).index[:phrase_reviews], "review_id"]
    phrase_ids = ids[[row_of[r] for r in chosen]]
    comparison = compare(
        tables[a],
        tables[b],
        trained[a]["metrics"]
        | {
            "train_seconds": trained[a]["train_seconds"],
            "n_parameters": trained[a]["n_parameters"],
        },
        trained[b]["metrics"]
        | {
            "train_seconds": trained[b]["train_seconds"],
            "n_parameters": trained[b]["n_parameters"],
        },
        a,
        b,
        phrases_a=_phrase_table(models[a].net, phrase_ids, vocab),
        phrases_b=_phrase_table(models[b].net, phrase_ids, vocab),
        texts=texts,
    )

    # Side-by-side heat-maps of each model's worst reviews, explained by both models.
    worst = pd.concat(
        [tables[arch].nlargest(heatmap_reviews // 2, "loss")["review_id"] for arch in (a, b)]
    ).drop_duplicates()
    rows = [row_of[r] for r in worst]
    views = []
    for arch in (a, b):
        table = tables[arch].set_index("review_id").loc[worst]
        views.append(
            explain_reviews(
                models[arch].net,
                ids[rows],
                table["prob_positive"].to_numpy(),
                table["loss"].to_numpy(),
                test["length"].to_numpy()[rows],
                vocab,
                model_name=arch,
                texts=[texts[r] for r in worst],
                tokenize=tokenize,
                progress=False,
            )
        )
    heatmaps = render_heatmap_html(
        side_by_side(list(worst), test["label"].to_numpy()[rows].tolist(), *views),
        title="Each model's highest-loss reviews, explained by both",
    )
    behaviour_table = pd.DataFrame(
        {
            "check": [
                k.removeprefix("behaviour_").removesuffix("_pass_rate") for k in behaviour[a]
            ],
            a: list(behaviour[a].values()),
            b: [behaviour[b][k] for k in behaviour[a]],
        }
    )
    alerts = [
        f"{arch}: {'REGRESSION ALERT, promotion blocked: ' if r['alert'] else ''}{r['reason']}"
        for arch, r in regressions.items()
    ]
    links = {f"{arch} analysis": run_url(run_id) for arch, run_id in runs.items()}

    with mlflow.start_run(run_name="dense-vs-cnn", tags={"kind": "comparison"}) as parent:
        with tempfile.TemporaryDirectory(prefix="comparison-") as tmp:
            paths, numbers = write_comparison(
                Path(tmp), comparison, heatmaps, behaviour_table, links, alerts=alerts
            )
            mlflow.log_artifacts(tmp, artifact_path="comparison")
        mlflow.log_metrics(numbers)
        mlflow.log_params({f"{arch}_run_id": run_id for arch, run_id in runs.items()})
        mlflow.set_tag(
            "regression_alert", str(any(r["alert"] for r in regressions.values())).lower()
        )
        parent_id = parent.info.run_id
    client = MlflowClient()
    for run_id in runs.values():  # nest both model runs under the comparison in the UI
        client.set_tag(run_id, "mlflow.parentRunId", parent_id)
    return {
        "run_id": parent_id,
        "numbers": numbers,
        "files": sorted(p.name for p in paths.values()),
    }
