"""Prefect task that registers a run's model and applies the champion rule (see models.registry)."""

from __future__ import annotations

from prefect import task

from data.prepare import PreparedData
from models.registry import PromotionDecision, register_and_promote


@task(name="register-and-promote", retries=0)
def register_and_promote_model(
    run_id: str,
    model_uri: str,
    arch: str,
    prepared_dir: str,
    promote: bool = True,
    block_reason: str | None = None,
) -> PromotionDecision:
    test, _ = PreparedData.load(prepared_dir).split("test")
    return register_and_promote(
        run_id, model_uri, arch, test, promote=promote, block_reason=block_reason
    )
