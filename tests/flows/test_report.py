"""The Prefect summary artifact's markdown."""

from tasks.report import summary_markdown


def test_summary_lists_metrics_behaviour_and_decisions(monkeypatch) -> None:
    monkeypatch.setattr("tasks.report.run_url", lambda run_id: f"http://ui/{run_id}")
    metrics = {"test_acc": 0.9, "test_loss": 0.3, "test_f1": 0.91, "test_roc_auc": 0.95}
    trained = {
        "dense": {"metrics": metrics, "train_seconds": 12.0, "run_id": "a" * 32},
        "cnn": {
            "metrics": {**metrics, "test_acc": 0.92},
            "train_seconds": 30.0,
            "run_id": "b" * 32,
        },
    }
    decisions = {
        "dense": {
            "version": "3",
            "promoted": False,
            "model_name": "imdb-sentiment-dense",
            "reason": "accuracy 0.9000 < champion's 0.9100",
            "new_score": 0.9,
            "champion_version": "2",
            "champion_score": 0.91,
        },
        "cnn": {
            "version": "1",
            "promoted": True,
            "model_name": "imdb-sentiment-cnn",
            "reason": "first registered version",
            "new_score": 0.92,
            "champion_version": None,
            "champion_score": None,
        },
    }
    behaviour = {
        "dense": {"behaviour_negation_pass_rate": 0.1, "behaviour_contrast_pass_rate": 0.0},
        "cnn": {"behaviour_negation_pass_rate": 0.6, "behaviour_contrast_pass_rate": 0.4},
    }
    regressions = {
        "dense": {
            "compared": True,
            "alert": True,
            "champion_version": "2",
            "flips": {"right_to_wrong": 40, "wrong_to_right": 12},
            "matched_clusters": 5,
            "drifted_tokens": ["great", "dull"],
            "reason": "loss rose by 0.3 on the longest reviews",
        },
        "cnn": {"compared": False, "alert": False, "reason": "no champion yet"},
    }
    text = summary_markdown(trained, decisions, behaviour, regressions=regressions)
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
