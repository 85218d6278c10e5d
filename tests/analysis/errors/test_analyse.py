from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

import analysis.errors.analyse as report
from analysis.errors.analyse import analyse_errors, review_page_name
from models.scores import SplitScores, prob_positive, score_batch
from tests.analysis.helpers import VOCAB, StandInNet, planted_reviews, tokenize

EXPECTED_FILES = {
    "samples.parquet",
    "population.png",
    "population.html",
    "heatmaps/top_loss.html",
    "heatmaps/review_r0003.html",
    "heatmaps/review_r0150.html",
    "metadata_loss.png",
    "metadata_loss.csv",
    "clusters.csv",
    "clusters.png",
    "insights.md",
    "token_importance.csv",
    "movies.csv",
    "calibration.png",
    "calibration.csv",
    "label_issues.csv",
}
# Out-of-sample P(positive) of 40 training reviews: 2 per class confidently against the label.
TRAIN_PROBS = pd.DataFrame(
    {
        "review_id": [f"t{i:02d}" for i in range(40)],
        "label": [1] * 20 + [0] * 20,
        "prob_positive": [0.95] * 18 + [0.02] * 2 + [0.05] * 18 + [0.98] * 2,
        "text": [f"training review {i}" for i in range(40)],
    }
)
PLANTED_TEMPERATURE = 2.0  # T != 1: the calibrated columns must differ from the raw ones


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    samples, ids = planted_reviews(200)
    out = tmp_path_factory.mktemp("analysis")
    result = analyse_errors(
        StandInNet(),
        samples,
        ids,
        VOCAB,
        out,
        explain_ids=["r0003", "r0150"],
        tokenize=tokenize,
        progress=False,
        temperature=PLANTED_TEMPERATURE,
        train_probs=TRAIN_PROBS,
    )
    return {"result": result, "out": out, "samples": samples}


def test_writes_every_expected_file(run: dict[str, Any]) -> None:
    out: Path = run["out"]
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert written == EXPECTED_FILES
    for name in ("population.png", "metadata_loss.png", "clusters.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG" and (out / name).stat().st_size > 20_000
    assert {
        Path(p).relative_to(out).as_posix() for p in run["result"].paths.values()
    } == EXPECTED_FILES
    assert set(run["result"].timings) >= {"metadata", "predict", "umap", "attributions"}
    assert "nan" not in (out / "metadata_loss.csv").read_text().lower()


def test_label_issues_cover_both_splits_in_the_csv_and_insights(run: dict[str, Any]) -> None:
    issues, table = run["result"].label_issues, run["result"].table
    assert issues is not None
    csv = pd.read_csv(run["out"] / "label_issues.csv")
    train = csv[csv["split"] == "train"]
    assert set(train["review_id"]) == {"t18", "t19", "t38", "t39"}
    test = csv[csv["split"] == "test"]
    assert set(test["review_id"]) <= set(table["review_id"])
    flagged = table["review_id"].isin(test["review_id"])
    right = (table["pred"] == table["label"]).to_numpy()
    assert issues.test_accuracy == pytest.approx(right.mean())
    assert issues.test_accuracy_without == pytest.approx(right[~flagged.to_numpy()].mean())
    insights = (run["out"] / "insights.md").read_text(encoding="utf-8")
    assert "## Likely label errors" in insights and "### The 4 worst (train)" in insights
    assert f"{issues.test_accuracy:.3f} as is; {issues.test_accuracy_without:.3f} with" in insights


def test_calibration_artifacts_and_insights_section(run: dict[str, Any]) -> None:
    out: Path = run["out"]
    result = run["result"]
    calibration = result.calibration
    assert calibration is not None and calibration.temperature == PLANTED_TEMPERATURE
    assert calibration.n_reviews == 200
    # The table stays the raw network's: its Brier score is the report's raw one, not T's.
    table = result.table
    raw_brier = float(((table["prob_positive"] - table["label"]) ** 2).mean())
    assert calibration.brier == pytest.approx(raw_brier, abs=1e-6)
    assert calibration.brier_calibrated != pytest.approx(calibration.brier, abs=1e-4)
    csv = pd.read_csv(out / "calibration.csv")
    bins = csv[csv["part"] == "reliability"]
    assert set(bins["probabilities"]) == {"raw", "calibrated"}
    assert bins.groupby("probabilities")["count"].sum().tolist() == [200, 200]
    assert set(csv.loc[csv["part"] == "segment", "feature"]) >= {"length", "oov_ratio"}
    assert (out / "calibration.png").read_bytes()[:4] == b"\x89PNG"
    insights = (out / "insights.md").read_text(encoding="utf-8")
    assert "## Calibration" in insights and "T = 2.000" in insights
    assert f"| ECE | {calibration.ece:.3f} | {calibration.ece_calibrated:.3f} |" in insights


def test_token_importance_names_the_planted_words(run: dict[str, Any]) -> None:
    importance = pd.read_csv(run["out"] / "token_importance.csv")
    assert importance.equals(run["result"].importance.reset_index(drop=True))
    scores = importance.set_index("token")["importance"]
    assert scores.idxmax() in {"great", "wonderful", "superb", "moving"}
    assert scores.idxmin() in {"awful", "terrible", "boring", "dull"}
    insights = (run["out"] / "insights.md").read_text(encoding="utf-8")
    assert "## Words the model leans on" in insights
    assert f"| {scores.idxmax()} | {scores.max():+.3f} |" in insights


def test_movies_with_the_oov_heavy_reviews_top_the_movie_table(run: dict[str, Any]) -> None:
    samples = run["samples"]
    oov_movies = set(samples.loc[samples["group"] == "oov", "movie"])
    movies = pd.read_csv(run["out"] / "movies.csv")
    assert len(movies) == samples["movie"].nunique() and (movies["reviews"] == 10).all()
    assert set(movies["movie"].head(len(oov_movies))) == oov_movies
    insights = (run["out"] / "insights.md").read_text(encoding="utf-8")
    worst = movies.iloc[0]
    assert "## Movies whose reviews it gets wrong most" in insights
    assert f"| [{worst.movie}](https://www.imdb.com/title/{worst.movie}/) | 10 |" in insights


def test_sample_table_round_trips(run: dict[str, Any]) -> None:
    saved = pd.read_parquet(run["out"] / "samples.parquet")
    assert len(saved) == 200
    for column in ("review_id", "loss", "oov_ratio", "subjectivity", "cluster", "x", "y"):
        assert column in saved.columns
    assert not saved.isna().any().any()
    assert saved["review_id"].tolist() == run["samples"]["review_id"].tolist()


def test_planted_oov_group_is_its_own_cluster_and_named(run: dict[str, Any]) -> None:
    table = run["result"].table
    oov = (run["samples"]["group"] == "oov").to_numpy()
    cluster = int(table.loc[oov, "cluster"].mode()[0])
    members = (table["cluster"] == cluster).to_numpy()
    assert (members & oov).sum() >= 0.9 * oov.sum()  # the group stays together ...
    assert (members & oov).sum() >= 0.9 * members.sum()  # ... and is not mixed with clean ones
    insights = (run["out"] / "insights.md").read_text()
    weak = [line for line in insights.splitlines() if re.match(r"\d+\. ", line)]
    named = [line for line in weak if f"cluster {cluster} " in line]
    assert named and "out-of-vocabulary" in named[0]
    clusters = pd.read_csv(run["out"] / "clusters.csv")
    row = clusters[clusters["cluster"] == cluster].iloc[0]
    assert row["mean_oov_count"] > 10 and row["mean_loss"] > 2 * table["loss"].mean()


def test_heatmaps_show_top_loss_and_requested_reviews(run: dict[str, Any]) -> None:
    out: Path = run["out"]
    table = run["result"].table
    page = (out / "heatmaps" / "top_loss.html").read_text()
    assert page.count('<section class="review">') == 20
    worst = table.sort_values("loss", ascending=False)["review_id"].iloc[0]
    assert f"Review {worst}:" in page and "rank 1 by loss" in page
    # OOV words appear as the review's own words (tokenize given), marked as OOV
    assert re.search(r'class="w oov"[^>]*>zq\d+x<', page)
    requested = (out / "heatmaps" / review_page_name("r0150")).read_text()
    assert "Review r0150:" in requested and not re.search(r"\bnan\b", requested, re.I)


def test_unknown_review_id_fails_before_heavy_work(tmp_path: Path) -> None:
    class Exploding(StandInNet):
        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            raise AssertionError("the model must not run before validation")

    samples, ids = planted_reviews(20)
    with pytest.raises(ValueError, match="nope-42"):
        analyse_errors(
            Exploding(),
            samples,
            ids,
            VOCAB,
            tmp_path,
            explain_ids=["r0001", "nope-42"],
            progress=False,
        )
    assert not any(tmp_path.iterdir())


def test_given_scores_replace_the_scoring_pass(run: dict[str, Any], tmp_path: Path) -> None:
    """Scores handed over (training's test pass) are used as they are, never recomputed: a net
    that fails when run for scoring still yields the same table; scores of other reviews fail."""
    samples, ids = planted_reviews(200)
    with torch.no_grad():
        net = StandInNet().eval()
        logits, latent = score_batch(net, torch.as_tensor(ids))
    scores = SplitScores(
        samples["review_id"].to_numpy(),
        prob_positive(logits).numpy(),
        (logits[:, 1] - logits[:, 0]).numpy(),
        latent.numpy(),
    )

    class NoScoring(StandInNet):
        def latent(self, ids: torch.Tensor) -> torch.Tensor:
            raise AssertionError("the split was scored again")

    result = analyse_errors(
        NoScoring(),
        samples,
        ids,
        VOCAB,
        tmp_path / "given",
        tokenize=tokenize,
        progress=False,
        temperature=PLANTED_TEMPERATURE,
        train_probs=TRAIN_PROBS,
        scores=scores,
        importance_reviews=0,
        top_k_heatmaps=0,
    )
    expected = run["result"].table
    for column in ("prob_positive", "loss", "pred", "cluster", "x", "y"):
        np.testing.assert_allclose(result.table[column], expected[column], atol=1e-5)
    shuffled = SplitScores(
        scores.review_id[::-1], scores.prob_positive, scores.logit, scores.latent
    )
    with pytest.raises(ValueError, match="not of these reviews"):
        analyse_errors(
            StandInNet(), samples, ids, VOCAB, tmp_path / "other", scores=shuffled, progress=False
        )


def test_empty_samples_write_an_explanation(tmp_path: Path) -> None:
    samples, ids = planted_reviews(5)
    result = analyse_errors(
        StandInNet(), samples.iloc[0:0], ids[:0], VOCAB, tmp_path, progress=False
    )
    assert result.table.empty
    assert "No samples to analyse" in (tmp_path / "insights.md").read_text()
    assert pd.read_parquet(tmp_path / "samples.parquet").empty


def test_tiny_input_with_given_metadata_runs_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2 reviews (one empty): PCA instead of UMAP, one cluster, no TextBlob (metadata given)."""

    def no_textblob(*args: object, **kwargs: object) -> None:
        raise AssertionError("metadata was given: TextBlob must not run")

    monkeypatch.setattr(report, "text_metadata", no_textblob)
    samples, ids = planted_reviews(2, oov_share=0.5)
    samples.loc[0, "text"] = ""
    ids[0] = 0
    samples.loc[0, ["length", "oov_count"]] = 0
    metadata = pd.DataFrame({"subjectivity": np.zeros(2), "polarity": np.zeros(2)})
    result = analyse_errors(
        StandInNet(),
        samples,
        ids,
        VOCAB,
        tmp_path,
        metadata=metadata,
        explain_ids=["r0000"],
        progress=False,
    )
    assert set(result.table["cluster"]) == {0}
    assert result.clusters["size"].tolist() == [2]
    empty_page = (tmp_path / "heatmaps" / "review_r0000.html").read_text()
    assert "no token the model can see" in empty_page
    assert (tmp_path / "clusters.png").stat().st_size > 10_000
