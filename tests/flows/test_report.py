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
    text = summary_markdown(trained, decisions, behaviour)
    assert "| cnn | 0.9200 |" in text and "http://ui/" + "b" * 32 in text
    assert "v3 not promoted" in text and "v1 promoted" in text
    assert "| contrast | negation |" in text.replace("| model ", "")
    assert "| cnn | 0.40 | 0.60 |" in text
    assert "champion v2 0.9100" in text
