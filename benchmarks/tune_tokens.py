"""Would the n-gram branch gain from punctuation tokens? NBSVM over unhashed 1-3 grams, grouped CV.

The project's standardisation (the reference's) removes punctuation. This fits the branch's model
(naive-Bayes log-count ratios of binary 1-3 grams, then an L2 logistic regression on the
ratio-weighted features, C 0.1, liblinear; the first 800 tokens) with n-grams unhashed and over
the whole vocabulary, under several tokenisations, on 5 folds of the 25,000 training reviews
grouped by movie (as `benchmarks.tune_branch`). The test split is never read.

    .venv/bin/python -m benchmarks.tune_tokens current punct_all
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

from benchmarks.tune_networks import ARCHIVE
from data.imdb import read_imdb
from data.text import strip_markup, tokenize


def _clean(text: str) -> str:
    """The standardisation's markup strip and lowercasing, punctuation kept (but "&")."""
    return strip_markup(text).replace("&", " ").lower()


TOKENISERS: dict[str, Callable[[str], list[str]]] = {
    "current": tokenize,  # the project's: punctuation removed
    "excl_question": lambda t: re.findall(r"[a-z0-9]+|!|\?", _clean(t)),  # keeps ! and ? only
    "punct_all": lambda t: re.findall(r"[a-z0-9]+|[^\w\s]", _clean(t)),  # every mark a token
    # Apostrophe words whole ("don't"), runs of ! or ? as one token, every other mark a token.
    "punct_words": lambda t: re.findall(r"[a-z0-9]+(?:'[a-z]+)?|[!?]+|[^\w\s]", _clean(t)),
}


def grams(tokens: list[str]) -> list[str]:
    pairs = [f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False)]
    triples = [f"{a} {b} {c}" for a, b, c in zip(tokens, tokens[1:], tokens[2:], strict=False)]
    return tokens + pairs + triples


def nbsvm_accuracy(
    docs: list[list[str]], y: np.ndarray, fit: np.ndarray, held: np.ndarray
) -> float:
    vectorizer = CountVectorizer(analyzer=lambda d: d, binary=True)
    features = vectorizer.fit_transform([docs[i] for i in fit])
    p = np.asarray(features[y[fit] == 1].sum(0)).ravel() + 1.0
    q = np.asarray(features[y[fit] == 0].sum(0)).ravel() + 1.0
    ratios = np.log(p / p.sum()) - np.log(q / q.sum())
    model = LogisticRegression(C=0.1, solver="liblinear")
    model.fit(features.multiply(ratios).tocsr(), y[fit])
    scored = vectorizer.transform([docs[i] for i in held]).multiply(ratios).tocsr()
    return float((model.predict(scored) == y[held]).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tokenisers", nargs="+", choices=TOKENISERS)
    parser.add_argument("--max-len", type=int, default=800)
    args = parser.parse_args()
    frame = read_imdb(ARCHIVE)
    frame = frame[frame["split"] == "train"].reset_index(drop=True)
    y = frame["label"].to_numpy()
    movies = frame["movie"].fillna("none").to_numpy()
    folds = list(GroupKFold(5).split(frame, y, movies))
    for name in args.tokenisers:
        start = time.perf_counter()
        docs = [grams(TOKENISERS[name](text)[: args.max_len]) for text in frame["text"]]
        scores = [nbsvm_accuracy(docs, y, fit, held) for fit, held in folds]
        print(
            f"{name}: folds {' '.join(f'{s:.4f}' for s in scores)}; mean {np.mean(scores):.4f} "
            f"({time.perf_counter() - start:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
