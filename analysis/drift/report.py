"""A drift report as a page: Markdown, one self-contained HTML page, its CSVs, a summary line.

Display only: the numbers are a `DriftReport`. The HTML page has inline CSS and no external
asset, so the MLflow artifact viewer shows it as is; every table goes through
`analysis.common.render`, and review-derived strings (the missing words, the names) are escaped.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pandas as pd

from analysis.common.render import REPORT_CSS, fmt_number, html_table, markdown_cell, markdown_table
from analysis.drift.result import MEASURE_TITLES, DriftReport, fmt_p

WORD_WIDTH = 60  # characters of a missing word shown in a Markdown cell (junk tokens can be long)

_CSS = REPORT_CSS + "td.text { word-break: break-all; }\n"

_TABLE_NOTES = {
    "label_balance": "Reviews per class on each side.",
    "rating": "Reviews per rating; psi_term is each rating's share of the PSI.",
    "review_length": "Reviews per length bin (the reference's quantiles); psi_term is each "
    "bin's share of the PSI.",
    "oov_rate": "Per-review share of tokens missing from the champion's vocabulary; pooled: "
    "over all tokens of the side.",
    "champion_accuracy": "The champion's accuracy (with its Wilson interval) and mean "
    "cross-entropy loss in nats on each side.",
}


def _title(report: DriftReport) -> str:
    return f"Data drift: {report.current_name} vs {report.reference_name}"


def _verdict(report: DriftReport) -> str:
    n = len(report.measures)
    if not report.drifted:
        return f"No drift: none of the {n} measures crossed its threshold."
    names = ", ".join(m.title for m in report.drifted)
    return f"DRIFT on {len(report.drifted)} of {n} measures: {names}."


def _rule(report: DriftReport) -> str:
    th = report.thresholds
    return (
        "A measure is drifted when its effect statistic crosses its threshold AND its test "
        f"rejects 'same distribution' at p < {th.alpha:g}: PSI >= {th.psi:g} for ratings and "
        f"lengths ({th.length_bins} quantile bins of the reference), share positive differing "
        f"by more than {th.label_diff:g}, mean out-of-vocabulary share differing by more than "
        f"{th.oov_diff:g}, the champion's accuracy dropping by more than {th.accuracy_drop:g}."
    )


def _sizes(report: DriftReport) -> str:
    return (
        f"Reference: {report.reference_name} ({fmt_number(report.n_reference)} reviews). "
        f"Current: {report.current_name} ({fmt_number(report.n_current)} reviews)."
    )


def _measure_display(report: DriftReport) -> pd.DataFrame:
    """The measures table for display: titles, p-values as text, the verdict in words."""
    frame = report.measure_frame()
    return pd.DataFrame(
        {
            "measure": [MEASURE_TITLES.get(n, n) for n in frame["measure"]],
            "statistic": frame["statistic"],
            "value": frame["value"].astype(float),
            "threshold": frame["threshold"].astype(float),
            "test": frame["test"],
            "p-value": [fmt_p(float(p)) for p in frame["p_value"]],
            report.reference_name: frame["reference"].astype(float),
            report.current_name: frame["current"].astype(float),
            "verdict": ["DRIFTED" if d else "stable" for d in frame["drifted"]],
        }
    )


def _words_note(report: DriftReport) -> str:
    return (
        "The words the champion's vocabulary lacks that occur in the most reviews of "
        f"{report.current_name}, with their share of the reviews of {report.reference_name} "
        "(0: a new word). No threshold: a list to read, for slang, new titles or names that a "
        "retrained vocabulary would add."
    )


def drift_markdown(report: DriftReport) -> str:
    """The report as Markdown: verdict, measures table, one section per measure, the missing
    words. Cells go through `markdown_cell`, so a word cannot break a table or inject markup."""
    md = [f"# {markdown_cell(_title(report))}", "", f"**{markdown_cell(_verdict(report))}**", ""]
    md += [markdown_cell(_sizes(report)), "", "## Measures", ""]
    md += [markdown_table(_measure_display(report)), "", _rule(report), ""]
    if report.skipped:
        md += ["Not measured: " + "; ".join(f"{k} ({v})" for k, v in report.skipped.items()), ""]
    for m in report.measures:
        verdict = "DRIFTED" if m.drifted else "stable"
        md += [f"## {m.title}: {verdict}", "", markdown_cell(m.detail), ""]
        if m.name in report.tables:
            md += [_TABLE_NOTES.get(m.name, ""), "", markdown_table(report.tables[m.name]), ""]
    words = report.tables.get("oov_words", pd.DataFrame())
    md += ["## Words the vocabulary lacks", "", markdown_cell(_words_note(report)), ""]
    md += [markdown_table(words, width=WORD_WIDTH), ""]
    return "\n".join(md)


def drift_html(report: DriftReport) -> str:
    """The report as one self-contained HTML page (inline CSS, no script, no external asset)."""
    title = _title(report)
    css = "wrong" if report.any_drift else "ok"
    h = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="big {css}">{html.escape(_verdict(report))}</p>',
        f"<p>{html.escape(_sizes(report))}</p>",
        "<h2>Measures</h2>",
        html_table(_measure_display(report)),
        f'<p class="muted">{html.escape(_rule(report))}</p>',
    ]
    if report.skipped:
        items = "".join(
            f"<li>{html.escape(k)}: {html.escape(v)}</li>" for k, v in report.skipped.items()
        )
        h.append(f"<p>Not measured:</p><ul>{items}</ul>")
    for m in report.measures:
        verdict = "DRIFTED" if m.drifted else "stable"
        cls = "wrong" if m.drifted else "ok"
        h += [
            f'<h2>{html.escape(m.title)}: <span class="{cls}">{verdict}</span></h2>',
            f"<p>{html.escape(m.detail)}</p>",
        ]
        if m.name in report.tables:
            note = _TABLE_NOTES.get(m.name, "")
            h += [f'<p class="muted">{html.escape(note)}</p>', html_table(report.tables[m.name])]
    words = report.tables.get("oov_words", pd.DataFrame())
    h += [
        "<h2>Words the vocabulary lacks</h2>",
        f"<p>{html.escape(_words_note(report))}</p>",
        html_table(words, ["word"]),
    ]
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(h)
        + "\n</body></html>\n"
    )


def summary_line(report: DriftReport) -> str:
    """One line for the Prefect run summary, e.g. 'Drift, new reviews vs test split (2,000 vs
    25,000 reviews): 2 of 5 measures drifted: oov_rate (abs_diff 0.034), ...'."""
    head = (
        f"Drift, {report.current_name} vs {report.reference_name} "
        f"({fmt_number(report.n_current)} vs {fmt_number(report.n_reference)} reviews): "
    )
    n = len(report.measures)
    if report.drifted:
        parts = ", ".join(f"{m.name} ({m.statistic} {m.value:.3f})" for m in report.drifted)
        body = f"{len(report.drifted)} of {n} measures drifted: {parts}"
    else:
        body = f"none of {n} measures drifted"
    if report.skipped:
        body += "; not measured: " + ", ".join(report.skipped)
    return head + body


_SAFE_NAME = re.compile(r"[^a-z0-9_]+")


def write_drift_report(report: DriftReport, out_dir: Path) -> dict[str, Path]:
    """Write report.md, report.html, measures.csv and one CSV per table (`<table>.csv`) into
    `out_dir`; return the paths by key. The caller logs the folder and `report.metrics()`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "report_md": out_dir / "report.md",
        "report_html": out_dir / "report.html",
        "measures": out_dir / "measures.csv",
    }
    paths["report_md"].write_text(drift_markdown(report), encoding="utf-8")
    paths["report_html"].write_text(drift_html(report), encoding="utf-8")
    report.measure_frame().to_csv(paths["measures"], index=False)
    for name, table in report.tables.items():
        key = _SAFE_NAME.sub("_", name.lower())  # table names are ours, but a file name is a path
        paths[key] = out_dir / f"{key}.csv"
        table.to_csv(paths[key], index=False)
    return paths
