"""Model registry: register a trained run's model and decide whether it becomes the champion.

A new version takes the `champion` alias only if it scores at least as well as the current
champion on the same test data: both are evaluated here on the reviews passed in, so a champion
trained on other data is judged on today's test set. The first version becomes champion.
Registration happens only after a pipeline run has finished its other work, and a failure while
registering deletes the half-made version, so an interrupted run never moves the alias.

The decision is recorded on the version itself, crash-safely: the version is created with the tags
`promotion_decision=pending` and its owner process (models/recovery.py) in one write, and
`promotion_decision` becomes `promoted` or `not_promoted` only after the alias has been settled.
A process killed in between (SIGKILL: no handler runs) leaves a pending version;
`recover_interrupted_versions`, at the next flow start and before every registration, finds
those whose owner is gone and marks them `interrupted` (never champion), or `promoted` if the
alias already points at them (the kill came after the alias moved).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import timedelta

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from models.recovery import MAX_AGE, ProcessOwner, abandoned_reason

log = logging.getLogger(__name__)

CHAMPION = "champion"
DECISION_TAG = "promotion_decision"
PENDING, PROMOTED, NOT_PROMOTED, INTERRUPTED = "pending", "promoted", "not_promoted", "interrupted"


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
    # Accuracy on the held-out rows of new intake batches (None: no new data to judge on).
    new_data_score: float | None = None
    champion_new_data_score: float | None = None

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
    new_score: float,
    champion_score: float | None,
    promote: bool,
    block_reason: str | None,
    new_data: tuple[float, float] | None = None,
) -> tuple[bool, str]:
    """Whether the new version takes the alias, and why. `new_data`: (new, champion) accuracy on
    the held-out new reviews; the candidate must be at least as good on both sets."""
    if not promote:
        return False, "promotion disabled by the flow parameter"
    if block_reason:
        return False, f"blocked: {block_reason}"
    if champion_score is None:
        return True, "first registered version"
    on_test = f"test accuracy {new_score:.4f} {'>=' if new_score >= champion_score else '<'} champion's {champion_score:.4f}"
    if new_data is None:
        return new_score >= champion_score, on_test.removeprefix("test ")
    mine, theirs = new_data
    on_new = (
        f"new-data accuracy {mine:.4f} {'>=' if mine >= theirs else '<'} champion's {theirs:.4f}"
    )
    return new_score >= champion_score and mine >= theirs, f"{on_test}; {on_new}"


def register_and_promote(
    run_id: str,
    model_uri: str,
    arch: str,
    reviews: pd.DataFrame,
    *,
    promote: bool = True,
    block_reason: str | None = None,
    new_reviews: pd.DataFrame | None = None,
) -> PromotionDecision:
    """Register the model logged by `run_id` (at `model_uri`) and move `champion` to it if it is at least as good.

    `new_reviews` (the held-out rows of new intake batches): judged there too, reported apart
    from the test split, so a model worse on old or on new data is not promoted.

    `block_reason` (a regression alert, say) keeps the alias where it is whatever the scores.
    The decision is recorded on the version (tags, `promotion_decision` last) and on the run.
    """
    client = MlflowClient()
    name = registered_name(arch)
    recover_interrupted_versions(name, client)  # versions other, dead processes left undecided
    champion = current_champion(client, name)
    pending = {DECISION_TAG: PENDING, **ProcessOwner.current().as_tags()}
    version = str(mlflow.register_model(model_uri, name, tags=pending).version)
    try:
        judge_new = new_reviews is not None and len(new_reviews) > 0
        new_score = accuracy_on(f"models:/{name}/{version}", reviews)
        mine = accuracy_on(f"models:/{name}/{version}", new_reviews) if judge_new else None
        theirs = None
        while True:
            champion_score = (
                accuracy_on(f"models:/{name}/{champion}", reviews) if champion is not None else None
            )
            if judge_new and champion is not None:
                theirs = accuracy_on(f"models:/{name}/{champion}", new_reviews)
            pair = (mine, theirs) if mine is not None and theirs is not None else None
            promoted, reason = _decide(new_score, champion_score, promote, block_reason, pair)
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
        _discard(client, name, version)
        raise
    decision = PromotionDecision(
        arch,
        name,
        str(version),
        promoted,
        new_score,
        champion,
        champion_score,
        reason,
        mine,
        theirs,
    )
    _record(client, decision, run_id)
    log.info("%s v%s: %s", name, version, reason)
    return decision


def _discard(client: MlflowClient, name: str, version: str) -> None:
    """Delete a version whose decision failed; if even that fails, mark it interrupted. Never
    raises: the caller re-raises the failure that matters."""
    try:
        client.delete_model_version(name, version)
        return
    except Exception:
        log.exception("could not delete %s v%s; marking it %s", name, version, INTERRUPTED)
    try:
        client.set_model_version_tag(name, version, "promotion_reason", "registration failed")
        client.set_model_version_tag(name, version, DECISION_TAG, INTERRUPTED)
    except Exception:  # still pending: the next recovery, once this process is gone, marks it
        log.exception("could not mark %s v%s %s", name, version, INTERRUPTED)


def _record(client: MlflowClient, decision: PromotionDecision, run_id: str) -> None:
    """The decision on the version (`promotion_decision` written last) and on the run."""
    name, version = decision.model_name, decision.version
    version_tags = {
        "promotion_reason": decision.reason,
        "promotion_eval_acc": f"{decision.new_score:.6f}",
        "champion_version": decision.champion_version or "",
        "champion_eval_acc": (
            "" if decision.champion_score is None else f"{decision.champion_score:.6f}"
        ),
        DECISION_TAG: PROMOTED if decision.promoted else NOT_PROMOTED,
    }
    for key, value in version_tags.items():
        client.set_model_version_tag(name, version, key, value)
    client.set_tag(run_id, "promotion", "promoted" if decision.promoted else "kept champion")
    client.set_tag(run_id, "promotion_reason", decision.reason)
    client.set_tag(run_id, "registered_version", str(version))
    client.log_metric(run_id, "promotion_eval_acc", decision.new_score)
    if decision.champion_score is not None:
        client.log_metric(run_id, "champion_eval_acc", decision.champion_score)
    if decision.new_data_score is not None:
        client.log_metric(run_id, "promotion_eval_acc_new_data", decision.new_data_score)
    if decision.champion_new_data_score is not None:
        client.log_metric(run_id, "champion_eval_acc_new_data", decision.champion_new_data_score)


def recover_interrupted_versions(
    name: str, client: MlflowClient | None = None, *, max_age: timedelta = MAX_AGE
) -> dict[str, str]:
    """Settle the versions of `name` left `pending` by a process that is gone: {version: decision}.

    A version the `champion` alias points at was promoted (the kill came after the alias moved):
    its record is completed as `promoted`. Any other is marked `interrupted` and never becomes
    champion: its flow run's regression verdict is lost, so it is not judged again here.
    Versions of live processes (a run registering right now) and versions without the tag
    (registered outside the flow, by `python -m models.train`) are left alone.
    """
    client = client or MlflowClient()
    try:
        versions = client.search_model_versions(f"name='{name}'")
    except MlflowException:
        return {}
    champion = current_champion(client, name)
    settled: dict[str, str] = {}
    for model_version in versions:
        version = str(model_version.version)
        tags = model_version.tags or {}
        if tags.get(DECISION_TAG) != PENDING:
            continue
        why = abandoned_reason(
            ProcessOwner.from_tags(tags), model_version.creation_timestamp, max_age=max_age
        )
        if why is None:
            continue
        if version == champion:
            decision = PROMOTED
            reason = f"recovered: {why}, but the {CHAMPION} alias had already moved here"
        else:
            decision = INTERRUPTED
            reason = f"registration interrupted before a promotion decision: {why}"
        client.set_model_version_tag(name, version, "promotion_reason", reason)
        client.set_model_version_tag(name, version, DECISION_TAG, decision)
        if model_version.run_id:
            try:
                client.set_tag(model_version.run_id, "promotion", decision)
                client.set_tag(model_version.run_id, "promotion_reason", reason)
            except MlflowException:  # the run was deleted: the version's record is what counts
                pass
        log.warning("%s v%s marked %s: %s", name, version, decision, reason)
        settled[version] = decision
    return settled


def unchanged_since_champion(arch: str, current: dict[str, str]) -> str | None:
    """Why retraining `arch` would learn nothing new, or None when something changed.

    `current` holds what defines a model, by the names its training run records them under: tags
    (data_version, preset, git_commit) or params (seed, limit, epochs, as MLflow's strings). No
    champion, or any value that differs, means something to learn.
    """
    client = MlflowClient()
    name = registered_name(arch)
    champion = current_champion(client, name)
    if champion is None:
        return None
    run = client.get_run(client.get_model_version(name, champion).run_id).data
    recorded = {**run.params, **run.tags}
    changed = [key for key, value in current.items() if recorded.get(key) != value]
    if changed:
        return None
    return f"{name} v{champion} was trained on the same " + ", ".join(
        f"{key} ({value[:12] if key == 'git_commit' else value})" for key, value in current.items()
    )
