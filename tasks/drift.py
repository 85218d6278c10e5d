"""Prefect task that reports how the data moved since the champion was trained (analysis.drift).

Two comparisons, both judged with the champion's vocabulary and model:
- the candidate's training split against the champion's (`drift/training_data/`);
- the reviews that arrived since the champion's data version against the test split, with the
  champion's accuracy on both (`drift/`: the report a reader opens first).
Logged to every new training run of the flow, as metrics and as Markdown/HTML artifacts.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from prefect import task

from analysis.common.artifacts import logged_model, run_params
from analysis.drift import build_drift_report
from analysis.drift.report import summary_line, write_drift_report
from data.prepare import PreparedData
from data.versions import NEW_SPLIT
from models.registry import CHAMPION, current_champion, registered_name


def _prob(model, texts: pd.Series) -> np.ndarray:
    return model.predict(None, pd.DataFrame({"review": texts.astype(str)}))[
        "prob_positive"
    ].to_numpy()


@task(name="drift-report", retries=0)
def drift_report(arch: str, prepared_dir: str, runs: Mapping[str, str]) -> str:
    """Compare today's data with the data `arch`'s champion saw; log to each run in `runs`.

    Input the measures cannot use (`analysis.drift` raises ValueError naming it) is reported in
    the returned line instead of failing the whole training run.
    """
    try:
        return _drift_report(arch, prepared_dir, runs)
    except ValueError as error:
        return f"Drift: not computed: {error}"


def _drift_report(arch: str, prepared_dir: str, runs: Mapping[str, str]) -> str:
    client = MlflowClient()
    name = registered_name(arch)
    champion = current_champion(client, name)
    if champion is None:
        return "Drift: no champion yet, nothing to compare with"
    champion_run = client.get_model_version(name, champion).run_id
    model = logged_model(f"models:/{name}@{CHAMPION}")
    vocabulary = set(model.vocab.tokens)
    data = PreparedData.load(prepared_dir)
    test, _ = data.split("test")
    lines, metrics = [], {}
    with tempfile.TemporaryDirectory(prefix="drift-") as tmp:
        old_dir = Path(run_params(champion_run).get("prepared_dir", ""))
        if (old_dir / "meta.json").exists():
            old = PreparedData.load(old_dir)
            train_report = build_drift_report(
                old.split("train")[0],
                data.split("train")[0],
                vocabulary,
                reference_name=f"champion's training data ({old.data_version})",
                current_name=f"this training data ({data.data_version})",
            )
            write_drift_report(train_report, Path(tmp) / "training_data")
            metrics |= train_report.metrics(prefix="drift_train")
            lines.append(summary_line(train_report))
            seen = set(old.frame["review_id"])
        else:
            lines.append(f"Drift: the champion's prepared data {old_dir} is gone; not compared")
            seen = set()
        arrived = data.frame[
            data.frame["review_id"].str.startswith("intake/")
            & ~data.frame["review_id"].isin(seen)
            & data.frame["split"].isin(["train", "val", NEW_SPLIT])
        ]
        if len(arrived):
            new_report = build_drift_report(
                test,
                arrived,
                vocabulary,
                reference_prob=_prob(model, test["text"]),
                current_prob=_prob(model, arrived["text"]),
                reference_name="test split",
                current_name=f"reviews arrived since v{champion}",
            )
            write_drift_report(new_report, Path(tmp))
            metrics |= new_report.metrics(prefix="drift_new")
            lines.append(summary_line(new_report))
        else:
            lines.append(f"Drift: no reviews arrived since {name} v{champion} was trained")
        for run_id in runs.values():
            with mlflow.start_run(run_id=run_id):
                if any(Path(tmp).iterdir()):
                    mlflow.log_artifacts(tmp, artifact_path="drift")
                mlflow.log_metrics(metrics)
    return "\n".join(lines)
