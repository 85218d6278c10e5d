"""Prefect tasks that train one architecture (a thin wrapper over `models.train`) and that clean up
after training runs whose process died.

No retries: a failed training run is a result to look at, not a glitch to repeat.

On one device (or `devices='auto'` on a CPU) the model trains in the flow's process. On several,
Lightning's DDP launcher would re-run the whole command once per device, i.e. the whole flow, so
training alone runs as a distributed job: `python -m models.train ... --strategy ddp` on the
already-prepared folder, its result read back from JSON. The flow then owns the run.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import torch
from prefect import get_run_logger, task
from prefect.runtime import flow_run as current_flow_run

from config import PROJECT_ROOT
from models.memory import release_free_memory
from models.recovery import (
    MAX_AGE,
    ProcessOwner,
    abandoned_reason,
    claim_run,
    own_new_runs,
    recover_abandoned_runs,
)
from models.tracking import configure_tracking
from models.train import TrainResult, train

log = logging.getLogger(__name__)
STOP_TIMEOUT_S = 30  # for the training subprocess to stop after SIGTERM before SIGKILL


def device_count(devices: str | int) -> int:
    """How many devices `devices` trains on: a count as given; 'auto' is every GPU, else 1."""
    if isinstance(devices, int):
        return devices
    return torch.cuda.device_count() if torch.cuda.is_available() else 1


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
    n_devices = device_count(devices)
    if n_devices > 1:
        return train_distributed(arch, prepared_dir, preset, epochs, seed, n_devices, limit)
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


def train_distributed(
    arch: str,
    prepared_dir: str,
    preset: str,
    epochs: int | None,
    seed: int,
    n_devices: int,
    limit: int | None = None,
) -> TrainResult:
    """Train on `n_devices` with DDP in a subprocess (its ranks and output are its own)."""
    with tempfile.TemporaryDirectory(prefix=f"train-{arch}-") as folder:
        result_json = Path(folder) / "result.json"
        command = [
            sys.executable, "-m", "models.train", "--arch", arch, "--preset", preset,
            "--seed", str(seed), "--devices", str(n_devices), "--strategy", "ddp",
            "--no-register", "--prepared-dir", str(prepared_dir),
            "--result-json", str(result_json), "--die-with-parent",
        ]  # fmt: skip
        if epochs:
            command += ["--epochs", str(epochs)]
        if limit:
            command += ["--limit", str(limit)]
        path = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH")) if p)
        log.info("training %s on %d devices: %s", arch, n_devices, " ".join(command))
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env={**os.environ, "PYTHONPATH": path}
        )
        try:
            returncode = process.wait()
        except BaseException:  # interrupted or cancelled: stop the job, then its ranks stop too
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            raise
        if returncode != 0 or not result_json.exists():
            # Its run, if it made one, may be left RUNNING (killed): end it now, not next time.
            recover_abandoned_runs(configure_tracking())
            raise RuntimeError(
                f"distributed training of {arch} on {n_devices} devices failed (exit code "
                f"{returncode}); its output is above"
            )
        result = TrainResult(**json.loads(result_json.read_text(encoding="utf-8")))
    # The flow goes on with the run (analysis, registration): it is the owner now, not the
    # subprocess that has exited, so another flow starting meanwhile leaves the run alone.
    claim_run(result.run_id)
    return result


@task(name="recover-interrupted-runs", retries=0)
def recover_interrupted_runs(flow_name: str | None = None) -> dict[str, list[str]]:
    """End the MLflow runs and Prefect flow runs left RUNNING by processes that died.

    MLflow: every run of the experiment whose owner is gone ends KILLED with the reason tagged
    (models/recovery.py); every run this process creates from now on names it as the owner.
    Prefect: this flow run is labelled with its owner; RUNNING runs of the same flow whose owner
    is gone (or, unlabelled or on another host, older than 2 days) are set CRASHED, with their
    RUNNING task runs. A problem with Prefect's API is logged, never fatal.
    """
    own_new_runs()
    killed = recover_abandoned_runs(configure_tracking())
    crashed: list[str] = []
    name = flow_name or current_flow_run.get_flow_name()
    if name:
        try:
            crashed = crash_abandoned_flow_runs(name)
        except Exception as error:  # the Prefect API is not worth failing a training run for
            _logger().warning("could not check the flow runs of %s: %s", name, error)
    return {"mlflow_runs_killed": killed, "flow_runs_crashed": crashed}


def crash_abandoned_flow_runs(flow_name: str) -> list[str]:
    """Label this flow run with its owner; set CRASHED the RUNNING runs of `flow_name` whose
    owner is gone. Returns their ids."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterState,
        FlowRunFilterStateType,
        TaskRunFilter,
        TaskRunFilterState,
        TaskRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    me = ProcessOwner.current()
    this_run = current_flow_run.get_id()
    crashed: list[str] = []
    with get_client(sync_client=True) as client:
        if this_run:
            client.update_flow_run_labels(UUID(this_run), me.as_tags())
        running = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING]))
            ),
        )
        for run in running:
            if str(run.id) == this_run:
                continue
            started = run.start_time.timestamp() * 1000 if run.start_time else None
            reason = abandoned_reason(ProcessOwner.from_tags(run.labels), started, max_age=MAX_AGE)
            if reason is None:
                continue
            message = f"{reason}; marked crashed by {me.describe()} at {_now()}"
            client.set_flow_run_state(run.id, Crashed(message=message), force=True)
            tasks = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])),
                task_run_filter=TaskRunFilter(
                    state=TaskRunFilterState(type=TaskRunFilterStateType(any_=[StateType.RUNNING]))
                ),
            )
            for task_run in tasks:
                client.set_task_run_state(task_run.id, Crashed(message=message), force=True)
            _logger().warning("flow run %s (%s) set CRASHED: %s", run.id, run.name, reason)
            crashed.append(str(run.id))
    return crashed


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _logger() -> logging.Logger | logging.LoggerAdapter:
    try:
        return get_run_logger()
    except Exception:  # called outside a flow or task run
        return log
