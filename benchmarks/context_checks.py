"""Where context matters, measured on logged models: behavioural pass rates and loss transfer.

Used by `train_benchmark.py --context`: each trained model is loaded back as logged (the raw-text
pyfunc model, calibration included), scored on the whole test split and on the behavioural suite
(`analysis.behaviour`), and the dense model's `top_k` highest-loss test reviews are scored under
the CNN (`analysis.paired.dense_vs_cnn.compare`), also with the likely label errors (flagged under
both models) set aside. `logged_points` counts the per-batch curve points of a run.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from analysis.behaviour.components import run_component_suite
from analysis.behaviour.suite import run_behaviour_suite
from analysis.common.schema import PROB_EPS
from analysis.paired.dense_vs_cnn import compare, comparison_numbers
from data.prepare import PreparedData
from models.pyfunc import predict_logit_parts, predict_proba

CONTEXT_CHECKS = ("negation", "contrast")


def logged_points(run_id: str, metric: str = "train_loss") -> int:
    """How many points the run's per-batch curve `metric` has in MLflow."""
    return len(MlflowClient().get_metric_history(run_id, metric))


def test_table(model_uri: str, prepared_dir: Path) -> pd.DataFrame:
    """One row per test review (review_id, label, pred, prob_positive, loss, confidence) from the
    logged model's network and temperature, on the prepared ids."""
    model = mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
    frame, ids = PreparedData.load(prepared_dir).split("test")
    model.net.eval()
    prob = predict_proba(model.net, ids, temperature=model.temperature).astype(np.float64)
    labels = frame["label"].to_numpy(dtype=int)
    right = np.clip(np.where(labels == 1, prob, 1.0 - prob), PROB_EPS, 1.0)
    return pd.DataFrame(
        {
            "review_id": frame["review_id"].astype(str).to_numpy(),
            "label": labels,
            "pred": (prob > 0.5).astype(int),
            "prob_positive": prob,
            "loss": -np.log(right),
            "confidence": np.maximum(prob, 1.0 - prob),
        }
    )


def behaviour_rates(model_uri: str) -> dict[str, float]:
    """Pass rate of every behavioural check of the logged raw-text model, of each kind of
    contrast case (`contrast_verdict_last`, `contrast_verdict_first`) and the share of each kind's
    pairs it ordered the right way (`..._right_way`: 0.5 blind to the clause order, 0 backwards);
    with the n-gram branch, each check's rate for the network alone (`<check>_network`) and the
    branch alone (`<check>_branch`, `analysis.behaviour.components`); the lowest and highest P(pos)
    of the sentiment-free filler alone (`filler_min`, `filler_max`)."""
    model = mlflow.pyfunc.load_model(model_uri)

    def predict(texts: list[str]) -> np.ndarray:
        return model.predict(pd.DataFrame({"review": texts}))["prob_positive"].to_numpy()

    report = run_behaviour_suite(predict)
    rates = report.pass_rates | report.kind_rates("contrast")
    assert report.filler is not None
    rates |= {"filler_min": report.filler["prob"].min(), "filler_max": report.filler["prob"].max()}
    raw = model.unwrap_python_model()
    if raw.net.has_ngram_branch:  # each part alone: `<check>_network`, `<check>_branch`
        parts = run_component_suite(
            lambda texts: predict_logit_parts(raw.net, raw.encode(texts)), raw.temperature
        )
        for part in ("network", "branch"):
            rates |= {f"{c}_{part}": r for c, r in parts.reports[part].pass_rates.items()}
    return rates


def context_figures(
    dense_uri: str, cnn_uri: str, prepared_dir: Path, top_k: int = 50
) -> dict[str, float]:
    """Behaviour pass rates of both models, and the CNN's loss reduction on the dense model's
    `top_k` highest-loss test reviews, raw and with the likely label errors set aside."""
    tables = {
        name: test_table(uri, prepared_dir)
        for name, uri in (("dense", dense_uri), ("cnn", cnn_uri))
    }
    numbers = comparison_numbers(compare(tables["dense"], tables["cnn"], {}, {}, top_k=top_k))
    out = {
        "loss_reduction": numbers[f"loss_reduction_dense_top{top_k}_by_cnn"],
        "loss_reduction_clean": numbers.get(
            f"loss_reduction_dense_top{top_k}_by_cnn_clean", np.nan
        ),
        "label_errors_in_top": numbers.get(f"top{top_k}_dense_label_errors", np.nan),
    }
    for name, uri in (("dense", dense_uri), ("cnn", cnn_uri)):
        rates = behaviour_rates(uri)
        for key, rate in rates.items():
            if key.split("_")[0] in (*CONTEXT_CHECKS, "filler"):
                out[f"{name}_{key}"] = rate
    return out
