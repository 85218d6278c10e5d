"""The drift report as pages and numbers: every measure shown, review words escaped, metrics
finite and named as MLflow expects, files written."""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.drift import (
    DriftReport,
    build_drift_report,
    drift_html,
    drift_markdown,
    summary_line,
    write_drift_report,
)
from analysis.drift.result import MEASURE_TITLES
from tests.analysis.drift import planted

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def drifted() -> DriftReport:
    reference = planted.reviews(800, seed=0)
    current = planted.reviews(400, seed=1, positive=0.7, length_scale=1.8, slang=0.1)
    # a word that is markup: a whitespace tokenizer keeps it whole, and it is out of vocabulary
    current["text"] = [f"{SCRIPT} {t}" if i % 2 else t for i, t in enumerate(current["text"])]
    return build_drift_report(
        reference,
        current,
        planted.vocabulary(reference),
        tokenizer=str.split,
        reference_prob=planted.champion_probs(reference["label"].to_numpy(), 0.9, seed=2),
        current_prob=planted.champion_probs(current["label"].to_numpy(), 0.75, seed=3),
        reference_name="test split",
        current_name="new <b>reviews</b>",
    )


@pytest.fixture(scope="module")
def stable() -> DriftReport:
    reference = planted.reviews(800, seed=0)
    current = planted.reviews(400, seed=4)
    return build_drift_report(reference, current, planted.vocabulary(reference))


def test_every_measure_is_on_both_pages(drifted: DriftReport) -> None:
    assert len(drifted.measures) == len(MEASURE_TITLES)
    md, page = drift_markdown(drifted), drift_html(drifted)
    for measure in drifted.measures:
        assert measure.title in md and html.escape(measure.title) in page
    assert "Words the vocabulary lacks" in md and "Words the vocabulary lacks" in page
    assert page.startswith("<!doctype html>") and "<style>" in page
    assert "<script" not in page.lower() and "src=" not in page and "<link" not in page


def test_review_words_and_names_are_escaped(drifted: DriftReport) -> None:
    assert SCRIPT in set(drifted.tables["oov_words"]["word"])
    md, page = drift_markdown(drifted), drift_html(drifted)
    assert SCRIPT not in md and "<b>" not in md and "&lt;script&gt;" in md
    assert SCRIPT not in page and "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "new &lt;b&gt;reviews&lt;/b&gt;" in page


def test_metrics_are_finite_and_named_per_measure(
    drifted: DriftReport, stable: DriftReport
) -> None:
    for report in (drifted, stable):
        metrics = report.metrics()
        assert all(math.isfinite(v) for v in metrics.values())
        for m in report.measures:
            assert metrics[f"drift_{m.name}_drifted"] == float(m.drifted)
            assert metrics[f"drift_{m.name}_{m.statistic}"] == pytest.approx(m.value)
            assert f"drift_{m.name}_p_value" in metrics
    assert drifted.metrics()["drift_any"] == 1.0 and stable.metrics()["drift_any"] == 0.0
    assert drifted.metrics()["drift_review_length_psi"] > 0.2
    assert "drift_champion_accuracy_accuracy_drop" in drifted.metrics()
    assert "drift_champion_accuracy_loss_rise" in drifted.metrics()
    assert set(drifted.metrics(prefix="drift_new")) == {
        "drift_new" + k[len("drift") :] for k in drifted.metrics()
    }


def test_degenerate_input_gives_finite_metrics() -> None:
    # three identical one-word reviews a side, no ratings, one class: nothing to compare
    frame = pd.DataFrame({"text": ["good"] * 3, "label": [1] * 3})
    report = build_drift_report(
        frame, frame, {"good"}, reference_prob=np.ones(3), current_prob=np.ones(3)
    )
    assert not report.any_drift
    assert all(math.isfinite(v) for v in report.metrics().values())
    assert "none of 4 measures drifted" in summary_line(report)


def test_summary_line(drifted: DriftReport, stable: DriftReport) -> None:
    line = summary_line(drifted)
    assert line.startswith("Drift, new <b>reviews</b> vs test split (400 vs 800 reviews): ")
    assert "review_length (psi " in line and "oov_rate" in line and "\n" not in line
    assert "none of 4 measures drifted; not measured: champion_accuracy" in summary_line(stable)


def test_write_drift_report(drifted: DriftReport, tmp_path: Path) -> None:
    paths = write_drift_report(drifted, tmp_path / "drift")
    expected = {"report.md", "report.html", "measures.csv"} | {
        f"{name}.csv" for name in drifted.tables
    }
    assert {p.name for p in paths.values()} == expected
    assert all(p.is_file() for p in paths.values())
    measures = pd.read_csv(paths["measures"])
    assert list(measures["measure"]) == [m.name for m in drifted.measures]
    words = pd.read_csv(paths["oov_words"])
    assert SCRIPT in set(words["word"])  # the CSV keeps the raw word; only pages escape
    assert paths["report_html"].read_text(encoding="utf-8") == drift_html(drifted)
