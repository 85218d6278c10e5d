"""Prefect task that trains one architecture (a thin wrapper over `models.train`).

No retries: a failed training run is a result to look at, not a glitch to repeat.
"""

from __future__ import annotations

from prefect import task

from models.memory import release_free_memory
from models.train import TrainResult, train


@task(name="train", retries=0)
def train_model(
    arch: str,
    prepared_dir: str,
    preset: str,
    epochs: int | None,
    seed: int,
    devices: str | int,
    limit: int | None = None,
) -> TrainResult:
    overrides = {"epochs": epochs} if epochs else None
    result = train(
        arch,
        prepared_dir,
        preset=preset,
        overrides=overrides,
        seed=seed,
        devices=devices,
        register=False,  # registered only once the whole pipeline run has succeeded
        extra_params={"limit": limit},
    )
    release_free_memory()
    return result
