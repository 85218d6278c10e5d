"""`compare_runs` end to end on two stand-in models, with MLflow's reads replaced by local tables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from analysis.common.schema import confidence_from_prob, per_sample_loss
from analysis.paired import runs
from analysis.paired.comparison_report import WrittenComparison
from tests.analysis.helpers import VOCAB, StandInNet, encode, planted_reviews

torch.set_num_threads(1)
MAX_LEN = 40


@dataclass(frozen=True)
class Vocab:
    tokens: tuple[str, ...]


@dataclass(frozen=True)
class StandInModel:
    """What `artifacts.logged_model` gives: `.net`, `.vocab.tokens`, `.encode(texts)`."""

    net: StandInNet
    vocab: Vocab = Vocab(tuple(VOCAB))

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.stack([encode(t.split(), MAX_LEN) for t in texts])


def samples(model: StandInModel, reviews: pd.DataFrame) -> pd.DataFrame:
    with torch.no_grad():
        logits = model.net(torch.as_tensor(model.encode(list(reviews["text"]))))
    prob = torch.softmax(logits, dim=1)[:, 1].numpy().astype(float)
    label = reviews["label"].to_numpy()
    return pd.DataFrame(
        {
            "review_id": reviews["review_id"],
            "label": label,
            "pred": (prob > 0.5).astype(int),
            "prob_positive": prob,
            "loss": per_sample_loss(prob, label),
            "confidence": confidence_from_prob(prob),
            "length": reviews["length"],
        }
    )


def test_compare_runs_writes_the_page_of_two_logged_runs(monkeypatch, tmp_path: Path) -> None:
    reviews, _ = planted_reviews(n=60)
    models = {"run-a": StandInModel(StandInNet()), "run-b": StandInModel(StandInNet(hidden=True))}
    tables = {run: samples(model, reviews) for run, model in models.items()}
    metrics = {
        "run-a": {
            "test_acc": 0.81,
            "behaviour_negation_pass_rate": 0.25,
            "behaviour_negation_pass_rate_network": 0.1,
            "behaviour_contrast_pass_rate_network": 0.5,  # run-b lacks it: not shown
            "behaviour_negation_pass_rate_branch": 0.5,  # the shared branch: never shown
            "other": 1.0,
        },
        "run-b": {
            "test_acc": 0.86,
            "behaviour_negation_pass_rate": 0.75,
            "behaviour_negation_pass_rate_network": 0.6,
            "behaviour_negation_pass_rate_branch": 0.5,
        },
    }
    monkeypatch.setattr(runs, "run_names", lambda ids: ["dense", "cnn"])
    monkeypatch.setattr(runs, "logged_samples", lambda run: tables[run])
    monkeypatch.setattr(runs, "logged_model", lambda uri: models[uri.split("/")[1]])
    monkeypatch.setattr(
        runs,
        "run_metrics",
        lambda run, keys=None: {
            k: v for k, v in metrics[run].items() if keys is None or k in set(keys)
        },
    )

    written = runs.compare_runs(
        "run-a", "run-b", reviews, tmp_path, heatmap_reviews=4, phrase_reviews=20
    )
    assert isinstance(written, WrittenComparison)
    assert {p.name for p in written.paths.values()} == {p.name for p in tmp_path.iterdir()}
    page = written.paths["report_html"].read_text(encoding="utf-8")
    assert "<h1>dense vs cnn</h1>" in page
    assert "Behavioural checks" in page and "75%" in page
    # The networks' own rates, where both runs logged them, beside the models'.
    md = written.paths["report_md"].read_text(encoding="utf-8")
    assert "| negation, network alone | 10% | 60% |" in md
    section = md.split("## Behavioural checks")[1].split("##")[0]
    assert "contrast" not in section and "branch" not in section
    assert "Side-by-side word attributions" in page
    assert written.numbers["dense_test_acc"] == pytest.approx(0.81)
    assert "dense_other" not in written.numbers  # only the headline metrics
    triage = [v for k, v in written.numbers.items() if k.startswith("triage_") and "share" not in k]
    assert len(triage) == 5 and sum(triage) == len(reviews)

    # A run evaluated on other reviews is refused, not compared on the overlap.
    fewer = {"run-a": tables["run-a"], "run-b": tables["run-b"].iloc[:-1]}
    monkeypatch.setattr(runs, "logged_samples", lambda run: fewer[run])
    with pytest.raises(ValueError, match="different reviews"):
        runs.compare_runs("run-a", "run-b", reviews, tmp_path / "again")
