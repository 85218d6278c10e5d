"""A planted degraded model raises a regression alert against the champion and is not promoted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from analysis.common.artifacts import IMPORTANCE_ARTIFACT, SAMPLES_ARTIFACT, logged_samples
from data.prepare import PreparedData
from models.registry import CHAMPION, register_and_promote
from tasks.comparison import check_regression
from tests.model.conftest import train_tiny


def fake_samples(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, n)
    prob = np.clip(np.where(label == 1, 0.8, 0.2) + rng.normal(0, 0.05, n), 0.01, 0.99)
    return pd.DataFrame(
        {
            "review_id": [f"test/x/{i}_1" for i in range(n)],
            "label": label,
            "rating": rng.integers(1, 11, n).astype(float),
            "pred": (prob > 0.5).astype(int),
            "prob_positive": prob,
            "loss": -np.log(np.where(label == 1, prob, 1 - prob)),
            "confidence": np.abs(prob - 0.5) * 2,
            "length": rng.integers(5, 500, n),
            "oov_count": rng.integers(0, 20, n),
            "oov_ratio": rng.random(n) * 0.1,
            "subjectivity": rng.random(n),
            "polarity": rng.random(n) * 2 - 1,
            "x": rng.random(n),
            "y": rng.random(n),
            "cluster": rng.integers(0, 3, n),
        }
    )


def degrade_long_reviews(table: pd.DataFrame) -> pd.DataFrame:
    """The planted regression: confidently wrong on the longest fifth of the reviews."""
    worse = table.copy()
    long = worse["length"] >= worse["length"].quantile(0.8)
    worse.loc[long, "prob_positive"] = 1 - worse.loc[long, "prob_positive"]
    worse.loc[long, "pred"] = 1 - worse.loc[long, "pred"]
    p = worse["prob_positive"].to_numpy()
    worse["loss"] = -np.log(np.where(worse["label"] == 1, p, 1 - p))
    return worse


def log_table(run_id: str, table: pd.DataFrame, artifact: str, tmp_path) -> None:
    folder, name = artifact.rsplit("/", 1)
    path = tmp_path / run_id / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if name.endswith(".csv"):
        table.to_csv(path, index=False)
    else:
        table.to_parquet(path, index=False)
    MlflowClient().log_artifact(run_id, str(path), artifact_path=folder)


def importance(scores: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame({"token": list(scores), "count": 5, "importance": list(scores.values())})


@pytest.mark.slow
def test_planted_degraded_model_raises_an_alert_and_keeps_the_champion(
    tiny_prepared, tmp_path
) -> None:
    champion = train_tiny(tiny_prepared, "cnn", register=False, seed=11)
    degraded = train_tiny(tiny_prepared, "cnn", register=False, seed=12)
    table = fake_samples()
    log_table(champion.run_id, table, SAMPLES_ARTIFACT, tmp_path)
    log_table(degraded.run_id, degrade_long_reviews(table), SAMPLES_ARTIFACT, tmp_path)
    # Planted drift: "great" changed sides, "dull" moved a little, the rest stayed.
    before = {"great": 0.5, "awful": -0.5, "dull": -0.2, "plot": 0.0}
    after = {"great": -0.3, "awful": -0.5, "dull": -0.3, "plot": 0.0}
    log_table(champion.run_id, importance(before), IMPORTANCE_ARTIFACT, tmp_path)
    log_table(degraded.run_id, importance(after), IMPORTANCE_ARTIFACT, tmp_path)
    assert logged_samples(degraded.run_id)["review_id"].tolist() == table["review_id"].tolist()

    reviews, _ = PreparedData.load(tiny_prepared).split("test")
    first = register_and_promote(champion.run_id, champion.model_uri, "cnn", reviews)
    client = MlflowClient()
    assert (
        str(client.get_model_version_by_alias("imdb-sentiment-cnn", CHAMPION).version)
        == first.version
    )

    verdict = check_regression.fn(degraded.run_id, "cnn")
    assert verdict.flips is not None
    assert verdict.compared and verdict.alert
    assert "length" in verdict.reason
    # Planted: the longest fifth flipped. Right->wrong and wrong->right both show up as flips.
    long = table["length"] >= table["length"].quantile(0.8)
    right = table["pred"] == table["label"]
    assert verdict.flips.right_to_wrong == int((long & right).sum())
    assert verdict.flips.wrong_to_right == int((long & ~right).sum())
    assert verdict.matched_clusters == table["cluster"].nunique()
    assert client.get_run(degraded.run_id).data.tags["regression_alert"] == "true"
    assert verdict.drifted_tokens[:2] == ("great", "dull")
    drift_csv = f"comparison/token_drift_vs_v{first.version}.csv"
    assert drift_csv in {a.path for a in client.list_artifacts(degraded.run_id, "comparison")}

    blocked = register_and_promote(
        degraded.run_id, degraded.model_uri, "cnn", reviews, block_reason=verdict.blocks_promotion()
    )
    assert not blocked.promoted
    assert (
        str(client.get_model_version_by_alias("imdb-sentiment-cnn", CHAMPION).version)
        == first.version
    )

    # The champion compared with itself raises nothing.
    same = check_regression.fn(champion.run_id, "cnn")
    assert same.compared and not same.alert and same.blocks_promotion() is None
