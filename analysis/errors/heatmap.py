"""Self-contained HTML heat maps of per-word attributions (inline CSS, no external assets).

Colour convention, identical in every map so a reader never has to flip it mentally: green = the
word pushes the prediction toward *positive*, red = toward *negative*. In the "toward positive" map
that is the sign of the IG score for the positive logit; in the "toward negative" map a word with a
positive IG score for the negative logit is drawn red. Intensity is |score| divided by the largest
|score| of that map for that review, so every map uses its full colour range.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis.common.render import fmt_number
from analysis.common.schema import CLASS_NAMES
from analysis.errors.attributions import TokenView

_GREEN = (26, 152, 80)
_RED = (215, 48, 39)
_MAX_ALPHA = 0.85  # the strongest word stays readable (dark text on a not-quite-solid colour)

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin: 0 0 .4em 0; }
.legend { border: 1px solid #ccc; padding: .6em .9em; background: #fafafa; max-width: 70em; }
.swatch { display: inline-block; width: 5.5em; padding: 0 .3em; text-align: center; }
.review { border-top: 2px solid #888; margin-top: 1.4em; padding-top: .8em; }
table.maps { border-collapse: collapse; width: 100%; table-layout: fixed; }
table.maps th, table.maps td { border: 1px solid #ddd; padding: .4em .6em; vertical-align: top; }
table.maps th { background: #f3f3f3; font-weight: normal; text-align: left; }
td.words { line-height: 1.9; font-size: .95em; }
.w { padding: 1px 2px; border-radius: 3px; }
.oov { border-bottom: 2px dashed #555; font-style: italic; }
.note { color: #8a4b00; font-style: italic; margin: .3em 0; }
.unseen { color: #777; font-style: italic; }
.ok { color: #1a7f37; font-weight: bold; } .wrong { color: #b42318; font-weight: bold; }
"""


@dataclass(frozen=True)
class ReviewHeatmap:
    """One review and its explanation by one model, or several models side by side."""

    review_id: str
    label: int
    views: Sequence[TokenView]
    caption: str = ""  # e.g. "rank 3 by loss"


def _colour(direction: float, scale: float) -> str:
    """Background for a word whose push toward positive is `direction` (< 0: toward negative)."""
    if scale <= 0 or direction == 0:
        return "transparent"
    r, g, b = _GREEN if direction > 0 else _RED
    return f"rgba({r},{g},{b},{_MAX_ALPHA * min(abs(direction) / scale, 1.0):.3f})"


def _words_html(view: TokenView, toward_positive: bool) -> str:
    scores = np.nan_to_num(view.scores_pos if toward_positive else view.scores_neg, nan=0.0)
    direction = scores if toward_positive else -scores  # > 0 always means "toward positive"
    scale = float(np.abs(direction).max()) if len(direction) else 0.0
    target = "positive" if toward_positive else "negative"
    spans = []
    for word, oov, score, push in zip(view.tokens, view.is_oov, scores, direction, strict=True):
        tip = f"score toward {target}: {fmt_number(float(score), 4, signed=True)}"
        css = "w oov" if oov else "w"
        if oov:
            tip += " (out of vocabulary: the model saw <oov>)"
        spans.append(
            f'<span class="{css}" style="background:{_colour(float(push), scale)}" '
            f'title="{html.escape(tip)}">{html.escape(word)}</span>'
        )
    body = " ".join(spans)
    if view.unseen_tokens > 0:
        body += (
            f' <span class="unseen">… and {view.unseen_tokens:,} more tokens that the model '
            "never saw (truncated at max_len)</span>"
        )
    return body


def _view_notes(view: TokenView) -> list[str]:
    """Plain-language explanations for the cases a heat map cannot show by itself."""
    n = len(view.tokens)
    if n == 0:
        return [
            "This review has no token the model can see (empty text, or nothing left after "
            "cleaning): there is nothing to attribute and the prediction does not depend on any word."
        ]
    notes = []
    if all(view.is_oov):
        notes.append(
            f"All {n} tokens are out of vocabulary: the model sees only its &lt;oov&gt; embedding, "
            "so the colours show how much that embedding at each position moves the prediction, "
            "not what the words mean."
        )
    for name, scores in (("positive", view.scores_pos), ("negative", view.scores_neg)):
        if not np.any(np.nan_to_num(scores)):
            notes.append(f"Every attribution toward {name} is 0: no word moves that logit.")
    return notes


def _header_html(view: TokenView, label: int) -> str:
    pred = int(view.prob_positive >= 0.5)
    verdict = (
        '<span class="ok">correct</span>' if pred == label else '<span class="wrong">wrong</span>'
    )
    return (
        f"<b>{html.escape(view.model_name)}</b>: predicted {CLASS_NAMES[pred]} ({verdict}), "
        f"P(positive) {fmt_number(view.prob_positive)}, loss {fmt_number(view.loss)}<br>"
        f"IG convergence delta: toward positive {fmt_number(view.delta_pos, 5)}, "
        f"toward negative {fmt_number(view.delta_neg, 5)}; {len(view.tokens):,} tokens seen"
    )


def _review_html(review: ReviewHeatmap) -> str:
    label = CLASS_NAMES.get(int(review.label), str(review.label))
    caption = f" <small>({html.escape(review.caption)})</small>" if review.caption else ""
    parts = [
        '<section class="review">',
        f"<h2>Review {html.escape(str(review.review_id))}: true label {label}{caption}</h2>",
        '<table class="maps"><tr>',
    ]
    parts += [f'<th colspan="2">{_header_html(v, int(review.label))}</th>' for v in review.views]
    parts.append("</tr><tr>")
    for _ in review.views:
        parts.append(
            "<th>toward positive (positive logit)</th><th>toward negative (negative logit)</th>"
        )
    notes = [_view_notes(v) for v in review.views]
    if any(notes):
        parts.append("</tr><tr>")
        for view_notes in notes:
            text = "".join(f'<p class="note">{n}</p>' for n in view_notes)
            parts.append(f'<td colspan="2">{text}</td>')
    parts.append("</tr><tr>")
    for view in review.views:
        parts.append(f'<td class="words">{_words_html(view, True)}</td>')
        parts.append(f'<td class="words">{_words_html(view, False)}</td>')
    parts.append("</tr></table></section>")
    return "\n".join(parts)


def _legend_html() -> str:
    green = _colour(1.0, 1.0)
    red = _colour(-1.0, 1.0)
    weak = _colour(0.3, 1.0)
    return (
        '<div class="legend"><b>How to read.</b> Integrated Gradients score of each word (hover a '
        "word for its exact score). "
        f'<span class="swatch" style="background:{green}">strong</span>'
        f'<span class="swatch" style="background:{weak}">weak</span> push toward '
        f'<b>positive</b>; <span class="swatch" style="background:{red}">strong</span> push '
        "toward <b>negative</b>. The same convention holds in both maps: in the 'toward negative' "
        "map a red word has a positive score for the negative logit. Intensity is |score| relative "
        "to the strongest word of that map for that review. "
        '<span class="w oov">dashed and italic</span> = out of vocabulary (the model saw only '
        "&lt;oov&gt;). A review's scores sum to its logit minus the logit of an all-zero "
        "(padding) embedding, up to the convergence delta shown in its header.</div>"
    )


def render_heatmap_html(reviews: Sequence[ReviewHeatmap], title: str = "Word attributions") -> str:
    """A full HTML page for `reviews` (one or more models each), with a legend."""
    body = "\n".join(_review_html(r) for r in reviews) or '<p class="note">No review to show.</p>'
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
        f"<h1>{html.escape(title)}</h1>\n{_legend_html()}\n{body}\n</body></html>\n"
    )


def write_heatmap_page(
    reviews: Sequence[ReviewHeatmap], path: Path, title: str = "Word attributions"
) -> Path:
    """Write `render_heatmap_html(reviews, title)` to `path` (UTF-8) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_heatmap_html(reviews, title), encoding="utf-8")
    return path


def side_by_side(
    review_ids: Sequence[str], labels: Sequence[int], *models: Sequence[TokenView]
) -> list[ReviewHeatmap]:
    """Zip per-model explanations of the same reviews into comparison rows (model A | model B)."""
    if any(len(m) != len(review_ids) for m in models):
        raise ValueError("every model must explain the same reviews, in the same order")
    return [
        ReviewHeatmap(str(rid), int(label), [m[i] for m in models])
        for i, (rid, label) in enumerate(zip(review_ids, labels, strict=True))
    ]
