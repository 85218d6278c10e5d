"""End-to-end benchmark: the whole imdb-sentiment flow, wall time by stage, peak memory, accuracy.

    IMDB_ARCHIVE=../shared/data/aclImdb_v1.tar.gz .venv/bin/python -m benchmarks.pipeline_benchmark

Runs the flow in this process (Prefect's temporary server), against throw-away stores unless
--keep-stores is given, then reads each task run's duration back from Prefect. Peak memory is the
max RSS of this process and, separately, of its largest child (joblib workers, the Prefect server).
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time


def isolate_stores(root: str) -> None:
    os.environ.update(
        {
            "IMDB_SENTIMENT_CACHE_DIR": os.environ.get("IMDB_SENTIMENT_CACHE_DIR", f"{root}/cache"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db",
            "IMDB_SENTIMENT_ARTIFACT_ROOT": f"{root}/artifacts",
            "IMDB_SENTIMENT_OUTPUT_DIR": f"{root}/outputs",
            "PREFECT_HOME": f"{root}/prefect",
        }
    )


def stage_seconds(flow_run_id) -> dict[str, float]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    stages: dict[str, float] = {}
    for run in sorted(runs, key=lambda r: r.start_time or r.expected_start_time):
        name = run.name.rsplit("-", 1)[0]
        stages[name] = stages.get(name, 0.0) + run.total_run_time.total_seconds()
    return stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="imdb")
    parser.add_argument("--data-path", default=None)
    parser.add_argument("--preset", default="tuned")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--keep-stores", action="store_true", help="log into the project's store")
    args = parser.parse_args()
    if not args.keep_stores:
        isolate_stores(tempfile.mkdtemp(prefix="pipeline-bench-"))
    # As `python -m flows.pipeline` does: the temporary server's telemetry heartbeat races its
    # first database migration ("database is locked"), and sends nothing useful offline.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

    from flows.pipeline import imdb_sentiment

    start = time.perf_counter()
    state = imdb_sentiment(
        dataset=args.dataset,
        data_path=args.data_path,
        preset=args.preset,
        limit=args.limit,
        return_state=True,
    )
    wall = time.perf_counter() - start
    result = state.result()
    stages = stage_seconds(state.state_details.flow_run_id)
    training = sum(r.train_seconds for r in result.trained.values())
    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak_child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    print(f"\n{'stage':<24} {'seconds':>9}")
    for name, seconds in stages.items():
        print(f"{name:<24} {seconds:>9.1f}")
    print(f"{'whole flow (wall)':<24} {wall:>9.1f}")
    print(f"{'pure training (fit)':<24} {training:>9.1f}")
    print(f"wall / training: {wall / training:.2f}")
    print(f"peak memory: {peak_self:.0f} MB (flow process), {peak_child:.0f} MB (largest child)")
    for arch, trained in result.trained.items():
        print(f"{arch}: test_acc {trained.metrics['test_acc']:.4f}")
    for arch, analysis in result.analyses.items():
        steps = ", ".join(f"{k} {v:.1f}s" for k, v in analysis.timings.items())
        print(f"{arch} analysis: {steps}")


if __name__ == "__main__":
    main()
