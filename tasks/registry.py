"""Prefect tasks that register a run's model and apply the champion rule, and that settle the
registrations a killed process left undecided (see models.registry)."""

from __future__ import annotations

from collections.abc import Sequence

from prefect import task

from data.prepare import PreparedData
from models.registry import (
    PromotionDecision,
    recover_interrupted_versions,
    register_and_promote,
    registered_name,
)
from models.tracking import configure_tracking


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


@task(name="recover-interrupted-registrations", retries=0)
def recover_interrupted_registrations(archs: Sequence[str]) -> dict[str, dict[str, str]]:
    """Versions left `pending` by a dead process, per model: `interrupted` (or `promoted` if the
    alias already points at them). {registered name: {version: decision}}."""
    configure_tracking()
    settled = {
        registered_name(arch): recover_interrupted_versions(registered_name(arch)) for arch in archs
    }
    return {name: versions for name, versions in settled.items() if versions}
