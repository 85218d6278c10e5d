"""Known-answer tests for dense vs CNN (analysis/paired/dense_vs_cnn.py, comparison_report.py):
hand-made tables and tiny hand-weighted nets."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import Tensor, nn

from analysis.common.thresholds import Thresholds
from analysis.errors.attributions import POSITIVE, explain
from analysis.paired.comparison_report import comparison_report, write_comparison
from analysis.paired.dense_vs_cnn import (
    compare,
    comparison_numbers,
    loss_transfer,
    metrics_table,
    phrase_scores,
    phrase_sign_flips,
    triage,
)

torch.set_num_threads(1)


def samples(
    preds: list[int], probs: list[float], losses: list[float], labels: list[int]
) -> pd.DataFrame:
    probs_arr = np.asarray(probs)
    return pd.DataFrame(
        {
            "review_id": [f"r{i}" for i in range(len(preds))],
            "label": labels,
            "pred": preds,
            "prob_positive": probs_arr,
            "loss": losses,
            "confidence": np.abs(probs_arr - 0.5) * 2,
        }
    )


# Six reviews, all positive. Dense: wrong on r0-r3 (r0, r1 confidently); CNN: wrong on r0, r1
# (r0 confidently, r1 unsure) and r4.
LABELS = [1, 1, 1, 1, 1, 1]
DENSE = samples(
    [0, 0, 0, 0, 1, 1], [0.05, 0.1, 0.3, 0.4, 0.9, 0.95], [3.0, 2.3, 1.2, 0.9, 0.1, 0.05], LABELS
)
CNN = samples(
    [0, 0, 1, 1, 0, 1], [0.1, 0.35, 0.8, 0.7, 0.45, 0.99], [2.0, 1.0, 0.2, 0.35, 0.8, 0.01], LABELS
)


def test_loss_transfer_known_reduction() -> None:
    transfer = loss_transfer(DENSE, CNN, top_k=2)
    assert (transfer.source, transfer.target, transfer.n) == ("dense", "cnn", 2)
    assert transfer.table["review_id"].tolist() == ["r0", "r1"]
    assert transfer.mean_loss_source == pytest.approx((3.0 + 2.3) / 2)
    assert transfer.mean_loss_target == pytest.approx((2.0 + 1.0) / 2)
    assert transfer.loss_reduction == pytest.approx(1 - 1.5 / 2.65)
    assert transfer.target_right_share == 0.0  # the CNN is wrong on r0 and r1 too
    # The other way: CNN's worst (r0, r1, r4) under dense: dense is worse there (negative).
    back = loss_transfer(CNN, DENSE, "cnn", "dense", top_k=3)
    assert back.table["review_id"].tolist() == ["r0", "r1", "r4"]
    assert back.loss_reduction == pytest.approx(1 - (3.0 + 2.3 + 0.1) / (2.0 + 1.0 + 0.8))
    assert back.loss_reduction < 0


def test_loss_transfer_rejects_mismatched_ids() -> None:
    other = CNN.assign(review_id=CNN["review_id"].replace("r5", "r99"))
    with pytest.raises(ValueError, match="different reviews"):
        loss_transfer(DENSE, other)
    with pytest.raises(ValueError, match="labels"):
        loss_transfer(DENSE, CNN.assign(label=[0, 1, 1, 1, 1, 1]))


def test_triage_counts_and_examples() -> None:
    result = triage(DENSE, CNN, thresholds=Thresholds(confident=0.6))
    counts, examples = result.counts, result.examples
    got = dict(zip(counts["category"], counts["count"], strict=True))
    assert got == {
        "both_wrong_confident": 1,  # r0: both confident
        "both_wrong": 1,  # r1: CNN unsure (confidence 0.3)
        "only_dense_wrong": 2,  # r2, r3
        "only_cnn_wrong": 1,  # r4
        "both_right": 1,  # r5
    }
    assert counts["share"].sum() == pytest.approx(1.0)
    # highest dense loss first among the dense-only errors
    assert examples["only_dense_wrong"]["review_id"].tolist() == ["r2", "r3"]
    assert examples["only_cnn_wrong"]["review_id"].tolist() == ["r4"]
    assert result.samples["category"].tolist() == [
        "both_wrong_confident",
        "both_wrong",
        "only_dense_wrong",
        "only_dense_wrong",
        "only_cnn_wrong",
        "both_right",
    ]


def test_triage_confidence_threshold_comes_from_the_thresholds() -> None:
    # r1: dense confidence 0.8, CNN 0.3. At 0.25 both are sure, so r1 is confidently wrong too.
    lenient = triage(DENSE, CNN, thresholds=Thresholds(confident=0.25)).counts
    got = dict(zip(lenient["category"], lenient["count"], strict=True))
    assert got["both_wrong_confident"] == 2 and got["both_wrong"] == 0


def test_an_empty_triage_category_has_no_examples() -> None:
    agree = CNN.assign(pred=DENSE["pred"], prob_positive=DENSE["prob_positive"])
    result = triage(DENSE, agree.assign(confidence=0.0))
    counts, examples = result.counts, result.examples
    assert dict(zip(counts["category"], counts["count"], strict=True))["both_wrong_confident"] == 0
    assert examples["both_wrong_confident"].empty
    assert not examples["both_wrong"]["label"].isna().any()


VOCAB = ["<pad>", "<oov>", "the", "good", "mildly", "film"]


def test_phrase_scores_sums_and_skips_padding() -> None:
    ids = np.array([[2, 4, 3, 0, 0], [4, 3, 1, 5, 0]])
    attr = np.array([[0.1, -0.5, 1.0, 9.0, 9.0], [-1.0, 2.0, 0.3, 0.2, 9.0]])
    scores = phrase_scores(ids, attr, VOCAB).set_index("phrase")
    assert scores.loc["mildly good", "count"] == 2
    assert scores.loc["mildly good", "reviews"] == 2
    assert scores.loc["mildly good", "sum_score"] == pytest.approx(0.5 + 1.0)
    assert scores.loc["mildly good", "mean_score"] == pytest.approx(0.75)
    assert scores.loc["the mildly good", "sum_score"] == pytest.approx(0.6)
    assert scores.loc["good <oov> film", "sum_score"] == pytest.approx(2.5)
    assert not any("<pad>" in p for p in scores.index)  # padding (score 9.0) never counted
    assert scores["sum_score"].max() < 9.0
    assert set(scores["n"]) == {2, 3}
    assert len(scores) == 7  # 4 distinct bigrams ("mildly good" twice) + 3 trigrams
    unigrams = phrase_scores(ids, attr, VOCAB, n=(1,)).set_index("phrase")
    assert unigrams.loc["good", "mean_score"] == pytest.approx(1.5)


def phrase_table(rows: list[tuple[str, int, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"phrase": p, "n": len(p.split()), "count": c, "mean_score": s} for p, c, s in rows]
    )


def test_phrase_sign_flips_finds_planted_flip() -> None:
    a = phrase_table(
        [("mildly good", 5, 0.4), ("very bad", 5, -1.0), ("rare one", 2, 3.0), ("a b", 4, 0.1)]
    )
    b = phrase_table(
        [("mildly good", 5, -0.8), ("very bad", 5, -1.2), ("rare one", 2, -3.0), ("a b", 4, -0.05)]
    )
    flips = phrase_sign_flips(a, b, min_count=3)
    assert flips["phrase"].tolist() == ["mildly good", "a b"]  # "rare one" is below min_count
    assert flips.loc[0, "difference"] == pytest.approx(1.2)
    assert flips.loc[0, "mean_score_cnn"] == pytest.approx(-0.8)
    assert phrase_sign_flips(a, b, min_count=3, top=1)["phrase"].tolist() == ["mildly good"]


# --- tiny nets: order-blind bag of words vs a net that reads the previous word --------------

TOKEN = {w: i for i, w in enumerate(VOCAB)}


class TinyNet(nn.Module):
    """Dim 0 = sentiment (good +2), dim 1 = 'mildly' marker. Positive logit = mean over tokens of
    s_t, minus (with context) 2 x m_{t-1} x s_t: "mildly" flips the next word's push."""

    def __init__(self, context: bool) -> None:
        super().__init__()
        self.context = context
        self.embedding = nn.Embedding(len(VOCAB), 2, padding_idx=0)
        weights = torch.zeros(len(VOCAB), 2)
        weights[TOKEN["good"], 0] = 2.0
        weights[TOKEN["mildly"], 1] = 1.0
        self.embedding.weight.data = weights

    def forward_from_embeddings(self, embedded: Tensor, mask: Tensor) -> Tensor:
        m = mask.to(embedded.dtype)
        s, marker = embedded[..., 0] * m, embedded[..., 1] * m
        per_token = s
        if self.context:
            previous = torch.nn.functional.pad(marker, (1, 0))[:, :-1]
            per_token = s - 2.0 * previous * s
        pos = per_token.sum(1) / m.sum(1).clamp(min=1.0)
        return torch.stack([-pos, pos], dim=1)

    def embed(self, ids: Tensor) -> Tensor:
        return self.embedding(ids)

    def forward(self, ids: Tensor) -> Tensor:
        return self.forward_from_embeddings(self.embed(ids), ids != 0)


def test_context_net_reads_mildly_good_more_negatively() -> None:
    ids = np.array(
        [
            [2, 5, 4, 3, 0, 0],  # the film mildly good
            [4, 3, 2, 5, 0, 0],  # mildly good the film
            [2, 4, 3, 5, 2, 0],  # the mildly good film the
            [2, 3, 5, 0, 0, 0],  # the good film
        ]
    )
    scores = {}
    for name, net in (("dense", TinyNet(context=False)), ("cnn", TinyNet(context=True))):
        attr, delta = explain(net, ids, POSITIVE, n_steps=64, progress=False)
        assert np.abs(delta).max() < 1e-3
        scores[name] = phrase_scores(ids, attr, VOCAB)
    mild = {k: v.set_index("phrase").loc["mildly good", "mean_score"] for k, v in scores.items()}
    assert mild["dense"] > 0 > mild["cnn"]
    flips = phrase_sign_flips(scores["dense"], scores["cnn"], min_count=3)
    assert "mildly good" in flips["phrase"].tolist()
    assert "the good film" not in flips["phrase"].tolist()  # no context: both read it alike


# --- report -----------------------------------------------------------------------------------

METRICS_A = {
    "test_acc": 0.8612,
    "test_loss": 0.3311,
    "test_f1": 0.8598,
    "test_roc_auc": 0.9346,
    "train_seconds": 41.5,
    "n_parameters": 160_062,
}
METRICS_B = {"test_acc": 0.8834, "test_loss": 0.2876, "test_f1": 0.8841, "test_roc_auc": 0.9512}
TEXTS = {f"r{i}": f"plain review {i} " + "word " * 80 for i in range(6)}
# A closed tag is stripped like "<br />"; the unclosed "<script" must survive only escaped.
TEXTS["r2"] = 'Watch <script>alert("x")</script> this & that <script alert(1)'
LINKS = {"dense analysis": "https://mlflow.example/runs/abc/artifacts/analysis"}


@pytest.fixture(scope="module")
def comparison():
    flips_a = phrase_table([("mildly entertaining", 5, 0.4)])
    flips_b = phrase_table([("mildly entertaining", 5, -0.6)])
    return compare(
        DENSE, CNN, METRICS_A, METRICS_B, phrases_a=flips_a, phrases_b=flips_b, texts=TEXTS, top_k=2
    )


def test_metrics_table_rows() -> None:
    table = metrics_table(METRICS_A, METRICS_B).set_index("metric")
    assert list(table.index) == [
        "accuracy",
        "loss",
        "F1",
        "ROC AUC",
        "training seconds",
        "parameters",
    ]
    assert table.loc["accuracy", "dense"] == pytest.approx(0.8612)
    assert np.isnan(table.loc["parameters", "cnn"])


def test_report_is_self_contained_escaped_and_has_headline_numbers(comparison) -> None:
    behaviour = pd.DataFrame({"check": ["negation"], "dense": [0.25], "cnn": [0.75]})
    heat = "<html><head><style>.w{color:red}</style></head><body><p>HEATMAP-BODY</p></body></html>"
    markdown, page = comparison_report(comparison, heat, behaviour, LINKS)
    # no external asset: every src/href is one of the provided links
    refs = re.findall(r'(?:src|href)\s*=\s*["\']?([^"\' >]+)', page, flags=re.I)
    assert refs == list(LINKS.values())
    assert "url(" not in page and "@import" not in page
    assert "<script" not in page.lower()
    assert "this &amp; that" in page  # review text kept, escaped
    assert "this &amp; that &lt;script alert(1)" in page
    assert "<script" not in markdown.lower()
    for number in ("0.861", "0.883", "0.935", "0.951", "160,062"):
        assert number in page and number in markdown
    reduction = f"{100 * (1 - 1.5 / 2.65):.0f}%"
    assert f"loss reduction {reduction}" in page
    assert "mildly entertaining" in page
    assert "HEATMAP-BODY" in page and ".w{color:red}" in page and page.count("<body") == 1
    assert "75%" in page  # behaviour pass rate
    assert page.count("<h3>both_wrong_confident</h3>") == 1


def test_write_comparison_writes_every_file(tmp_path: Path, comparison) -> None:
    written = write_comparison(tmp_path / "cmp", comparison, links=LINKS)
    paths, numbers = written.paths, written.numbers
    expected = {
        "report.md",
        "report.html",
        "loss_transfer_dense_to_cnn.csv",
        "loss_transfer_cnn_to_dense.csv",
        "triage.csv",
        "triage_samples.csv",
        "phrase_flips.csv",
        "metrics.csv",
    }
    assert {p.name for p in (tmp_path / "cmp").iterdir()} == expected
    assert {p.name for p in paths.values()} == expected
    assert all(p.stat().st_size > 0 for p in paths.values())
    assert pd.read_csv(paths["loss_transfer_dense_to_cnn"])["review_id"].tolist() == ["r0", "r1"]
    assert pd.read_csv(paths["triage"])["count"].sum() == 6
    assert numbers["loss_reduction_dense_top2_by_cnn"] == pytest.approx(1 - 1.5 / 2.65)
    assert numbers["triage_only_dense_wrong"] == 2
    assert numbers["dense_test_acc"] == pytest.approx(0.8612)
    assert "cnn_n_parameters" not in numbers  # missing -> NaN -> left out of MLflow metrics
    assert numbers == comparison_numbers(comparison)
    triaged = pd.read_csv(paths["triage_samples"])
    assert list(triaged.columns) == [
        "review_id",
        "label",
        *(
            f"{c}_{m}"
            for m in ("dense", "cnn")
            for c in ("pred", "prob_positive", "loss", "confidence")
        ),
        "category",
    ]
