"""Score the models a benchmark already logged on the current behavioural suite, without training.

When the suite gains cases (as contrast did its verdict-first kind), the models of the last
`train_benchmark.py` runs can be measured on it as they were logged: each run's logged model is
loaded back (the raw-text pyfunc, calibration included) and its pass rates printed as one JSON
line, the kinds of contrast case apart, then the mean per architecture and pooling.

    .venv/bin/python benchmarks/rescore_behaviour.py --runs 6      # the last three seeds
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Run

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.context_checks import behaviour_rates  # noqa: E402
from config import get_settings  # noqa: E402

EXPERIMENT = "imdb-sentiment-benchmark"


def logged_benchmark_models(count: int, experiment: str = EXPERIMENT) -> list[tuple[Run, str]]:
    """The latest `count` runs of the benchmark's experiment that logged a model, oldest first,
    each with its logged model's URI."""
    mlflow.set_tracking_uri(get_settings().mlflow_tracking_uri)
    client = MlflowClient()
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise LookupError(f"no experiment {experiment!r} in {mlflow.get_tracking_uri()}")
    runs = client.search_runs(
        [found.experiment_id], order_by=["attributes.start_time DESC"], max_results=count
    )
    out = []
    for run in reversed(runs):
        models = client.search_logged_models(
            [found.experiment_id], filter_string=f"source_run_id='{run.info.run_id}'"
        )
        if models:  # a run that failed before logging its model has none
            out.append((run, models[0].model_uri))
    return out


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=6, help="the latest N runs, oldest first")
    parser.add_argument("--experiment", default=EXPERIMENT)
    args = parser.parse_args(argv)
    try:
        logged = logged_benchmark_models(args.runs, args.experiment)
    except LookupError as error:
        parser.error(str(error))
    groups: dict[str, list[dict[str, float]]] = defaultdict(list)
    for run, model_uri in logged:
        rates = behaviour_rates(model_uri)
        params = run.data.params
        print(json.dumps({"run": run.info.run_name, **{k: round(v, 3) for k, v in rates.items()}}))
        groups[f"{params.get('arch')} ({params.get('pooling')} pooling)"].append(rates)
    means = {
        group: {key: statistics.fmean(r[key] for r in rows) for key in rows[0]}
        for group, rows in groups.items()
    }
    for group, mean in means.items():
        print(
            f"{group}, mean of {len(groups[group])}:",
            json.dumps({k: round(v, 3) for k, v in mean.items()}),
        )
    return means


if __name__ == "__main__":
    main()
