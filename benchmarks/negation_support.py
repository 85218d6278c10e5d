"""Does IMDB teach what the negation check expects? Per adjective of the check: how the training
reviews that deny it ("not great", "not a great", "not really great") are labelled, and how often
each logged benchmark model passes that adjective's negation cases.

The check wants "The acting was not great." below 0.5. A model learns what the labels say, and
most training reviews that say "not great" are labelled positive (2026-12-07: 59% of 209). Reads
the training split only (the test split is never read), and scores the models `train_benchmark.py`
logged last:

    IMDB_ARCHIVE=../shared/data/aclImdb_v1.tar.gz .venv/bin/python benchmarks/negation_support.py --runs 6
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.behaviour.suite import run_behaviour_suite  # noqa: E402
from analysis.behaviour.templates import NEG_ADJ, POS_ADJ  # noqa: E402
from benchmarks.rescore_behaviour import logged_benchmark_models  # noqa: E402
from data.imdb import load_imdb  # noqa: E402
from data.text import tokenize  # noqa: E402

# "not" this many tokens before the adjective at most: "not great", "not a great", "not really great".
REACH = 2


def denials(tokens: list[str], adjectives: set[str]) -> set[str]:
    """The adjectives a review denies: each one with "not" at most `REACH` tokens before it."""
    return {
        word
        for i, word in enumerate(tokens)
        if word in adjectives and "not" in tokens[max(0, i - REACH) : i]
    }


def corpus_support(texts: list[str], labels: np.ndarray) -> pd.DataFrame:
    """Per adjective: the training reviews denying it, and the share of them labelled negative."""
    adjectives = set(POS_ADJ) | set(NEG_ADJ)
    counts = {0: Counter[str](), 1: Counter[str]()}
    for text, label in zip(texts, labels, strict=True):
        counts[int(label)].update(denials(tokenize(text), adjectives))
    rows = []
    for adj in (*POS_ADJ, *NEG_ADJ):
        negative, positive = counts[0][adj], counts[1][adj]
        total = negative + positive
        rows.append(
            {
                "adjective": adj,
                "kind": "not_pos" if adj in POS_ADJ else "not_neg",
                "reviews": total,
                "share_negative": negative / total if total else np.nan,
            }
        )
    return pd.DataFrame(rows).set_index("adjective")


def pass_rates_by_adjective(model_uri: str) -> pd.Series:
    """The logged model's negation pass rate per adjective of the cases."""
    model = mlflow.pyfunc.load_model(model_uri)
    report = run_behaviour_suite(
        lambda texts: model.predict(pd.DataFrame({"review": texts}))["prob_positive"].to_numpy()
    )
    return pd.Series(report.adjective_pass_rates("negation"))


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=6, help="the latest N benchmark runs")
    args = parser.parse_args(argv)
    frame, _ = load_imdb()
    train = frame[frame["split"] == "train"]
    table = corpus_support(train["text"].tolist(), train["label"].to_numpy())
    for run, model_uri in logged_benchmark_models(args.runs):
        table[run.info.run_name.removeprefix("benchmark-")] = pass_rates_by_adjective(model_uri)
    with pd.option_context(
        "display.width", 250, "display.max_columns", None, "display.precision", 2
    ):
        print(table)
    return table


if __name__ == "__main__":
    main()
