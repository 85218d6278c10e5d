"""The Prefect summary artifact's markdown, built from the steps' typed results."""

from __future__ import annotations

import pandas as pd

from analysis.behaviour.suite import BehaviourReport
from analysis.paired.champion import RegressionCheck
from analysis.paired.pairing import FlipCounts
from analysis.run_summary import summary_markdown
from models.registry import PromotionDecision
from models.train import TrainResult


def trained(arch: str, run_id: str, acc: float, seconds: float) -> TrainResult:
    metrics = {"test_acc": acc, "test_loss": 0.3, "test_f1": 0.91, "test_roc_auc": 0.95}
    return TrainResult(
        arch=arch,
        run_id=run_id,
        model_uri=f"runs:/{run_id}/model",
        registered_version=None,
        metrics=metrics,
        best_checkpoint="",
        train_seconds=seconds,
        epochs_trained=1,
        n_parameters=100,
    )


def behaviour(negation: float, contrast: float) -> BehaviourReport:
    summary = pd.DataFrame(
        {
            "check": ["negation", "contrast"],
            "cases": [10, 10],
            "passed": [int(negation * 10), int(contrast * 10)],
            "pass_rate": [negation, contrast],
            "description": ["", ""],
        }
    )
    return BehaviourReport(summary, pd.DataFrame())


def test_summary_lists_metrics_behaviour_and_decisions() -> None:
    runs = {
        "dense": trained("dense", "a" * 32, 0.9, 12.0),
        "cnn": trained("cnn", "b" * 32, 0.92, 30.0),
    }
    decisions = {
        "dense": PromotionDecision(
            "dense",
            "imdb-sentiment-dense",
            "3",
            False,
            0.9,
            "2",
            0.91,
            "accuracy 0.9000 < champion's 0.9100",
        ),
        "cnn": PromotionDecision(
            "cnn", "imdb-sentiment-cnn", "1", True, 0.92, None, None, "first registered version"
        ),
    }
    regressions = {
        "dense": RegressionCheck(
            "dense",
            compared=True,
            alert=True,
            reason="loss rose by 0.3 on the longest reviews",
            champion_version="2",
            flips=FlipCounts(
                n=100, both_right=40, both_wrong=8, right_to_wrong=40, wrong_to_right=12
            ),
            matched_clusters=5,
            drifted_tokens=("great", "dull"),
        ),
        "cnn": RegressionCheck.not_compared("cnn", "no champion yet"),
    }
    text = summary_markdown(
        runs,
        decisions,
        lambda run_id: f"http://ui/{run_id}",
        {"dense": behaviour(0.1, 0.0), "cnn": behaviour(0.6, 0.4)},
        regressions=regressions,
    )
    assert "| cnn | 0.9200 |" in text and "http://ui/" + "b" * 32 in text
    assert "v3 not promoted" in text and "v1 promoted" in text
    assert "| contrast | negation |" in text.replace("| model ", "")
    assert "| cnn | 0.40 | 0.60 |" in text
    assert "champion v2 0.9100" in text
    assert (
        "- **dense**: against v2: 40 reviews now wrong, 12 now right; 5 clusters matched; "
        "most drifted words: great, dull. **REGRESSION ALERT**: loss rose" in text
    )
    assert "- **cnn**: not compared: no champion yet" in text
    assert regressions["dense"].blocks_promotion() == regressions["dense"].reason
    assert regressions["dense"].blocks_promotion(allow_regression=True) is None


def test_a_skipped_run_says_why_and_lists_the_data_notes() -> None:
    notes = ["week-01.csv: accepted 330 (32 held out)", "Data version: imdb@c40f74a1+intake.v1"]
    text = summary_markdown({}, {}, lambda run_id: run_id, skipped="nothing new", notes=notes)
    assert "**Skipped: nothing new.**" in text
    assert "- week-01.csv: accepted 330 (32 held out)" in text and "intake.v1" in text
    assert "| model |" not in text
