"""Reviews with drift planted on purpose, and a champion of known accuracy, for the drift tests.

Reference reviews draw words from a Zipf-like vocabulary of 400 made-up words, lengths from a
log-normal (median ~90 tokens), labels 50/50 and ratings that follow the label (IMDB has no 5
or 6). The champion's vocabulary keeps the 300 most frequent reference words, so the reference
has a small, honest out-of-vocabulary rate. Drift is planted one knob at a time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data.text import Vocabulary, tokenize

WORDS = [f"w{i:03d}" for i in range(400)]
_P = 1.0 / np.arange(1, len(WORDS) + 1) ** 1.1
ZIPF = _P / _P.sum()
SLANG = ["rizz", "bussin", "nocap", "skibidi", "gyatt", "delulu", "slay", "mid"]
VOCAB_SIZE = 302  # 300 words + the two reserved ids


def reviews(
    n: int,
    seed: int,
    positive: float = 0.5,
    length_scale: float = 1.0,
    slang: float = 0.0,
    extreme_ratings: float = 0.0,
) -> pd.DataFrame:
    """`n` reviews: share `positive` positive, lengths x `length_scale`, each token replaced by a
    slang word with probability `slang`, a share `extreme_ratings` of ratings pushed to 1 / 10."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < positive).astype(int)
    lengths = np.maximum(3, np.round(rng.lognormal(4.5, 0.6, n) * length_scale)).astype(int)
    texts = []
    for length in lengths:
        words = rng.choice(WORDS, size=length, p=ZIPF).astype(object)  # <U4 would cut slang
        swap = rng.random(length) < slang
        words[swap] = rng.choice(SLANG, size=int(swap.sum()))
        texts.append(" ".join(words))
    ratings = np.where(labels == 1, rng.integers(7, 11, n), rng.integers(1, 5, n))
    extreme = rng.random(n) < extreme_ratings
    ratings[extreme] = np.where(labels[extreme] == 1, 10, 1)
    return pd.DataFrame({"text": texts, "label": labels, "rating": ratings})


def vocabulary(reference: pd.DataFrame) -> Vocabulary:
    """The champion's vocabulary: built from the reference as `data.prepare` builds it."""
    return Vocabulary.build((tokenize(t) for t in reference["text"]), VOCAB_SIZE)


def champion_probs(labels: np.ndarray, accuracy: float, seed: int) -> np.ndarray:
    """P(positive) of a champion that is right on a share `accuracy` of the reviews (in
    expectation), with confidences spread over 0.55-0.99."""
    rng = np.random.default_rng(seed)
    right = rng.random(len(labels)) < accuracy
    sure = rng.uniform(0.55, 0.99, len(labels))
    toward_positive = np.where(right, labels == 1, labels == 0)
    return np.where(toward_positive, sure, 1 - sure)
