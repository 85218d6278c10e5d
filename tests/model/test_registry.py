"""Champion promotion: first version wins, a worse one does not, a failure leaves nothing behind."""

from __future__ import annotations

import pandas as pd
import pytest
from mlflow import MlflowClient

from data.prepare import PreparedData
from models import registry
from models.registry import CHAMPION, register_and_promote


@pytest.fixture
def reviews(tiny_prepared) -> pd.DataFrame:
    test, _ = PreparedData.load(tiny_prepared).split("test")
    return test.head(200)


def champion_of(client: MlflowClient, name: str) -> str:
    return str(client.get_model_version_by_alias(name, CHAMPION).version)


def versions(name: str) -> list[str]:
    return sorted(str(v.version) for v in MlflowClient().search_model_versions(f"name='{name}'"))


def test_promotion_rules_and_no_half_registered_version(trained, reviews, monkeypatch) -> None:
    result = trained["dense"]
    name = "imdb-sentiment-dense"
    client = MlflowClient()
    before = versions(name)

    first = register_and_promote(result.run_id, result.model_uri, "dense", reviews)
    champion = champion_of(client, name)
    if first.champion_version is None:
        assert first.promoted and champion == first.version
    assert first.new_score == pytest.approx(first.champion_score or first.new_score)

    # Same model again: as good as the champion, so it takes the alias ("at least as good").
    again = register_and_promote(result.run_id, result.model_uri, "dense", reviews)
    assert again.promoted and champion_of(client, name) == again.version

    # A blocked promotion keeps the alias where it is, but the version stays registered.
    blocked = register_and_promote(
        result.run_id, result.model_uri, "dense", reviews, block_reason="regression alert"
    )
    assert not blocked.promoted and "regression alert" in blocked.reason
    assert champion_of(client, name) == again.version

    # A failure while judging the new version deletes it and leaves the alias alone.
    registered = versions(name)
    monkeypatch.setattr(
        registry, "accuracy_on", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt())
    )
    with pytest.raises(KeyboardInterrupt):
        register_and_promote(result.run_id, result.model_uri, "dense", reviews)
    assert versions(name) == registered
    assert champion_of(client, name) == again.version
    assert len(registered) == len(before) + 3


def test_promotion_judges_against_a_champion_moved_meanwhile(trained, reviews, monkeypatch) -> None:
    """Two runs at once: if the alias moves while this run scores, it is judged against the move."""
    result = trained["dense"]
    name = "imdb-sentiment-dense"
    client = MlflowClient()
    old = register_and_promote(result.run_id, result.model_uri, "dense", reviews).version
    other = register_and_promote(
        result.run_id, result.model_uri, "dense", reviews, promote=False
    ).version
    assert champion_of(client, name) == old
    scores = {old: 0.70, other: 0.90}  # the other run's model is the best; ours (0.80) is between

    def accuracy_on(model_uri: str, _reviews: pd.DataFrame) -> float:
        version = model_uri.rsplit("/", 1)[-1]
        if version == old:  # meanwhile, the other run promotes its version
            client.set_registered_model_alias(name, CHAMPION, other)
        return scores.get(version, 0.80)

    monkeypatch.setattr(registry, "accuracy_on", accuracy_on)
    decision = register_and_promote(result.run_id, result.model_uri, "dense", reviews)
    assert not decision.promoted
    assert decision.champion_version == other and decision.champion_score == 0.90
    assert champion_of(client, name) == other
