"""Compare two models evaluated on the same reviews: where one fails and the other does not, and why.

Inputs are the per-sample tables of `analysis.samples` (one row per review: review_id, label,
pred, prob_positive, loss, confidence, ...) of model A ("dense": order-blind) and model B ("cnn":
reads local context), plus per-token Integrated Gradients of each model for phrase-level views.

    loss_transfer      A's top-k highest-loss reviews and B's loss on them (and the other way round)
    triage             both wrong (confidently or not), only A wrong, only B wrong, both right
    phrase_scores      IG summed over each bigram/trigram occurrence, averaged per phrase
    phrase_sign_flips  phrases the two models read with opposite sign
    metrics_table      headline test metrics side by side
    compare            all of the above in one `Comparison`
    comparison_report  Markdown + one self-contained HTML page (inline CSS, no external asset)
    write_comparison   report.md, report.html and the CSVs, plus flat numbers for MLflow metrics
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.common import CLASS_NAMES, OOV_ID, PAD_ID, markdown_cell, strip_tags

TRIAGE_CATEGORIES = (
    "both_wrong_confident",
    "both_wrong",
    "only_{a}_wrong",
    "only_{b}_wrong",
    "both_right",
)
TRIAGE_MEANING = {
    "both_wrong_confident": "both wrong and both confident: likely label noise or truly hard",
    "both_wrong": "both wrong, at least one of them unsure",
    "only_{a}_wrong": "only {a} wrong: context that {a} cannot see, or {a}-specific bias",
    "only_{b}_wrong": "only {b} wrong: where reading context hurts {b}",
    "both_right": "both right",
}
# test-metric key -> row label of the headline table
METRIC_ROWS = {
    "test_acc": "accuracy",
    "test_loss": "loss",
    "test_f1": "F1",
    "test_roc_auc": "ROC AUC",
    "train_seconds": "training seconds",
    "n_parameters": "parameters",
}
TEXT_OPENING = 200  # characters of review text shown per example
_NEEDED = ("review_id", "label", "pred", "prob_positive", "loss", "confidence")


# --------------------------------------------------------------------------------------------
# Alignment
# --------------------------------------------------------------------------------------------


def _check_names(name_a: str, name_b: str) -> None:
    if name_a == name_b:
        raise ValueError(f"the two models need different names, got {name_a!r} twice")


def align(
    a: pd.DataFrame, b: pd.DataFrame, name_a: str = "dense", name_b: str = "cnn"
) -> pd.DataFrame:
    """One row per review with both models' columns suffixed `_<name>` (label kept once).

    Raises ValueError unless both tables hold exactly the same, unique review ids with the same
    labels: a comparison on different reviews would silently mean nothing.
    """
    _check_names(name_a, name_b)
    for name, frame in ((name_a, a), (name_b, b)):
        missing = [c for c in _NEEDED if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} table lacks columns {missing}")
        if frame["review_id"].duplicated().any():
            raise ValueError(f"{name} table has duplicate review ids")
    ids_a, ids_b = set(a["review_id"].astype(str)), set(b["review_id"].astype(str))
    if ids_a != ids_b:
        only_a, only_b = sorted(ids_a - ids_b), sorted(ids_b - ids_a)
        raise ValueError(
            f"the two tables hold different reviews: {len(only_a)} only in {name_a} "
            f"(e.g. {only_a[:3]}), {len(only_b)} only in {name_b} (e.g. {only_b[:3]})"
        )
    keep = [c for c in _NEEDED if c not in ("review_id", "label")]
    left = a[["review_id", "label", *keep]].assign(review_id=a["review_id"].astype(str))
    right = b[["review_id", "label", *keep]].assign(review_id=b["review_id"].astype(str))
    merged = left.merge(right, on="review_id", suffixes=(f"_{name_a}", f"_{name_b}"))
    if (merged[f"label_{name_a}"] != merged[f"label_{name_b}"]).any():
        raise ValueError("the two tables disagree on some labels")
    merged = merged.rename(columns={f"label_{name_a}": "label"}).drop(columns=f"label_{name_b}")
    return merged.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# 1. Loss transfer
# --------------------------------------------------------------------------------------------


def loss_transfer(
    a: pd.DataFrame,
    b: pd.DataFrame,
    name_a: str = "dense",
    name_b: str = "cnn",
    top_k: int = 50,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """The `top_k` highest-loss reviews of model A, with model B's loss and prediction on each.

    Summary: n, mean_loss_<a> and mean_loss_<b> on that set, and loss_reduction =
    1 - mean_b / mean_a (0.67 = B's loss on A's worst reviews is a third of A's; negative = B is
    even worse there). Call it again with the models swapped for B's worst under A.
    """
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    merged = align(a, b, name_a, name_b)
    # Stable sort so ties keep the input order: the same tables always give the same set.
    top = merged.sort_values(f"loss_{name_a}", ascending=False, kind="mergesort").head(top_k)
    columns = ["review_id", "label"] + [
        f"{col}_{name}" for col in ("loss", "prob_positive", "pred") for name in (name_a, name_b)
    ]
    table = top[columns].reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    mean_a = float(table[f"loss_{name_a}"].mean())
    mean_b = float(table[f"loss_{name_b}"].mean())
    summary = {
        "n": float(len(table)),
        f"mean_loss_{name_a}": mean_a,
        f"mean_loss_{name_b}": mean_b,
        "loss_reduction": 1.0 - mean_b / mean_a if mean_a > 0 else float("nan"),
        f"{name_b}_right_share": float((table[f"pred_{name_b}"] == table["label"]).mean()),
    }
    return table, summary


# --------------------------------------------------------------------------------------------
# 2. Triage
# --------------------------------------------------------------------------------------------


def triage_categories(name_a: str = "dense", name_b: str = "cnn") -> list[str]:
    """The five category names, in report order."""
    return [c.format(a=name_a, b=name_b) for c in TRIAGE_CATEGORIES]


def triage_samples(
    a: pd.DataFrame,
    b: pd.DataFrame,
    confident: float = 0.6,
    name_a: str = "dense",
    name_b: str = "cnn",
) -> pd.DataFrame:
    """The aligned table (see `align`) with a `category` column, one row per review."""
    merged = align(a, b, name_a, name_b)
    wrong_a = merged[f"pred_{name_a}"] != merged["label"]
    wrong_b = merged[f"pred_{name_b}"] != merged["label"]
    sure = (merged[f"confidence_{name_a}"] >= confident) & (
        merged[f"confidence_{name_b}"] >= confident
    )
    cats = triage_categories(name_a, name_b)
    merged["category"] = np.select(
        [wrong_a & wrong_b & sure, wrong_a & wrong_b, wrong_a, wrong_b], cats[:4], cats[4]
    )
    return merged


def triage(
    a: pd.DataFrame,
    b: pd.DataFrame,
    confident: float = 0.6,
    name_a: str = "dense",
    name_b: str = "cnn",
    n_examples: int = 5,
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Counts per category (category, count, share, meaning) and up to `n_examples` per category.

    `confident` is the threshold on confidence = |P(positive) - 0.5| x 2 (0.6: P >= 0.8 or <= 0.2).
    Examples are ordered by the loss that matters: the wrong model's loss for only_*_wrong, the
    mean of both losses otherwise.
    """
    samples = triage_samples(a, b, confident, name_a, name_b)
    cats = triage_categories(name_a, name_b)
    loss_a, loss_b = samples[f"loss_{name_a}"], samples[f"loss_{name_b}"]
    sort_key = {
        cats[2]: loss_a,
        cats[3]: loss_b,
    }
    counts = samples["category"].value_counts().reindex(cats, fill_value=0)
    table = pd.DataFrame(
        {
            "category": cats,
            "count": counts.to_numpy(dtype=int),
            "share": counts.to_numpy(dtype=float) / max(len(samples), 1),
            "meaning": [m.format(a=name_a, b=name_b) for m in TRIAGE_MEANING.values()],
        }
    )
    examples = {}
    for cat in cats:
        key = sort_key.get(cat, (loss_a + loss_b) / 2)
        mask = samples["category"] == cat
        # Plain values: assigning a Series to an empty frame would adopt the Series' whole index.
        rows = samples[mask].assign(_key=key[mask].to_numpy())
        examples[cat] = (
            rows.sort_values("_key", ascending=False, kind="mergesort")
            .head(n_examples)
            .drop(columns="_key")
            .reset_index(drop=True)
        )
    return table, examples


# --------------------------------------------------------------------------------------------
# 3. Phrases
# --------------------------------------------------------------------------------------------


def phrase_scores(
    ids: np.ndarray,
    attributions: np.ndarray,
    vocab: Sequence[str],
    n: Sequence[int] = (2, 3),
) -> pd.DataFrame:
    """Per-phrase attribution: each n-gram occurrence scores the sum of its tokens' attributions.

    `ids` and `attributions` are aligned [N, L] arrays (attributions of one model toward one class,
    e.g. `attributions.explain(net, ids, POSITIVE)`). N-grams touching padding are skipped; OOV
    tokens read "<oov>". Columns: phrase, n, count (occurrences), reviews (distinct reviews),
    sum_score, mean_score (per occurrence); most frequent first.
    """
    ids = np.asarray(ids, dtype=np.int64)
    attributions = np.asarray(attributions, dtype=np.float64)
    if ids.ndim != 2 or ids.shape != attributions.shape:
        raise ValueError(
            f"ids and attributions must be aligned 2-D arrays, got {ids.shape} and "
            f"{attributions.shape}"
        )
    vocab_size = max(len(vocab), int(ids.max(initial=0)) + 1)
    tokens = ["<oov>" if i == OOV_ID else str(vocab[i]) for i in range(len(vocab))]
    frames = []
    for size in n:
        if size < 1:
            raise ValueError(f"n-gram sizes must be >= 1, got {size}")
        if size > ids.shape[1]:
            continue
        if vocab_size**size >= 2**62:
            raise ValueError(f"vocabulary too large to key {size}-grams in int64")
        windows = np.lib.stride_tricks.sliding_window_view(ids, size, axis=1)  # [N, W, size]
        valid = (windows != PAD_ID).all(axis=-1)
        # One int64 key per n-gram (base-V digits) so aggregation is numpy, not a Python loop
        # over millions of occurrences.
        keys = np.zeros(windows.shape[:2], dtype=np.int64)
        for k in range(size):
            keys = keys * vocab_size + windows[..., k]
        sums = np.lib.stride_tricks.sliding_window_view(attributions, size, axis=1).sum(-1)
        rows = np.broadcast_to(np.arange(len(ids))[:, None], keys.shape)
        keys, sums, rows = keys[valid], sums[valid], rows[valid]
        if keys.size == 0:
            continue
        unique, inverse = np.unique(keys, return_inverse=True)
        count = np.bincount(inverse)
        total = np.bincount(inverse, weights=sums)
        reviews = np.bincount(np.unique(inverse * len(ids) + rows) // len(ids))
        digits = [(unique // vocab_size**p) % vocab_size for p in range(size - 1, -1, -1)]
        phrases = [
            " ".join(tokens[d] if d < len(tokens) else "<oov>" for d in combo)
            for combo in zip(*digits, strict=True)
        ]
        frames.append(
            pd.DataFrame(
                {
                    "phrase": phrases,
                    "n": size,
                    "count": count,
                    "reviews": reviews,
                    "sum_score": total,
                    "mean_score": total / count,
                }
            )
        )
    if not frames:
        return pd.DataFrame(
            {
                "phrase": pd.Series(dtype=str),
                "n": pd.Series(dtype=int),
                "count": pd.Series(dtype=int),
                "reviews": pd.Series(dtype=int),
                "sum_score": pd.Series(dtype=float),
                "mean_score": pd.Series(dtype=float),
            }
        )
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(
        ["count", "phrase"], ascending=[False, True], kind="mergesort"
    ).reset_index(drop=True)


def phrase_sign_flips(
    scores_a: pd.DataFrame,
    scores_b: pd.DataFrame,
    min_count: int = 3,
    top: int = 20,
    name_a: str = "dense",
    name_b: str = "cnn",
) -> pd.DataFrame:
    """Phrases seen >= `min_count` times by both models whose mean scores have opposite signs.

    Ranked by |mean_<a> - mean_<b>|. Columns: phrase, n, count_<a>, count_<b>, mean_score_<a>,
    mean_score_<b>, difference (a - b).
    """
    _check_names(name_a, name_b)
    cols = ["phrase", "n", "count", "mean_score"]
    merged = scores_a[cols].merge(
        scores_b[cols].drop(columns="n"), on="phrase", suffixes=(f"_{name_a}", f"_{name_b}")
    )
    ma, mb = merged[f"mean_score_{name_a}"], merged[f"mean_score_{name_b}"]
    keep = (
        (merged[f"count_{name_a}"] >= min_count)
        & (merged[f"count_{name_b}"] >= min_count)
        & (np.sign(ma) * np.sign(mb) < 0)
    )
    flips = merged[keep].assign(difference=ma - mb)
    flips = flips.assign(_abs=flips["difference"].abs())
    flips = flips.sort_values(["_abs", "phrase"], ascending=[False, True], kind="mergesort")
    return flips.drop(columns="_abs").head(top).reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# 4. Headline metrics
# --------------------------------------------------------------------------------------------


def metrics_table(
    metrics_a: Mapping[str, float],
    metrics_b: Mapping[str, float],
    name_a: str = "dense",
    name_b: str = "cnn",
) -> pd.DataFrame:
    """Rows accuracy, loss, F1, ROC AUC, training seconds, parameters; one column per model.

    A missing key reads NaN (shown "n/a"), so a partial metrics dict still gives a table.
    """
    _check_names(name_a, name_b)
    return pd.DataFrame(
        {
            "metric": list(METRIC_ROWS.values()),
            "key": list(METRIC_ROWS),
            name_a: [float(metrics_a.get(k, float("nan"))) for k in METRIC_ROWS],
            name_b: [float(metrics_b.get(k, float("nan"))) for k in METRIC_ROWS],
        }
    )


# --------------------------------------------------------------------------------------------
# Everything together
# --------------------------------------------------------------------------------------------


@dataclass
class Comparison:
    """Every table of the comparison; build it with `compare`."""

    name_a: str
    name_b: str
    top_k: int
    confident: float
    metrics: pd.DataFrame
    transfer_ab: tuple[pd.DataFrame, dict[str, float]]  # A's worst under B
    transfer_ba: tuple[pd.DataFrame, dict[str, float]]  # B's worst under A
    triage_counts: pd.DataFrame
    triage_examples: dict[str, pd.DataFrame]
    triage_samples: pd.DataFrame
    phrase_flips: pd.DataFrame | None = None
    texts: dict[str, str] = field(default_factory=dict)  # review_id -> raw text, for examples


def compare(
    a: pd.DataFrame,
    b: pd.DataFrame,
    metrics_a: Mapping[str, float],
    metrics_b: Mapping[str, float],
    name_a: str = "dense",
    name_b: str = "cnn",
    phrases_a: pd.DataFrame | None = None,
    phrases_b: pd.DataFrame | None = None,
    texts: Mapping[str, str] | pd.Series | None = None,
    top_k: int = 50,
    confident: float = 0.6,
    min_count: int = 3,
    n_examples: int = 5,
    top_phrases: int = 20,
) -> Comparison:
    """All comparison tables. `phrases_*` come from `phrase_scores` (skip them: no flip table).

    `texts` maps review_id -> review text for the examples; without it a "text" column of `a`
    is used if present.
    """
    if texts is None and "text" in a.columns:
        texts = dict(zip(a["review_id"].astype(str), a["text"], strict=True))
    counts, examples = triage(a, b, confident, name_a, name_b, n_examples)
    flips = None
    if phrases_a is not None and phrases_b is not None:
        flips = phrase_sign_flips(phrases_a, phrases_b, min_count, top_phrases, name_a, name_b)
    return Comparison(
        name_a=name_a,
        name_b=name_b,
        top_k=top_k,
        confident=confident,
        metrics=metrics_table(metrics_a, metrics_b, name_a, name_b),
        transfer_ab=loss_transfer(a, b, name_a, name_b, top_k),
        transfer_ba=loss_transfer(b, a, name_b, name_a, top_k),
        triage_counts=counts,
        triage_examples=examples,
        triage_samples=triage_samples(a, b, confident, name_a, name_b),
        phrase_flips=flips,
        texts={str(k): str(v) for k, v in dict(texts or {}).items()},
    )


def comparison_numbers(comp: Comparison) -> dict[str, float]:
    """Flat, finite numbers for MLflow metrics.

    loss_reduction_<a>_top<k>_by_<b>, top<k>_<a>_mean_loss_<a|b> (both ways), triage_<category>
    and triage_<category>_share, and each model's test metrics as <name>_<key>.
    """
    a, b, k = comp.name_a, comp.name_b, comp.top_k
    numbers: dict[str, float] = {}
    for src, dst, (_, summary) in ((a, b, comp.transfer_ab), (b, a, comp.transfer_ba)):
        numbers[f"loss_reduction_{src}_top{k}_by_{dst}"] = summary["loss_reduction"]
        numbers[f"top{k}_{src}_mean_loss_{src}"] = summary[f"mean_loss_{src}"]
        numbers[f"top{k}_{src}_mean_loss_{dst}"] = summary[f"mean_loss_{dst}"]
    for row in comp.triage_counts.itertuples(index=False):
        numbers[f"triage_{row.category}"] = float(row.count)
        numbers[f"triage_{row.category}_share"] = float(row.share)
    for row in comp.metrics.itertuples(index=False):
        numbers[f"{a}_{row.key}"] = float(getattr(row, a))
        numbers[f"{b}_{row.key}"] = float(getattr(row, b))
    # MLflow rejects nothing here, but NaN metrics plot as gaps and confuse comparisons.
    return {k: v for k, v in numbers.items() if math.isfinite(v)}


# --------------------------------------------------------------------------------------------
# 5. Report
# --------------------------------------------------------------------------------------------

_CSS = """
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


def _fmt(value: object, digits: int = 3) -> str:
    """A cell for display: numbers rounded, large counts with separators, NaN as 'n/a'."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        if not math.isfinite(float(value)):
            return "n/a"
        if float(value).is_integer() and abs(value) >= 1000:
            return f"{int(value):,}"
        return f"{float(value):.{digits}f}"
    return str(value)


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%" if math.isfinite(value) else "n/a"


def _opening(text: str | None, limit: int = TEXT_OPENING) -> str:
    """The first `limit` characters of a review, tags (e.g. <br />) removed, whitespace collapsed."""
    if not text:
        return ""
    clean = " ".join(strip_tags(text).split())
    return clean if len(clean) <= limit else clean[:limit].rstrip() + "…"


def _html_table(frame: pd.DataFrame, text_columns: Sequence[str] = ()) -> str:
    """An escaped HTML table; every cell goes through html.escape (review text is untrusted)."""
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
            cells.append(f"<td{css}>{html.escape(_fmt(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="t"><tr>{head}</tr>\n' + "\n".join(body) + "</table>"


def _md_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_(none)_"
    lines = [
        "| " + " | ".join(markdown_cell(_fmt(c)) for c in frame.columns) + " |",
        "|" + "|".join("---" for _ in frame.columns) + "|",
    ]
    lines += [
        "| " + " | ".join(markdown_cell(_fmt(v)) for v in row) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join(lines)


def _example_frame(comp: Comparison, rows: pd.DataFrame) -> pd.DataFrame:
    """Examples for display: id, label, both P(positive) and losses, text opening."""
    a, b = comp.name_a, comp.name_b
    return pd.DataFrame(
        {
            "review": rows["review_id"].astype(str),
            "label": [CLASS_NAMES.get(int(v), str(v)) for v in rows["label"]],
            f"P(pos) {a}": rows[f"prob_positive_{a}"].astype(float),
            f"P(pos) {b}": rows[f"prob_positive_{b}"].astype(float),
            f"loss {a}": rows[f"loss_{a}"].astype(float),
            f"loss {b}": rows[f"loss_{b}"].astype(float),
            "text": [_opening(comp.texts.get(str(r))) for r in rows["review_id"]],
        }
    )


def _transfer_display(comp: Comparison, table: pd.DataFrame, src: str, dst: str) -> pd.DataFrame:
    show = table[["rank", "review_id", "label", f"loss_{src}", f"loss_{dst}"]].copy()
    show["label"] = [CLASS_NAMES.get(int(v), str(v)) for v in show["label"]]
    show[f"P(pos) {src}"] = table[f"prob_positive_{src}"].astype(float)
    show[f"P(pos) {dst}"] = table[f"prob_positive_{dst}"].astype(float)
    show["text"] = [_opening(comp.texts.get(str(r)), 120) for r in table["review_id"]]
    return show


def _transfer_sentence(comp: Comparison, summary: dict[str, float], src: str, dst: str) -> str:
    n = int(summary["n"])
    red = summary["loss_reduction"]
    direction = "lower" if red >= 0 else "higher"
    return (
        f"On the {n} reviews where {src} has the highest loss, {src}'s mean loss is "
        f"{_fmt(summary[f'mean_loss_{src}'])} and {dst}'s is {_fmt(summary[f'mean_loss_{dst}'])}: "
        f"{dst} is {_pct(abs(red))} {direction} (loss reduction {_pct(red)}); {dst} gets "
        f"{_pct(summary[f'{dst}_right_share'])} of them right."
    )


def _behaviour_frame(behaviour: pd.DataFrame, name_a: str, name_b: str) -> pd.DataFrame:
    missing = [c for c in ("check", name_a, name_b) if c not in behaviour.columns]
    if missing:
        raise ValueError(f"behaviour table lacks columns {missing}")
    show = behaviour[["check", name_a, name_b]].copy()
    for name in (name_a, name_b):
        show[name] = [_pct(float(v)) for v in show[name]]  # pass rates in [0, 1]
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
    `heatmap.render_heatmap_html`, whose body and CSS are inlined). `behaviour`: pass rates with
    columns check, <name_a>, <name_b>. `links`: label -> URL of each model's analysis artifacts,
    the only hrefs on the page. `alerts`: regression-check sentences (this run vs the previous
    champion), stated first. Review text is always HTML-escaped.
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
    md += ["## Headline numbers", "", _md_table(metrics), ""]
    h += ["<h2>Headline numbers</h2>", _html_table(metrics)]

    md += ["## Loss transfer", ""]
    h.append("<h2>Loss transfer</h2>")
    for (table, summary), src, dst in ((comp.transfer_ab, a, b), (comp.transfer_ba, b, a)):
        sentence = _transfer_sentence(comp, summary, src, dst)
        shown = _transfer_display(comp, table, src, dst).head(15)
        heading = f"{src}'s top {int(summary['n'])} losses under {dst}"
        md += [f"### {heading}", "", sentence, "", _md_table(shown.drop(columns="text")), ""]
        h += [
            f"<h3>{html.escape(heading)}</h3>",
            f'<p class="big">{html.escape(sentence)}</p>',
            _html_table(shown, ["text"]),
        ]
        if len(table) > len(shown):
            note = f"First {len(shown)} of {len(table)} rows; all are in the CSV."
            md += [f"_{note}_", ""]
            h.append(f'<p class="muted">{html.escape(note)}</p>')

    intro = (
        f"Confident = confidence >= {comp.confident:g} for both models "
        f"(confidence = |P(positive) - 0.5| x 2)."
    )
    md += ["## Triage", "", intro, "", _md_table(comp.triage_counts), ""]
    h += [
        "<h2>Triage</h2>",
        f"<p>{html.escape(intro)}</p>",
        _html_table(comp.triage_counts, ["meaning"]),
    ]
    for cat, rows in comp.triage_examples.items():
        if cat == "both_right" or rows.empty:
            continue  # agreement is not what a reader comes to this page for
        shown = _example_frame(comp, rows)
        md += [f"### {cat}", "", _md_table(shown), ""]
        h += [f"<h3>{html.escape(cat)}</h3>", _html_table(shown, ["text"])]

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
        md += [note, "", _md_table(comp.phrase_flips), ""]
        h += [f"<p>{html.escape(note)}</p>", _html_table(comp.phrase_flips)]

    if behaviour is not None:
        shown = _behaviour_frame(behaviour, a, b)
        md += ["## Behavioural checks (pass rate)", "", _md_table(shown), ""]
        h += ["<h2>Behavioural checks (pass rate)</h2>", _html_table(shown)]

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
) -> tuple[dict[str, Path], dict[str, float]]:
    """Write the report and its tables into `out_dir`; return (paths by key, MLflow numbers).

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
    comp.transfer_ab[0].to_csv(paths[f"loss_transfer_{a}_to_{b}"], index=False)
    comp.transfer_ba[0].to_csv(paths[f"loss_transfer_{b}_to_{a}"], index=False)
    comp.triage_counts.to_csv(paths["triage"], index=False)
    comp.triage_samples.to_csv(paths["triage_samples"], index=False)
    flips.to_csv(paths["phrase_flips"], index=False)
    comp.metrics.to_csv(paths["metrics"], index=False)
    return paths, comparison_numbers(comp)


if __name__ == "__main__":  # python -m analysis.compare RUN_A RUN_B
    from analysis.compare_runs import main

    main()
