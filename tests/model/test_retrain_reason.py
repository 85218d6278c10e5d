"""Retraining with a reason: the "nothing new" rule, and promotion judged on new data too."""

from __future__ import annotations

from mlflow import MlflowClient

from data.prepare import PreparedData
from models.registry import _decide, register_and_promote, unchanged_since_champion
from tests.model.conftest import train_tiny


def test_a_champion_trained_on_the_same_things_means_nothing_new(tiny_prepared) -> None:
    run = train_tiny(tiny_prepared, "dense", register=False, seed=21)
    test, _ = PreparedData.load(tiny_prepared).split("test")
    register_and_promote(run.run_id, run.model_uri, "dense", test)
    recorded = MlflowClient().get_run(run.run_id).data
    defining = {k: recorded.tags[k] for k in ("data_version", "preset", "git_commit")}
    defining |= {k: recorded.params.get(k) for k in ("seed", "limit", "epochs")}
    assert defining["data_version"] == PreparedData.load(tiny_prepared).data_version

    reason = unchanged_since_champion("dense", defining)
    assert reason is not None and defining["data_version"] in reason
    for key, other in (
        ("data_version", "imdb@x+intake.v3"),
        ("preset", "another-preset"),
        ("git_commit", "f00"),
        ("seed", "22"),
        ("limit", "40"),
        ("epochs", "9"),
    ):
        assert unchanged_since_champion("dense", defining | {key: other}) is None
    assert unchanged_since_champion("never-registered", defining) is None


def test_promotion_needs_at_least_the_champions_accuracy_on_old_and_on_new_data() -> None:
    assert _decide(0.91, 0.90, True, None) == (True, "accuracy 0.9100 >= champion's 0.9000")
    promoted, reason = _decide(0.91, 0.90, True, None, (0.80, 0.85))
    assert not promoted and "new-data accuracy 0.8000 < champion's 0.8500" in reason
    promoted, reason = _decide(0.89, 0.90, True, None, (0.90, 0.85))
    assert not promoted and "test accuracy 0.8900 < champion's 0.9000" in reason
    assert _decide(0.91, 0.90, True, None, (0.86, 0.85))[0]
