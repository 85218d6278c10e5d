"""Dense vs CNN on the same reviews: where one model fails and the other does not, and why.

Inputs are the per-review tables of two models (`analysis.common.schema`: review_id, label, pred,
prob_positive, loss, confidence, ...), model A ("dense": order-blind) and model B ("cnn": reads
local context), plus per-token Integrated Gradients of each model for phrase-level views. The
tables are joined once by `pairing.pair_tables`; display is in `comparison_report`.

    loss_transfer      A's top-k highest-loss reviews and B's loss on them (and the other way round);
                       again once the likely label errors (`label_errors`) are set aside
    triage             both wrong (confidently or not), only A wrong, only B wrong, both right
    phrase_scores      IG summed over each bigram/trigram occurrence, averaged per phrase
    phrase_sign_flips  phrases the two models read with opposite sign
    metrics_table      headline test metrics side by side
    compare            all of the above in one `Comparison`
    comparison_numbers its flat numbers, for MLflow metrics
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.common.schema import OOV_ID, PAD_ID
from analysis.common.thresholds import DEFAULT_THRESHOLDS, Thresholds
from analysis.paired.label_errors import PairedLabelErrors, paired_label_errors
from analysis.paired.pairing import check_names, outcome, pair_tables

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
# What the comparison carries of each model (suffixed _<name> in the paired table).
PAIR_COLUMNS = ("pred", "prob_positive", "loss", "confidence")


def pair(a: pd.DataFrame, b: pd.DataFrame, name_a: str, name_b: str) -> pd.DataFrame:
    """`pair_tables` of the two models with `PAIR_COLUMNS`: one row per review in `a`'s order."""
    return pair_tables(a, b, name_a, name_b, PAIR_COLUMNS)


# --------------------------------------------------------------------------------------------
# 1. Loss transfer
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LossTransfer:
    """The `top_k` highest-loss reviews of `source`, with `target`'s loss and prediction on each.

    loss_reduction = 1 - mean_loss_target / mean_loss_source on that set (0.67 = the target's loss
    on the source's worst reviews is a third of the source's; negative = the target is even worse
    there); target_right_share: the share of them the target gets right.
    """

    source: str
    target: str
    table: pd.DataFrame  # rank, review_id, label, loss_*, prob_positive_*, pred_* (source first)
    mean_loss_source: float
    mean_loss_target: float
    loss_reduction: float
    target_right_share: float

    @property
    def n(self) -> int:
        return len(self.table)


def _transfer(joined: pd.DataFrame, source: str, target: str, top_k: int) -> LossTransfer:
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    # Stable sort so ties keep the input order: the same tables always give the same set.
    top = joined.sort_values(f"loss_{source}", ascending=False, kind="mergesort").head(top_k)
    columns = ["review_id", "label"] + [
        f"{col}_{name}" for col in ("loss", "prob_positive", "pred") for name in (source, target)
    ]
    table = top[columns].reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    mean_source = float(table[f"loss_{source}"].mean())
    mean_target = float(table[f"loss_{target}"].mean())
    return LossTransfer(
        source,
        target,
        table,
        mean_source,
        mean_target,
        1.0 - mean_target / mean_source if mean_source > 0 else float("nan"),
        float((table[f"pred_{target}"] == table["label"]).mean()),
    )


def loss_transfer(
    a: pd.DataFrame,
    b: pd.DataFrame,
    name_a: str = "dense",
    name_b: str = "cnn",
    top_k: int = 50,
) -> LossTransfer:
    """Model A's `top_k` highest-loss reviews under model B. Call it again with the models swapped
    for B's worst under A."""
    return _transfer(pair(a, b, name_a, name_b), name_a, name_b, top_k)


# --------------------------------------------------------------------------------------------
# 2. Triage
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Triage:
    """The five-way split of the reviews by which model is wrong, and how sure both were."""

    counts: pd.DataFrame  # category, count, share, meaning; every category, in report order
    examples: dict[str, pd.DataFrame]  # category -> its worst reviews (rows of `samples`)
    samples: pd.DataFrame  # the paired table with a `category` column, one row per review


def triage_categories(name_a: str = "dense", name_b: str = "cnn") -> list[str]:
    """The five category names, in report order."""
    return [c.format(a=name_a, b=name_b) for c in TRIAGE_CATEGORIES]


def _triage(
    joined: pd.DataFrame, name_a: str, name_b: str, thresholds: Thresholds, n_examples: int
) -> Triage:
    cells = outcome(joined, name_a, name_b)
    sure = (joined[f"confidence_{name_a}"] >= thresholds.confident) & (
        joined[f"confidence_{name_b}"] >= thresholds.confident
    )
    category = cells.labels
    category[(category == "both_wrong") & sure.to_numpy()] = "both_wrong_confident"
    samples = joined.assign(category=category)
    cats = triage_categories(name_a, name_b)
    loss_a, loss_b = samples[f"loss_{name_a}"], samples[f"loss_{name_b}"]
    # Examples by the loss that matters: the wrong model's for only_*_wrong, else the mean of both.
    sort_key = {cats[2]: loss_a, cats[3]: loss_b}
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
    return Triage(table, examples, samples)


def triage(
    a: pd.DataFrame,
    b: pd.DataFrame,
    name_a: str = "dense",
    name_b: str = "cnn",
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    n_examples: int = 5,
) -> Triage:
    """Each review in one of five categories: the 2x2 of `pairing.outcome`, with both_wrong split
    by `thresholds.confident` (on confidence = |P(positive) - 0.5| x 2, for both models), and up
    to `n_examples` examples per category."""
    return _triage(pair(a, b, name_a, name_b), name_a, name_b, thresholds, n_examples)


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
    check_names(name_a, name_b)
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
    check_names(name_a, name_b)
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


@dataclass(frozen=True)
class Comparison:
    """Every table of the comparison; build it with `compare`."""

    name_a: str
    name_b: str
    top_k: int
    confident: float  # the triage's confidence threshold
    metrics: pd.DataFrame
    transfer_ab: LossTransfer  # A's worst under B
    transfer_ba: LossTransfer  # B's worst under A
    triage: Triage
    phrase_flips: pd.DataFrame | None = None
    texts: dict[str, str] = field(default_factory=dict)  # review_id -> raw text, for examples
    label_errors: PairedLabelErrors | None = None  # each model's likely label errors
    # A's worst under B once the reviews both models flag are set aside (None: nothing left)
    transfer_ab_clean: LossTransfer | None = None


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
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    min_count: int = 3,
    n_examples: int = 5,
    top_phrases: int = 20,
) -> Comparison:
    """All comparison tables. `phrases_*` come from `phrase_scores` (skip them: no flip table).

    `texts` maps review_id -> review text for the examples; without it a "text" column of `a`
    is used if present.
    """
    joined = pair(a, b, name_a, name_b)
    label_errors = paired_label_errors(a, b, name_a, name_b)
    clean = joined[~joined["review_id"].isin(label_errors.both)]
    if texts is None and "text" in a.columns:
        texts = dict(zip(a["review_id"].astype(str), a["text"], strict=True))
    flips = None
    if phrases_a is not None and phrases_b is not None:
        flips = phrase_sign_flips(phrases_a, phrases_b, min_count, top_phrases, name_a, name_b)
    return Comparison(
        name_a=name_a,
        name_b=name_b,
        top_k=top_k,
        confident=thresholds.confident,
        metrics=metrics_table(metrics_a, metrics_b, name_a, name_b),
        transfer_ab=_transfer(joined, name_a, name_b, top_k),
        transfer_ba=_transfer(joined, name_b, name_a, top_k),
        triage=_triage(joined, name_a, name_b, thresholds, n_examples),
        phrase_flips=flips,
        texts={str(k): str(v) for k, v in dict(texts or {}).items()},
        label_errors=label_errors,
        transfer_ab_clean=_transfer(clean, name_a, name_b, top_k) if len(clean) else None,
    )


def comparison_numbers(comp: Comparison) -> dict[str, float]:
    """Flat, finite numbers for MLflow metrics.

    loss_reduction_<a>_top<k>_by_<b>, top<k>_<a>_mean_loss_<a|b> (both ways), triage_<category>
    and triage_<category>_share, and each model's test metrics as <name>_<key>; with likely label
    errors set aside: loss_reduction_<a>_top<k>_by_<b>_clean, top<k>_<a>_label_errors (of A's
    top k, how many both models flag) and label_errors_both (flagged by both, all test reviews).
    """
    a, b, k = comp.name_a, comp.name_b, comp.top_k
    numbers: dict[str, float] = {}
    for t in (comp.transfer_ab, comp.transfer_ba):
        src, dst = t.source, t.target
        numbers[f"loss_reduction_{src}_top{k}_by_{dst}"] = t.loss_reduction
        numbers[f"top{k}_{src}_mean_loss_{src}"] = t.mean_loss_source
        numbers[f"top{k}_{src}_mean_loss_{dst}"] = t.mean_loss_target
    if comp.label_errors is not None:
        top = comp.label_errors.counts_among(comp.transfer_ab.table["review_id"])
        numbers[f"top{k}_{a}_label_errors"] = float(top["both"])
        numbers["label_errors_both"] = float(len(comp.label_errors.both))
    if comp.transfer_ab_clean is not None:
        numbers[f"loss_reduction_{a}_top{k}_by_{b}_clean"] = comp.transfer_ab_clean.loss_reduction
    for row in comp.triage.counts.itertuples(index=False):
        numbers[f"triage_{row.category}"] = float(row.count)
        numbers[f"triage_{row.category}_share"] = float(row.share)
    for row in comp.metrics.itertuples(index=False):
        numbers[f"{a}_{row.key}"] = float(getattr(row, a))
        numbers[f"{b}_{row.key}"] = float(getattr(row, b))
    # MLflow rejects nothing here, but NaN metrics plot as gaps and confuse comparisons.
    return {k: v for k, v in numbers.items() if math.isfinite(v)}
