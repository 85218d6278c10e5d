"""Rendering of numbers, review text and tables to Markdown and HTML: every report uses these.

Review text is untrusted: Markdown cells escape pipes and angle brackets, HTML goes through
`html.escape`, and both collapse whitespace so one review stays on one line or in one cell.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

DPI = 110  # every PNG: legible on screen, small enough for the MLflow UI
# The style of every self-contained report page (inline: the MLflow UI shows artifacts offline).
REPORT_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em; color: #222;
       max-width: 90em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
h3 { font-size: 1.05em; }
table.t { border-collapse: collapse; margin: .5em 0 1em 0; font-size: .92em; }
table.t th, table.t td { border: 1px solid #ddd; padding: .3em .6em; vertical-align: top; }
table.t th { background: #f3f3f3; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.text { max-width: 40em; color: #444; }
.big { font-size: 1.15em; } .muted { color: #777; font-style: italic; }
.ok { color: #1a7f37; font-weight: bold; } .wrong { color: #b42318; font-weight: bold; }
"""
OPENING_CHARS = 200  # characters of a review shown where a report quotes it

# IMDB reviews contain literal "<br />" line breaks; they are markup, not words.
_HTML_TAG = re.compile(r"<[^>]{0,40}>")


def strip_tags(text: object) -> str:
    """`text` with HTML tags replaced by spaces; "" for a missing (non-string) value."""
    return _HTML_TAG.sub(" ", text) if isinstance(text, str) else ""


def opening(text: object, limit: int = OPENING_CHARS) -> str:
    """The first `limit` characters of a review, tags removed, whitespace collapsed, "…" if cut."""
    clean = " ".join(strip_tags(text).split())
    return clean if len(clean) <= limit else clean[:limit].rstrip() + "…"


def fmt_number(value: object, digits: int = 3, signed: bool = False) -> str:
    """A cell for display: numbers rounded, large whole numbers with separators, NaN as 'n/a'."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        if not math.isfinite(float(value)):
            return "n/a"
        if float(value).is_integer() and abs(value) >= 1000:
            return f"{int(value):,}"
        return f"{float(value):{'+' if signed else ''}.{digits}f}"
    return str(value)


def fmt_pct(value: float) -> str:
    """A share in [0, 1] as a whole percentage; 'n/a' when undefined."""
    return f"{100 * value:.0f}%" if math.isfinite(value) else "n/a"


def markdown_cell(value: object, width: int | None = None) -> str:
    """`value` as one Markdown table cell: on one line, cut to `width` characters if given.

    Pipes would break the table; `<` and `>` would let a review's markup through the renderer.
    """
    text = " ".join(str(value).split())
    if width is not None and len(text) > width:
        text = text[: width - 1] + "…"
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def markdown_table(frame: pd.DataFrame, width: int | None = None, right: Sequence[str] = ()) -> str:
    """A Markdown table of `frame`, numbers through `fmt_number` (format a column as text first
    for another format), cells through `markdown_cell`, the `right` columns right-aligned;
    '_(none)_' when empty."""
    if frame.empty:
        return "_(none)_"
    lines = [
        "| " + " | ".join(markdown_cell(fmt_number(c), width) for c in frame.columns) + " |",
        "|" + "|".join("---:" if c in right else "---" for c in frame.columns) + "|",
    ]
    lines += [
        "| " + " | ".join(markdown_cell(fmt_number(v), width) for v in row) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join(lines)


def html_table(frame: pd.DataFrame, text_columns: Sequence[str] = ()) -> str:
    """An escaped HTML table (class "t"); numeric cells right-aligned, `text_columns` wrapped."""
    if frame.empty:
        return '<p class="muted">(none)</p>'
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for col, value in zip(frame.columns, row, strict=True):
            numeric = isinstance(value, int | float | np.integer | np.floating) and not isinstance(
                value, bool | np.bool_
            )
            css = ' class="num"' if numeric else (' class="text"' if col in text_columns else "")
            cells.append(f"<td{css}>{html.escape(fmt_number(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="t"><tr>{head}</tr>\n' + "\n".join(body) + "</table>"


def size_legend_handle(area: float, label: str) -> Line2D:
    """A grey dot of marker `area` (points^2, as in `scatter(s=...)`) for a size legend."""
    return Line2D(
        [],
        [],
        ls="",
        marker="o",
        color="grey",
        alpha=0.6,
        markersize=float(np.sqrt(area)),
        label=label,
    )
