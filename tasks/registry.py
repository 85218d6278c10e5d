"""Prefect tasks that register a run's model and apply the champion rule, and that settle the
registrations a killed process left undecided (see models.registry)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from prefect import task

from data.prepare import PreparedData
from data.versions import NEW_SPLIT
from models.registry import (
    PromotionDecision,
    recover_interrupted_versions,
    register_and_promote,
    registered_name,
    unchanged_since_champion,
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
    data = PreparedData.load(prepared_dir)
    test, _ = data.split("test")
    new, _ = data.split(NEW_SPLIT)  # held-out rows of new intake batches, if any
    return register_and_promote(
        run_id, model_uri, arch, test, promote=promote, block_reason=block_reason, new_reviews=new
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


@task(name="nothing-new", retries=0)
def nothing_new(defining: Mapping[str, dict[str, str]]) -> str | None:
    """Why this run would learn nothing new (each architecture's champion was trained on the same
    data version, preset, code, seed, sample and epochs), or None when any has something to learn.
    `defining`: arch -> what defines its model (see `unchanged_since_champion`)."""
    configure_tracking()
    reasons = [unchanged_since_champion(arch, values) for arch, values in defining.items()]
    if any(reason is None for reason in reasons):
        return None
    return "; ".join(r for r in reasons if r)
