"""Model registry: register a trained run's model and decide whether it becomes the champion.

A new version takes the `champion` alias only if it scores at least as well as the current
champion on the same test data: both are evaluated here on the reviews passed in, so a champion
trained on other data is judged on today's test set. The first version becomes champion.
Registration happens only after a pipeline run has finished its other work, and a failure while
registering deletes the half-made version, so an interrupted run never moves the alias.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

log = logging.getLogger(__name__)

CHAMPION = "champion"


def registered_name(arch: str) -> str:
    return f"imdb-sentiment-{arch}"


@dataclass(frozen=True)
class PromotionDecision:
    arch: str
    model_name: str
    version: str
    promoted: bool
    new_score: float
    champion_version: str | None
    champion_score: float | None
    reason: str

    def as_dict(self) -> dict:
        return asdict(self)


def accuracy_on(model_uri: str, reviews: pd.DataFrame) -> float:
    """Accuracy of a logged raw-text model on `reviews` (columns `text`, `label`)."""
    model = mlflow.pyfunc.load_model(model_uri)
    predictions = model.predict(pd.DataFrame({"review": reviews["text"].astype(str)}))
    return float(np.mean(predictions["label"].to_numpy() == reviews["label"].to_numpy()))


def current_champion(client: MlflowClient, name: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None  # no such model or no alias yet


def _decide(
    new_score: float, champion_score: float | None, promote: bool, block_reason: str | None
) -> tuple[bool, str]:
    """Whether the new version takes the alias, and why."""
    if not promote:
        return False, "promotion disabled by the flow parameter"
    if block_reason:
        return False, f"blocked: {block_reason}"
    if champion_score is None:
        return True, "first registered version"
    if new_score >= champion_score:
        return True, f"accuracy {new_score:.4f} >= champion's {champion_score:.4f}"
    return False, f"accuracy {new_score:.4f} < champion's {champion_score:.4f}"


def register_and_promote(
    run_id: str,
    model_uri: str,
    arch: str,
    reviews: pd.DataFrame,
    *,
    promote: bool = True,
    block_reason: str | None = None,
) -> PromotionDecision:
    """Register the model logged by `run_id` (at `model_uri`) and move `champion` to it if it is at least as good.

    `block_reason` (a regression alert, say) keeps the alias where it is whatever the scores.
    The decision is logged to the run as tags and metrics.
    """
    client = MlflowClient()
    name = registered_name(arch)
    champion = current_champion(client, name)
    version = str(mlflow.register_model(model_uri, name).version)
    try:
        new_score = accuracy_on(f"models:/{name}/{version}", reviews)
        while True:
            champion_score = (
                accuracy_on(f"models:/{name}/{champion}", reviews) if champion is not None else None
            )
            promoted, reason = _decide(new_score, champion_score, promote, block_reason)
            if not promoted:
                break
            # Another run may have moved the alias while we were scoring: judge against that
            # version instead. What remains of the race is the one call below.
            latest = current_champion(client, name)
            if latest == champion:
                client.set_registered_model_alias(name, CHAMPION, version)
                break
            champion = latest
    except BaseException:
        # Never leave a half-registered version behind (interrupts included).
        client.delete_model_version(name, version)
        raise
    decision = PromotionDecision(
        arch, name, str(version), promoted, new_score, champion, champion_score, reason
    )
    client.set_tag(run_id, "promotion", "promoted" if promoted else "kept champion")
    client.set_tag(run_id, "promotion_reason", reason)
    client.set_tag(run_id, "registered_version", str(version))
    client.log_metric(run_id, "promotion_eval_acc", new_score)
    if champion_score is not None:
        client.log_metric(run_id, "champion_eval_acc", champion_score)
    log.info("%s v%s: %s", name, version, reason)
    return decision
