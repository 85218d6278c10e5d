from __future__ import annotations

import numpy as np
import pytest
import torch

from analysis.errors.attributions import (
    NEGATIVE,
    POSITIVE,
    display_tokens,
    explain,
    explain_reviews,
    importance_rows,
    token_importance,
    token_scores,
)
from tests.analysis.helpers import HEAD_GAIN, IGNORED_WORD, TOKEN_ID, VOCAB, StandInNet, encode

PLANTED = ["the", "film", "great", IGNORED_WORD, "plot", "story"]


def test_planted_word_dominates_and_ignored_word_scores_zero() -> None:
    net = StandInNet()
    ids = np.stack([encode(PLANTED, 10)])
    attr, delta = explain(net, ids, POSITIVE, n_steps=16, progress=False)
    scores = dict(token_scores(ids[0], attr[0], VOCAB))
    assert set(scores) == set(PLANTED)  # padding is left out
    assert max(scores, key=lambda w: abs(scores[w])) == "great"
    # For this linear model IG is exact: great contributes HEAD_GAIN * 2 / n_tokens.
    assert scores["great"] == pytest.approx(HEAD_GAIN * 2.0 / len(PLANTED), rel=1e-4)
    # "ignored" has the largest embedding (5.0) but the head never reads its dimension.
    assert scores[IGNORED_WORD] == pytest.approx(0.0, abs=1e-6)
    assert np.all(attr[0, len(PLANTED) :] == 0.0)  # padding positions are exactly zero
    assert abs(delta[0]) < 1e-4


def test_negative_target_flips_the_sign_for_an_antisymmetric_head() -> None:
    net = StandInNet()
    ids = np.stack([encode(["awful", "film"], 6)])
    pos, _ = explain(net, ids, POSITIVE, n_steps=8, progress=False)
    neg, _ = explain(net, ids, NEGATIVE, n_steps=8, progress=False)
    assert pos[0, 0] < 0 < neg[0, 0]
    np.testing.assert_allclose(pos, -neg, atol=1e-6)


def test_completeness_on_a_nonlinear_net() -> None:
    net = StandInNet(hidden=True)
    rng = np.random.default_rng(1)
    ids = np.zeros((7, 12), dtype=np.int64)
    for row in range(7):  # rows of different lengths, one all-padding
        n = row * 2
        ids[row, :n] = rng.integers(1, len(VOCAB), size=n)
    net.train()
    attr, delta = explain(net, ids, POSITIVE, n_steps=50, batch_size=3, progress=False)
    assert net.training  # previous mode restored
    net.eval()
    with torch.no_grad():
        tokens = torch.as_tensor(ids)
        logit = net(tokens)[:, POSITIVE]
        zeros = torch.zeros(*ids.shape, net.embedding.embedding_dim)
        baseline = net.forward_from_embeddings(zeros, tokens != 0)[:, POSITIVE]
    np.testing.assert_allclose(attr.sum(1), (logit - baseline).numpy(), atol=1e-3)
    assert np.abs(delta).max() < 1e-3
    assert np.all(attr[ids == 0] == 0.0)
    assert np.all(attr[0] == 0.0)  # empty review: nothing to attribute, no nan
    assert np.isfinite(attr).all() and np.isfinite(delta).all()


def test_explain_rejects_bad_target() -> None:
    with pytest.raises(ValueError, match="target"):
        explain(StandInNet(), np.ones((1, 3), dtype=np.int64), 2, progress=False)


def test_display_tokens_uses_real_words_only_when_aligned() -> None:
    ids = encode(["great", "xyzzy", "film"], 5)
    assert display_tokens(ids, VOCAB) == ["great", "<oov>", "film"]
    assert display_tokens(ids, VOCAB, "great xyzzy film", str.split) == ["great", "xyzzy", "film"]
    # A tokenizer that disagrees with the encoding must not shift words against scores.
    assert display_tokens(ids, VOCAB, "Great, xyzzy film", str.split) == ["great", "<oov>", "film"]


def test_explain_reviews_packages_both_classes_and_truncation() -> None:
    ids = np.stack([encode(["great", "film", "qqq"], 3), encode([], 3)])
    views = explain_reviews(
        StandInNet(),
        ids,
        np.array([0.9, 0.5]),
        np.array([0.1, 0.7]),
        np.array([8, 0]),
        VOCAB,
        model_name="A",
        n_steps=8,
        progress=False,
    )
    first, empty = views
    assert first.tokens == ["great", "film", "<oov>"]
    assert first.is_oov == [False, False, True]
    assert first.unseen_tokens == 5
    assert first.scores_pos[0] > 0 > first.scores_neg[0]
    assert empty.tokens == [] and len(empty.scores_pos) == 0 and empty.unseen_tokens == 0
    assert TOKEN_ID["great"] == ids[0, 0]


def test_token_importance_recovers_planted_word_signs() -> None:
    # Linear stand-in: in a 5-token review a positive word adds HEAD_GAIN * 2 / 5 = +4 to the
    # positive logit, a negative word -4, neutral and ignored words 0.
    reviews = [
        ["great", "film", "plot", IGNORED_WORD, "story"],
        ["awful", "film", "plot", IGNORED_WORD, "story"],
        ["great", "awful", "film", "plot", "story"],
        ["superb", "the", "the", "the", "the"],  # superb: seen once, below min_count
    ]
    ids = np.stack([encode(r, 8) for r in reviews])
    table = token_importance(StandInNet(), ids, VOCAB, n_steps=8, min_count=2, progress=False)
    assert list(table.columns) == ["token", "count", "importance", "mean_abs_attribution"]
    scores = table.set_index("token")["importance"]
    assert scores["great"] == pytest.approx(HEAD_GAIN * 2 / 5, rel=1e-4)
    assert scores["awful"] == pytest.approx(-HEAD_GAIN * 2 / 5, rel=1e-4)
    assert scores[IGNORED_WORD] == pytest.approx(0.0, abs=1e-6)
    assert "superb" not in scores and "<pad>" not in scores
    assert table.set_index("token").loc["the", "count"] == 4
    assert table["token"].iloc[0] == "great" and table["token"].iloc[-1] == "awful"  # sorted


def test_importance_rows_depend_on_review_ids_only() -> None:
    review_ids = [f"test_{i}" for i in range(100)]
    rows = importance_rows(review_ids, 10)
    assert len(rows) == 10 and list(rows) == sorted(rows)
    shuffled = review_ids[::-1]
    picked = {review_ids[r] for r in rows}
    assert {shuffled[r] for r in importance_rows(shuffled, 10)} == picked  # order does not matter
    assert len(importance_rows(review_ids, 1000)) == 100  # fewer reviews than asked: all of them
