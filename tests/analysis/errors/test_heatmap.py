from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from analysis.errors.attributions import TokenView
from analysis.errors.heatmap import (
    ReviewHeatmap,
    render_heatmap_html,
    side_by_side,
    write_heatmap_page,
)

GREEN_FULL = "rgba(26,152,80,0.850)"
RED_FULL = "rgba(215,48,39,0.850)"


def view(tokens: list[str], pos: list[float], neg: list[float], name: str = "A", **kw) -> TokenView:
    defaults = dict(
        is_oov=[False] * len(tokens),
        prob_positive=0.8,
        loss=0.223,
        delta_pos=1e-4,
        delta_neg=-2e-4,
        unseen_tokens=0,
    )
    defaults.update(kw)
    return TokenView(
        name,
        tokens,
        scores_pos=np.array(pos, dtype=float),
        scores_neg=np.array(neg, dtype=float),
        **defaults,
    )


def spans(page: str, word: str) -> list[str]:
    return re.findall(
        rf'<span class="[^"]*" style="background:([^"]+)" title="([^"]+)">{word}</span>', page
    )


def test_words_colours_and_scores_for_a_hand_made_review() -> None:
    v = view(["good", "bad", "meh", "<b>"], [0.5, -0.25, 0.0, 0.1], [-0.5, 0.25, 0.0, -0.1])
    page = render_heatmap_html([ReviewHeatmap("rev-7", 1, [v])], title="T")
    assert "Review rev-7" in page and "true label positive" in page
    assert "P(positive) 0.800" in page and "loss 0.223" in page and "0.00010" in page
    (good_pos, good_neg) = spans(page, "good")
    # green in both maps: toward positive in the positive map, against negative in the other
    assert good_pos[0] == GREEN_FULL and "+0.5000" in good_pos[1]
    assert good_neg[0] == GREEN_FULL and "-0.5000" in good_neg[1]
    bad_pos, bad_neg = spans(page, "bad")
    assert bad_pos[0].startswith("rgba(215,48,39,0.425") and "-0.2500" in bad_pos[1]
    assert bad_neg[0].startswith("rgba(215,48,39,") and "+0.2500" in bad_neg[1]
    assert all(s[0] == "transparent" for s in spans(page, "meh"))
    assert "&lt;b&gt;" in page and "<b></span>" not in page  # words are escaped
    assert not re.search(r"\bnan\b", page, re.IGNORECASE)
    assert "http" not in page  # self-contained: no external asset


def test_oov_and_truncation_are_visible() -> None:
    v = view(["great", "zorblax"], [0.3, 0.1], [-0.3, -0.1], is_oov=[False, True], unseen_tokens=42)
    page = render_heatmap_html([ReviewHeatmap("r", 0, [v])])
    assert re.search(r'class="w oov"[^>]*title="[^"]*out of vocabulary[^"]*">zorblax<', page)
    assert "42 more tokens" in page
    assert "wrong" in page  # predicted positive, label negative


@pytest.mark.parametrize(
    ("tokens", "is_oov", "expected"),
    [
        ([], [], "no token the model can see"),
        (["qq", "zz"], [True, True], "All 2 tokens are out of vocabulary"),
    ],
)
def test_empty_and_all_oov_reviews_explain_themselves(tokens, is_oov, expected) -> None:
    scores = [0.0] * len(tokens)
    v = view(tokens, scores, scores, is_oov=is_oov, prob_positive=float("nan"), loss=float("nan"))
    page = render_heatmap_html([ReviewHeatmap("e", 1, [v])])
    assert expected in page
    assert not re.search(r"\bnan\b", page, re.IGNORECASE)
    assert "n/a" in page  # non-finite numbers are written as n/a


def test_two_models_side_by_side(tmp_path: Path) -> None:
    a = [view(["fine"], [0.2], [-0.2], name="dense")]
    b = [view(["fine"], [-0.2], [0.2], name="cnn", prob_positive=0.3)]
    rows = side_by_side(["r1"], [1], a, b)
    path = write_heatmap_page(rows, tmp_path / "sub" / "cmp.html", title="dense vs cnn")
    page = path.read_text(encoding="utf-8")
    assert page.count("toward positive (positive logit)") == 2
    assert "<b>dense</b>" in page and "<b>cnn</b>" in page
    assert [s[0][:14] for s in spans(page, "fine")] == ["rgba(26,152,80"] * 2 + [
        "rgba(215,48,39"
    ] * 2
    with pytest.raises(ValueError, match="same reviews"):
        side_by_side(["r1", "r2"], [1, 0], a, b)
