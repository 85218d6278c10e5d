"""Likely label errors: reviews whose given label the evidence says is wrong (confident learning).

Many of the highest-loss reviews are not model errors but label errors (a review full of praise
and a 9.5/10, filed under negative). Confident learning (`cleanlab`) finds them from
out-of-sample probabilities: per class, the mean probability a model gives the class on the
reviews labelled with it is that class's threshold; a review labelled one class whose probability
of the other reaches the other's threshold counts toward the confident joint, whose off-diagonal
estimates how many labels are wrong, and the reviews with the largest margin for the other class
are flagged, that many of them.

    cross_validated_probs  out-of-sample P(positive) of the training reviews: TF-IDF (1-2 grams)
                           + logistic regression, the benchmark baseline's settings, refitted in
                           5 folds grouped by movie (a movie's reviews are never on both sides,
                           so a title or a name cannot carry the label across); the texts are
                           tokenised and counted once, the weighting and the classifier are
                           fitted per fold
    flag_label_issues      cleanlab on one split: flags, label-quality scores, the estimate
    label_issues           both splits -> `LabelIssues` (the issue table, the estimates, the test
                           accuracy as is and with the flagged reviews set aside)

On test the probabilities are the trained model's own (it never saw those reviews), so the
accuracy without the flagged reviews is an upper bound: a review is flagged because this model
confidently disagrees with its label. It is reported beside the plain accuracy, never instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from cleanlab.count import num_label_issues
from cleanlab.filter import find_label_issues
from cleanlab.rank import get_label_quality_scores
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import Pipeline, make_pipeline
from tqdm.auto import tqdm

from analysis.common.render import fmt_number, fmt_pct, markdown_table, opening
from analysis.common.schema import CLASS_NAMES
from data.text import standardize

CV_FOLDS = 5
CV_SEED = 0
# Bump when the cross-validation changes, so cached probabilities are recomputed.
CV_VERSION = "2"
OOF_COLUMNS = ("review_id", "label", "prob_positive", "fold")
ISSUE_COLUMNS = (
    "review_id",
    "split",
    "label",
    "suggested_label",
    "label_quality",
    "prob_positive",
    "snippet",
)
SPLITS = ("test", "train")  # the order of the issue table and the report
WORST_SHOWN = 5


def ngram_counts() -> CountVectorizer:
    """Word and word-pair counts of the TF-IDF baseline (`benchmarks/train_benchmark.py`)."""
    return CountVectorizer(preprocessor=standardize, ngram_range=(1, 2), min_df=2)


def weighted_classifier() -> Pipeline:
    """The baseline's weighting and classifier, over `ngram_counts`: cheap enough to refit per fold."""
    return make_pipeline(
        TfidfTransformer(sublinear_tf=True),
        LogisticRegression(C=4.0, max_iter=1000, solver="liblinear"),
    )


def grouped_folds(
    labels: np.ndarray, groups: np.ndarray, folds: int = CV_FOLDS, seed: int = CV_SEED
) -> np.ndarray:
    """The held-out fold of each row: stratified by label, every group in one fold only."""
    labels, groups = np.asarray(labels), np.asarray(groups)
    n_groups = len(pd.unique(groups))
    if n_groups < 2 or len(np.unique(labels)) < 2:
        raise ValueError(
            f"cross-validation needs 2+ groups and both classes, got {n_groups} group(s) "
            f"and classes {sorted(np.unique(labels).tolist())}"
        )
    splitter = StratifiedGroupKFold(min(folds, n_groups), shuffle=True, random_state=seed)
    fold = np.full(len(labels), -1)
    for k, (_, held) in enumerate(splitter.split(np.zeros(len(labels)), labels, groups)):
        fold[held] = k
    return fold


def cross_validated_probs(
    frame: pd.DataFrame,
    groups: np.ndarray,
    folds: int = CV_FOLDS,
    seed: int = CV_SEED,
    progress: bool = False,
) -> pd.DataFrame:
    """Out-of-sample P(positive) of each review of `frame` (review_id, text, label), from a
    `weighted_classifier` over `ngram_counts` fitted on the other folds; `groups` (one per row:
    the movie) never straddle a fit and its held-out fold. Columns `OOF_COLUMNS`, in `frame`'s
    order."""
    labels = frame["label"].to_numpy(dtype=int)
    fold = grouped_folds(labels, groups, folds, seed)
    # Counted once over every fold (what tokenising costs); the vocabulary's min_df and the
    # IDF weights see no label, and the weights are refitted on each fit's own rows.
    counts = ngram_counts().fit_transform(frame["text"].astype(str).to_numpy()).tocsr()
    prob = np.full(len(frame), np.nan)
    for k in tqdm(np.unique(fold), desc="Label-error folds", unit="fold", disable=not progress):
        held = fold == k
        model = weighted_classifier().fit(counts[~held], labels[~held])
        prob[held] = model.predict_proba(counts[held])[:, 1]
    return pd.DataFrame(
        {
            "review_id": frame["review_id"].astype(str).to_numpy(),
            "label": labels,
            "prob_positive": prob,
            "fold": fold,
        }
    )


@dataclass(frozen=True)
class LabelFlags:
    """Confident learning on one set of reviews, row for row."""

    flagged: np.ndarray  # bool: a likely label error
    quality: np.ndarray  # label-quality score: the probability of the given label (low = suspect)
    suggested: np.ndarray  # the likelier class
    estimate: int  # cleanlab's estimate of how many labels are wrong


def flag_label_issues(labels: np.ndarray, prob_positive: np.ndarray) -> LabelFlags:
    """cleanlab's flags and estimate from given labels and out-of-sample P(positive).

    The estimate is `num_label_issues` with the calibrated off-diagonal (cleanlab's advice for
    fewer than 4 classes); flags are `find_label_issues`' default (prune by noise rate). With one
    class only, nothing can be told apart: nothing flagged, estimate 0.
    """
    labels = np.asarray(labels, dtype=int)
    prob = np.clip(np.asarray(prob_positive, dtype=float), 0.0, 1.0)
    probs = np.column_stack([1.0 - prob, prob])
    quality = get_label_quality_scores(labels, probs) if len(labels) else np.zeros(0, dtype=float)
    suggested = (prob >= 0.5).astype(int)
    if len(np.unique(labels)) < 2:
        return LabelFlags(np.zeros(len(labels), dtype=bool), quality, suggested, 0)
    # n_jobs=1: no worker processes inside a Prefect task; one pass over 25,000 rows is fast.
    flagged = find_label_issues(labels, probs, n_jobs=1)
    estimate = num_label_issues(labels, probs, estimation_method="off_diagonal_calibrated")
    return LabelFlags(np.asarray(flagged, dtype=bool), quality, suggested, int(estimate))


@dataclass(frozen=True)
class SplitSummary:
    """How many reviews of one split were checked, estimated wrong, and flagged."""

    split: str
    reviews: int
    estimate: int
    flagged: int


@dataclass(frozen=True)
class LabelIssues:
    """The likely label errors of the test split (and the training split, when given)."""

    table: pd.DataFrame  # `ISSUE_COLUMNS`: flagged reviews, test then train, worst first
    splits: tuple[SplitSummary, ...]
    test_accuracy: float  # on every test review
    test_accuracy_without: float  # on the test reviews not flagged

    def summary(self, split: str) -> SplitSummary | None:
        return next((s for s in self.splits if s.split == split), None)

    def metrics(self) -> dict[str, float]:
        """label_issues_<split>_estimate and _flagged, test_acc_without_label_issues."""
        numbers = {}
        for s in self.splits:
            numbers[f"label_issues_{s.split}_estimate"] = float(s.estimate)
            numbers[f"label_issues_{s.split}_flagged"] = float(s.flagged)
        numbers["test_acc_without_label_issues"] = self.test_accuracy_without
        return {k: v for k, v in numbers.items() if np.isfinite(v)}

    def markdown(self, top: int = WORST_SHOWN) -> str:
        return label_issues_markdown(self, top)


def _issue_rows(split: str, frame: pd.DataFrame, flags: LabelFlags) -> pd.DataFrame:
    texts = frame["text"] if "text" in frame.columns else pd.Series("", index=frame.index)
    rows = pd.DataFrame(
        {
            "review_id": frame["review_id"].astype(str).to_numpy(),
            "split": split,
            "label": frame["label"].to_numpy(dtype=int),
            "suggested_label": flags.suggested,
            "label_quality": flags.quality,
            "prob_positive": frame["prob_positive"].to_numpy(dtype=float),
            "snippet": [opening(t) for t in texts],
        }
    )[flags.flagged]
    return rows.sort_values(["label_quality", "review_id"], kind="stable")


def label_issues(test: pd.DataFrame, train: pd.DataFrame | None = None) -> LabelIssues:
    """Likely label errors of `test` (and `train`): frames with review_id, label, prob_positive
    (out-of-sample: the model's own on test, `cross_validated_probs` on train) and, optionally,
    text for the snippets. Accuracy is (P(positive) >= 0.5) == label, as in the per-review table.
    """
    test_flags = flag_label_issues(test["label"].to_numpy(), test["prob_positive"].to_numpy())
    splits = [("test", test, test_flags)]
    if train is not None:
        flags = flag_label_issues(train["label"].to_numpy(), train["prob_positive"].to_numpy())
        splits.append(("train", train, flags))
    right = (test["prob_positive"].to_numpy(dtype=float) >= 0.5) == test["label"].to_numpy(int)
    kept = right[~test_flags.flagged]  # the flagged test reviews set aside
    table = pd.concat([_issue_rows(*split) for split in splits], ignore_index=True)
    return LabelIssues(
        table=table.reindex(columns=list(ISSUE_COLUMNS)),
        splits=tuple(
            SplitSummary(name, len(frame), flags.estimate, int(flags.flagged.sum()))
            for name, frame, flags in splits
        ),
        test_accuracy=float(right.mean()) if len(right) else float("nan"),
        test_accuracy_without=float(kept.mean()) if len(kept) else float("nan"),
    )


def _class(value: object) -> str:
    return CLASS_NAMES.get(int(value), str(value))


def _worst(table: pd.DataFrame, split: str, top: int) -> pd.DataFrame:
    shown = table[table["split"] == split].head(top)
    return pd.DataFrame(
        {
            "review": shown["review_id"],
            "given": [_class(v) for v in shown["label"]],
            "suggested": [_class(v) for v in shown["suggested_label"]],
            "label quality": [fmt_number(v, 3) for v in shown["label_quality"]],
            "text": shown["snippet"],
        }
    )


def label_issues_markdown(issues: LabelIssues, top: int = WORST_SHOWN) -> str:
    """The "Likely label errors" section of insights.md."""
    lines = [
        "",
        "## Likely label errors",
        "",
        "Confident learning (cleanlab) on out-of-sample P(positive): on test, this model's own; "
        f"on train, TF-IDF + logistic regression in {CV_FOLDS} folds grouped by movie. A review "
        "is flagged when the evidence confidently favours the other class. All flagged reviews, "
        "worst first: `label_issues.csv`.",
        "",
    ]
    summary = pd.DataFrame(
        {
            "split": [s.split for s in issues.splits],
            "reviews": [s.reviews for s in issues.splits],
            "estimated label errors": [s.estimate for s in issues.splits],
            "share": [
                fmt_pct(s.estimate / s.reviews) if s.reviews else "n/a" for s in issues.splits
            ],
            "flagged": [s.flagged for s in issues.splits],
        }
    )
    lines += [markdown_table(summary, right=list(summary.columns[1:])), ""]
    test = issues.summary("test")
    if test is not None and test.reviews:
        lines += [
            f"Test accuracy: {fmt_number(issues.test_accuracy)} as is; "
            f"{fmt_number(issues.test_accuracy_without)} with the {test.flagged:,} flagged "
            "reviews set aside. They are flagged because this model confidently disagrees with "
            "their label, so the second figure is an upper bound, not the model's accuracy.",
            "",
        ]
    for s in issues.splits:
        if s.flagged:
            lines += [f"### The {min(top, s.flagged)} worst ({s.split})", ""]
            lines += [markdown_table(_worst(issues.table, s.split, top)), ""]
    return "\n".join(lines)


def attach_texts(
    frame: pd.DataFrame, review_ids: Sequence[str], texts: Sequence[str]
) -> pd.DataFrame:
    """`frame` with a text column looked up by review_id (for the snippets)."""
    lookup = dict(zip(map(str, review_ids), texts, strict=True))
    return frame.assign(text=[lookup.get(str(r), "") for r in frame["review_id"]])
