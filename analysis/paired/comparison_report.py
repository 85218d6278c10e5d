"""The dense-vs-CNN comparison as a page: Markdown, one self-contained HTML page and its CSVs.

Display only: the numbers are a `dense_vs_cnn.Comparison`. The HTML page has inline CSS and no
external asset; every number, cell and table goes through `analysis.common.render`, and review
text (untrusted) is always escaped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis.common.render import (
    REPORT_CSS,
    fmt_number,
    fmt_pct,
    html_table,
    markdown_table,
    opening,
)
from analysis.common.schema import CLASS_NAMES
from analysis.paired.dense_vs_cnn import Comparison, LossTransfer, comparison_numbers

TRANSFER_ROWS = 15  # loss-transfer rows shown on the page; the CSV has them all
TRANSFER_TEXT = 120  # characters of a review in the loss-transfer table

_CSS = REPORT_CSS


@dataclass(frozen=True)
class WrittenComparison:
    """What `write_comparison` wrote: the files by key, and the flat numbers for MLflow metrics."""

    paths: dict[str, Path]
    numbers: dict[str, float]


def _labels(values: pd.Series) -> list[str]:
    return [CLASS_NAMES.get(int(v), str(v)) for v in values]


def _example_frame(comp: Comparison, rows: pd.DataFrame) -> pd.DataFrame:
    """Examples for display: id, label, both P(positive) and losses, text opening."""
    a, b = comp.name_a, comp.name_b
    return pd.DataFrame(
        {
            "review": rows["review_id"].astype(str),
            "label": _labels(rows["label"]),
            f"P(pos) {a}": rows[f"prob_positive_{a}"].astype(float),
            f"P(pos) {b}": rows[f"prob_positive_{b}"].astype(float),
            f"loss {a}": rows[f"loss_{a}"].astype(float),
            f"loss {b}": rows[f"loss_{b}"].astype(float),
            "text": [opening(comp.texts.get(str(r))) for r in rows["review_id"]],
        }
    )


def _transfer_display(comp: Comparison, transfer: LossTransfer) -> pd.DataFrame:
    src, dst, table = transfer.source, transfer.target, transfer.table
    show = table[["rank", "review_id", "label", f"loss_{src}", f"loss_{dst}"]].copy()
    show["label"] = _labels(show["label"])
    show[f"P(pos) {src}"] = table[f"prob_positive_{src}"].astype(float)
    show[f"P(pos) {dst}"] = table[f"prob_positive_{dst}"].astype(float)
    show["text"] = [opening(comp.texts.get(str(r)), TRANSFER_TEXT) for r in table["review_id"]]
    return show


def _transfer_sentence(transfer: LossTransfer) -> str:
    src, dst, red = transfer.source, transfer.target, transfer.loss_reduction
    direction = "lower" if red >= 0 else "higher"
    return (
        f"On the {transfer.n} reviews where {src} has the highest loss, {src}'s mean loss is "
        f"{fmt_number(transfer.mean_loss_source)} and {dst}'s is "
        f"{fmt_number(transfer.mean_loss_target)}: {dst} is {fmt_pct(abs(red))} {direction} "
        f"(loss reduction {fmt_pct(red)}); {dst} gets {fmt_pct(transfer.target_right_share)} of "
        "them right."
    )


def _label_error_sentence(comp: Comparison) -> str | None:
    """How many of A's top losses are likely label errors, and A's worst under B without them."""
    errors, clean = comp.label_errors, comp.transfer_ab_clean
    if errors is None:
        return None
    a, b = comp.name_a, comp.name_b
    top = errors.counts_among(comp.transfer_ab.table["review_id"])
    text = (
        f"{top['both']} of {a}'s top {comp.transfer_ab.n} losses are likely label errors, flagged "
        f"by confident learning under both models' probabilities ({a}'s flag {top[a]} of them, "
        f"{b}'s {top[b]}); {len(errors.both):,} test reviews in all are flagged by both."
    )
    if clean is None:
        return f"{text} No review is left once they are set aside."
    sentence = _transfer_sentence(clean)
    return f"{text} Once they are set aside: {sentence[0].lower()}{sentence[1:]}"


def _behaviour_frame(behaviour: pd.DataFrame, name_a: str, name_b: str) -> pd.DataFrame:
    missing = [c for c in ("check", name_a, name_b) if c not in behaviour.columns]
    if missing:
        raise ValueError(f"behaviour table lacks columns {missing}")
    show = behaviour[["check", name_a, name_b]].copy()
    for name in (name_a, name_b):
        show[name] = [fmt_pct(float(v)) for v in show[name]]  # pass rates in [0, 1]
    return show


_STYLE = re.compile(r"<style[^>]*>(.*?)</style>", re.S | re.I)
_BODY = re.compile(r"<body[^>]*>(.*)</body>", re.S | re.I)


def _fragment(section: str) -> tuple[str, str]:
    """(css, body) of an HTML fragment; a full page (e.g. `render_heatmap_html`) is unwrapped."""
    css = "\n".join(_STYLE.findall(section))
    body = _BODY.search(section)
    if body:
        return css, body.group(1)
    return css, _STYLE.sub("", section)


def comparison_report(
    comp: Comparison,
    heatmap_html: str | None = None,
    behaviour: pd.DataFrame | None = None,
    links: Mapping[str, str] | None = None,
    title: str | None = None,
    alerts: Sequence[str] | None = None,
) -> tuple[str, str]:
    """(markdown, html) of the comparison; the HTML page is self-contained (inline CSS only).

    `heatmap_html`: a side-by-side heat-map section (a fragment, or a full page from
    `errors.heatmap.render_heatmap_html`, whose body and CSS are inlined). `behaviour`: pass rates
    with columns check, <name_a>, <name_b>. `links`: label -> URL of each model's analysis
    artifacts, the only hrefs on the page. `alerts`: regression-check sentences (this run vs the
    previous champion), stated first. Review text is always HTML-escaped.
    """
    a, b = comp.name_a, comp.name_b
    title = title or f"{a} vs {b}: model comparison"
    md: list[str] = [f"# {title}", ""]
    h: list[str] = [f"<h1>{html.escape(title)}</h1>"]

    if alerts is not None:
        md += ["## This run vs the previous champion", ""] + [f"- {line}" for line in alerts] + [""]
        items = "".join(f"<li>{html.escape(line)}</li>" for line in alerts)
        h += ["<h2>This run vs the previous champion</h2>", f'<ul class="big">{items}</ul>']

    if links:
        md += ["Analysis artifacts: " + ", ".join(f"[{k}]({v})" for k, v in links.items()), ""]
        items = "".join(
            f'<li><a href="{html.escape(url, quote=True)}">{html.escape(label)}</a></li>'
            for label, url in links.items()
        )
        h.append(f"<p>Analysis artifacts:</p><ul>{items}</ul>")

    metrics = comp.metrics.drop(columns="key")
    md += ["## Headline numbers", "", markdown_table(metrics), ""]
    h += ["<h2>Headline numbers</h2>", html_table(metrics)]

    md += ["## Loss transfer", ""]
    h.append("<h2>Loss transfer</h2>")
    for transfer in (comp.transfer_ab, comp.transfer_ba):
        sentence = _transfer_sentence(transfer)
        shown = _transfer_display(comp, transfer).head(TRANSFER_ROWS)
        heading = f"{transfer.source}'s top {transfer.n} losses under {transfer.target}"
        md += [f"### {heading}", "", sentence, "", markdown_table(shown.drop(columns="text")), ""]
        h += [
            f"<h3>{html.escape(heading)}</h3>",
            f'<p class="big">{html.escape(sentence)}</p>',
            html_table(shown, ["text"]),
        ]
        if transfer.n > len(shown):
            note = f"First {len(shown)} of {transfer.n} rows; all are in the CSV."
            md += [f"_{note}_", ""]
            h.append(f'<p class="muted">{html.escape(note)}</p>')

    sentence = _label_error_sentence(comp)
    if sentence is not None:
        heading = f"{a}'s top {comp.top_k} losses once likely label errors are set aside"
        md += [f"### {heading}", "", sentence, ""]
        h += [f"<h3>{html.escape(heading)}</h3>", f'<p class="big">{html.escape(sentence)}</p>']

    intro = (
        f"Confident = confidence >= {comp.confident:g} for both models "
        f"(confidence = |P(positive) - 0.5| x 2)."
    )
    counts = comp.triage.counts
    md += ["## Triage", "", intro, "", markdown_table(counts), ""]
    h += ["<h2>Triage</h2>", f"<p>{html.escape(intro)}</p>", html_table(counts, ["meaning"])]
    for cat, rows in comp.triage.examples.items():
        if cat == "both_right" or rows.empty:
            continue  # agreement is not what a reader comes to this page for
        shown = _example_frame(comp, rows)
        md += [f"### {cat}", "", markdown_table(shown), ""]
        h += [f"<h3>{html.escape(cat)}</h3>", html_table(shown, ["text"])]

    md += ["## Phrases read with opposite sign", ""]
    h.append("<h2>Phrases read with opposite sign</h2>")
    if comp.phrase_flips is None:
        md += ["_No phrase attributions were given._", ""]
        h.append('<p class="muted">No phrase attributions were given.</p>')
    else:
        note = (
            "Mean Integrated Gradients score per occurrence (sum over the phrase's words); "
            "> 0 pushes toward the class the attributions target."
        )
        md += [note, "", markdown_table(comp.phrase_flips), ""]
        h += [f"<p>{html.escape(note)}</p>", html_table(comp.phrase_flips)]

    if behaviour is not None:
        shown = _behaviour_frame(behaviour, a, b)
        md += ["## Behavioural checks (pass rate)", "", markdown_table(shown), ""]
        h += ["<h2>Behavioural checks (pass rate)</h2>", html_table(shown)]

    extra_css = ""
    if heatmap_html:
        extra_css, body = _fragment(heatmap_html)
        md += ["## Side-by-side word attributions", "", "_See report.html._", ""]
        h += ["<h2>Side-by-side word attributions</h2>", body]

    page = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}\n{extra_css}</style></head><body>\n"
        + "\n".join(h)
        + "\n</body></html>\n"
    )
    return "\n".join(md), page


def write_comparison(
    out_dir: Path,
    comp: Comparison,
    heatmap_html: str | None = None,
    behaviour: pd.DataFrame | None = None,
    links: Mapping[str, str] | None = None,
    title: str | None = None,
    alerts: Sequence[str] | None = None,
) -> WrittenComparison:
    """Write the report and its tables into `out_dir`; return the paths and the MLflow numbers.

    Files: report.md, report.html, loss_transfer_<a>_to_<b>.csv, loss_transfer_<b>_to_<a>.csv,
    triage.csv (counts), triage_samples.csv (category of every review), phrase_flips.csv (empty
    with its header when no phrase scores were given), metrics.csv.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    a, b = comp.name_a, comp.name_b
    markdown, page = comparison_report(comp, heatmap_html, behaviour, links, title, alerts)
    flips = comp.phrase_flips
    if flips is None:
        flips = pd.DataFrame(columns=["phrase", "n", f"count_{a}", f"count_{b}"])
    paths = {
        "report_md": out_dir / "report.md",
        "report_html": out_dir / "report.html",
        f"loss_transfer_{a}_to_{b}": out_dir / f"loss_transfer_{a}_to_{b}.csv",
        f"loss_transfer_{b}_to_{a}": out_dir / f"loss_transfer_{b}_to_{a}.csv",
        "triage": out_dir / "triage.csv",
        "triage_samples": out_dir / "triage_samples.csv",
        "phrase_flips": out_dir / "phrase_flips.csv",
        "metrics": out_dir / "metrics.csv",
    }
    paths["report_md"].write_text(markdown, encoding="utf-8")
    paths["report_html"].write_text(page, encoding="utf-8")
    comp.transfer_ab.table.to_csv(paths[f"loss_transfer_{a}_to_{b}"], index=False)
    comp.transfer_ba.table.to_csv(paths[f"loss_transfer_{b}_to_{a}"], index=False)
    comp.triage.counts.to_csv(paths["triage"], index=False)
    comp.triage.samples.to_csv(paths["triage_samples"], index=False)
    flips.to_csv(paths["phrase_flips"], index=False)
    comp.metrics.to_csv(paths["metrics"], index=False)
    return WrittenComparison(paths, comparison_numbers(comp))
