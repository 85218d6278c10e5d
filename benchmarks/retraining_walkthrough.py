"""Retraining with a reason, end to end through a worker: a baseline, a run with nothing new, then
weekly batches of new reviews whose intake events trigger the retraining.

    IMDB_ARCHIVE=../shared/data/aclImdb_v1.tar.gz \
        .venv/bin/python -m benchmarks.retraining_walkthrough --root /tmp/walkthrough

1. `python -m data.intake simulate` splits IMDB's training movies: a baseline and `--weeks` batches.
2. A Prefect server, the project's deployments and a worker start under `--root`; MLflow is a
   SQLite store there. The flow's training split is cut to the baseline (IMDB_SENTIMENT_TRAIN_SUBSET).
3. `prefect deployment run weekly-retrain --watch`: the baseline trains; run again: nothing new.
4. Each week: `python -m data.intake add week-0k.csv` emits `imdb.data.batch.accepted`, the
   deployment's trigger starts a run, and the script waits for it.
5. Prints each training run's data version, accuracies (test split, new-data slice), promotion,
   drift figures and wall times, and writes them to `<root>/walkthrough.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from config import PROJECT_ROOT
from flows.servers import (
    Processes,
    deploy_and_start_worker,
    free_port,
    prefect_cli,
    prefect_file_with,
    server_env,
    start_prefect,
)

DEPLOYMENT = "imdb-sentiment/weekly-retrain"
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
QUICK = {"dataset": "synthetic", "preset": "seed", "limit": 400, "epochs": {"dense": 2, "cnn": 2}}
RUN_METRICS = (
    "test_acc",
    "promotion_eval_acc",
    "champion_eval_acc",
    "promotion_eval_acc_new_data",
    "champion_eval_acc_new_data",
)


def _flow_runs(deployment_id) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
        )


def _deployment_id():
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_deployment_by_name(DEPLOYMENT).id


def wait_for_triggered_run(deployment_id, known: set, timeout: float) -> dict:
    """Wait for a flow run of the deployment not in `known` to appear and finish."""
    deadline = time.monotonic() + timeout
    run = None
    while time.monotonic() < deadline:
        fresh = [r for r in _flow_runs(deployment_id) if r.id not in known]
        if fresh:
            run = fresh[0]
            if run.state_type is not None and run.state_type.value in FINAL:
                return {
                    "flow_run": run.name,
                    "state": run.state_type.value,
                    "created_by": run.created_by.type if run.created_by else None,
                    "run_seconds": run.total_run_time.total_seconds(),
                }
        time.sleep(10)
    raise TimeoutError(f"no triggered run of {DEPLOYMENT} finished in {timeout} s (saw {run})")


def deployment_run(env: dict, timeout: float) -> tuple[float, str]:
    start = time.monotonic()
    done = prefect_cli(env, "deployment", "run", DEPLOYMENT, "--watch", timeout=timeout)
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise RuntimeError(f"{DEPLOYMENT} failed:\n{output[-4000:]}")
    return time.monotonic() - start, output


def _context(dataset_input) -> str:
    return {t.key: t.value for t in dataset_input.tags}.get("mlflow.data.context", "?")


def training_runs(tracking_uri: str) -> list[dict]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name("imdb-sentiment")
    runs = client.search_runs(
        [experiment.experiment_id], "tags.arch != ''", order_by=["attributes.start_time ASC"]
    )
    return [
        {
            "arch": run.data.tags["arch"],
            "data_version": run.data.tags.get("data_version"),
            "promotion": run.data.tags.get("promotion"),
            "datasets": sorted(
                f"{d.dataset.name} ({_context(d)})" for d in run.inputs.dataset_inputs
            ),
            "start": run.info.start_time,
            "minutes": round(((run.info.end_time or 0) - run.info.start_time) / 60_000, 1),
            **{
                k: v
                for k, v in run.data.metrics.items()
                if k in RUN_METRICS or k.startswith("drift_") or k.endswith("_seconds")
            },
        }
        for run in runs
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="a new folder for all state")
    parser.add_argument("--weeks", type=int, default=3)
    parser.add_argument("--run-timeout", type=float, default=3600)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the synthetic corpus and a small seed model instead of IMDB (checks the script)",
    )
    args = parser.parse_args(argv)
    if not args.quick and not os.environ.get("IMDB_ARCHIVE"):
        parser.error("set IMDB_ARCHIVE to the IMDB archive")
    corpus = ["--dataset", "synthetic"] if args.quick else []
    root = args.root.resolve()
    root.mkdir(parents=True, exist_ok=False)
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    prefect_port = free_port()
    env = server_env(root, prefect_port, tracking_uri)
    env["IMDB_SENTIMENT_TRAIN_SUBSET"] = str(root / "sim" / "manifest.json")
    os.environ.update(env)  # this process's Prefect client talks to the same server
    timings: dict[str, float] = {}
    steps: list[dict] = []

    def timed(name: str, command: list[str]) -> str:
        start = time.monotonic()
        done = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
        timings[name] = round(time.monotonic() - start, 1)
        if done.returncode != 0:
            raise RuntimeError(f"{name} failed:\n{done.stdout}{done.stderr}")
        print(done.stdout.strip(), flush=True)
        return done.stdout

    timed("simulate", [sys.executable, "-m", "data.intake", "simulate", "--out", str(root / "sim"),
                       "--weeks", str(args.weeks), *corpus])  # fmt: skip
    procs = Processes(root, env)
    try:
        start_prefect(procs, prefect_port)
        deploy_and_start_worker(
            procs, prefect_file_with({"weekly-retrain": QUICK}, root / "prefect.yaml")
        ) if args.quick else deploy_and_start_worker(procs)
        deployment_id = _deployment_id()
        for name in ("baseline", "nothing new"):
            seconds, output = deployment_run(env, args.run_timeout)
            steps.append({"step": name, "by": "prefect deployment run", "seconds": round(seconds)})
            print(f"{name}: {seconds:.0f} s", flush=True)
        for week in range(1, args.weeks + 1):
            known = {r.id for r in _flow_runs(deployment_id)}
            start = time.monotonic()
            out = timed(f"intake week {week}", [sys.executable, "-m", "data.intake", "add",
                                                str(root / "sim" / f"week-{week:02d}.csv"), *corpus])  # fmt: skip
            run = wait_for_triggered_run(deployment_id, known, args.run_timeout)
            run.update(
                step=f"week {week}", intake=out.strip(), seconds=round(time.monotonic() - start)
            )
            steps.append(run)
            print(f"week {week}: {run}", flush=True)
            if run["state"] != "COMPLETED":
                raise RuntimeError(f"the run triggered by week {week} ended {run['state']}")
    finally:
        procs.stop_all()
    result = {"steps": steps, "timings": timings, "runs": training_runs(tracking_uri)}
    (root / "walkthrough.json").write_text(json.dumps(result, indent=1, default=str))
    print(report(result))
    return 0


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def report(result: dict) -> str:
    """The steps and the training runs as two Markdown tables (the README's figures)."""
    lines = ["| step | intake | started by | state | wall s |", "|---|---|---|---|---:|"]
    for step in result["steps"]:
        started = step.get("by") or f"trigger ({step.get('created_by')})"
        lines.append(f"| {step['step']} | {step.get('intake', '')} | {started} | {step.get('state', 'COMPLETED')} | "
                     f"{step['seconds']} |")  # fmt: skip
    lines += [
        "",
        "| data version | model | test acc | new-data acc (champion) | promotion "
        "| new reviews drifted | minutes |",
        "|---|---|---:|---:|---|---|---:|",
    ]
    for run in result["runs"]:
        flagged = sorted(
            k.removeprefix("drift_new_").removesuffix("_drifted")
            for k, v in run.items()
            if k.startswith("drift_new_") and k.endswith("_drifted") and v
        )
        new = run.get("promotion_eval_acc_new_data")
        champion = run.get("champion_eval_acc_new_data")
        lines.append(
            f"| `{run['data_version']}` | {run['arch']} | {_num(run.get('test_acc'))} | "
            f"{_num(new)} ({_num(champion)}) | {run.get('promotion')} | "
            f"{', '.join(flagged) or ('none' if 'drift_new_any' in run else '-')} | "
            f"{run['minutes']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
