"""Rendering: numbers never read 'nan', review text never breaks a table or injects markup."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.common.render import (
    fmt_number,
    fmt_pct,
    html_table,
    markdown_cell,
    markdown_table,
    opening,
)


def test_numbers() -> None:
    assert fmt_number(math.nan) == "n/a" and fmt_pct(math.nan) == "n/a"
    assert fmt_number(12345.0) == "12,345" and fmt_number(np.int64(2500)) == "2,500"
    assert fmt_number(0.12345) == "0.123" and fmt_number(0.12345, 4, signed=True) == "+0.1235"
    assert fmt_number(np.bool_(True)) == "True" and fmt_pct(0.256) == "26%"


def test_review_text_is_tamed() -> None:
    review = "Great<br /><br />film | <script>x</script>  really"
    assert opening(review, 12) == "Great film |…"
    cell = markdown_cell(review)
    assert "|" not in cell.replace("\\|", "") and "<" not in cell
    page = html_table(pd.DataFrame({"text": [review], "n": [3]}), text_columns=["text"])
    assert "<script>" not in page and '<td class="num">3</td>' in page


def test_tables_show_none_when_empty() -> None:
    assert markdown_table(pd.DataFrame()) == "_(none)_"
    assert "(none)" in html_table(pd.DataFrame())
    table = markdown_table(pd.DataFrame({"a": [1.5], "b": ["x|y"]}))
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1.500 | x\\|y |"]
