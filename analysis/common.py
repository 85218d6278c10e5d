"""Constants and small helpers shared by the analysis modules."""

from __future__ import annotations

import re

from data.text import OOV_ID, PAD_ID  # the token-id contract lives with the data layer

__all__ = ["CLASS_NAMES", "DPI", "OOV_ID", "PAD_ID", "markdown_cell", "strip_tags"]
CLASS_NAMES = {0: "negative", 1: "positive"}
DPI = 110  # every PNG: legible on screen, small enough for the MLflow UI

# IMDB reviews contain literal "<br />" line breaks; they are markup, not words.
_HTML_TAG = re.compile(r"<[^>]{0,40}>")


def strip_tags(text: object) -> str:
    """`text` with HTML tags replaced by spaces; "" for a missing (non-string) value."""
    return _HTML_TAG.sub(" ", text) if isinstance(text, str) else ""


def markdown_cell(value: object, width: int | None = None) -> str:
    """`value` as one Markdown table cell: on one line, cut to `width` characters if given.

    Pipes would break the table; `<` and `>` would let a review's markup through the renderer.
    """
    text = " ".join(str(value).split())
    if width is not None and len(text) > width:
        text = text[: width - 1] + "…"
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
