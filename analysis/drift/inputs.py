"""What the measures read off the input frames: labels, ratings and predictions checked (a
frame of another shape fails with its name and the reason), and one tokenizer pass per side.

The tokenizer and vocabulary are the champion's, passed in: the OOV rate means "words this
champion cannot read", which only its own tokenization and vocabulary can say.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from data.text import tokenize

Tokenizer = Callable[[str], Sequence[str]]


@dataclass(frozen=True)
class TokenProfile:
    """What the measures need from one side's text, from a single tokenizer pass.

    `lengths` and `oov_counts` per review; `oov_tokens` counts each out-of-vocabulary word's
    occurrences, `oov_reviews` the reviews it occurs in.
    """

    lengths: np.ndarray
    oov_counts: np.ndarray
    oov_tokens: Counter[str]
    oov_reviews: Counter[str]

    @property
    def oov_shares(self) -> np.ndarray:
        """Per review, the share of its tokens missing from the vocabulary; empty reviews
        (no tokens, share undefined) are left out."""
        kept = self.lengths > 0
        return self.oov_counts[kept] / self.lengths[kept]


def profile_texts(
    texts: Sequence[object], vocabulary: Container[str], tokenizer: Tokenizer = tokenize
) -> TokenProfile:
    """Tokenize each text once (a non-string, e.g. a missing review, reads as no tokens)."""
    lengths, oovs = np.zeros(len(texts), dtype=np.int64), np.zeros(len(texts), dtype=np.int64)
    oov_tokens: Counter[str] = Counter()
    oov_reviews: Counter[str] = Counter()
    for i, text in enumerate(texts):
        tokens = tokenizer(text) if isinstance(text, str) else []
        missing = [t for t in tokens if t not in vocabulary]
        lengths[i], oovs[i] = len(tokens), len(missing)
        oov_tokens.update(missing)
        oov_reviews.update(set(missing))
    return TokenProfile(lengths, oovs, oov_tokens, oov_reviews)


def checked_labels(frame: pd.DataFrame, name: str) -> np.ndarray:
    for column in ("text", "label"):
        if column not in frame.columns:
            raise ValueError(f"{name} frame lacks column {column!r} (needs text, label)")
    if frame.empty:
        raise ValueError(f"{name} frame has no reviews: nothing to compare")
    labels = pd.to_numeric(frame["label"], errors="coerce")
    if not labels.isin([0, 1]).all():
        bad = frame["label"][~labels.isin([0, 1])].head(3).tolist()
        raise ValueError(f"{name} labels must be 0 or 1, got e.g. {bad}")
    return labels.to_numpy(dtype=np.int64)


def checked_ratings(frame: pd.DataFrame, name: str) -> np.ndarray | None:
    """Non-missing ratings as integers 1-10; None when the frame has none."""
    if "rating" not in frame.columns:
        return None
    values = pd.to_numeric(frame["rating"], errors="coerce").dropna().to_numpy(dtype=float)
    if values.size == 0:
        return None
    bad = values[(values != np.rint(values)) | (values < 1) | (values > 10)]
    if bad.size:
        raise ValueError(f"{name} ratings must be whole numbers 1-10, got e.g. {bad[:3].tolist()}")
    return values.astype(np.int64)


def checked_probs(prob: ArrayLike, n: int, name: str) -> np.ndarray:
    p = np.asarray(prob, dtype=float).reshape(-1)
    if p.shape[0] != n:
        raise ValueError(f"{name}: {p.shape[0]} predictions for {n} reviews")
    if not (np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()):
        raise ValueError(f"{name}: predictions must be probabilities in [0, 1]")
    return p
