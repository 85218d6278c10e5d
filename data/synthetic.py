"""A deterministic generator of synthetic movie reviews, with the same schema as the IMDB table.

It carries the phenomena that separate a bag-of-words model from one that reads context:
negated praise and criticism ("not brilliant"), diminished praise ("mildly entertaining"),
contrast ("a brilliant cast wasted on a dull script"), rare made-up words that fall out of
vocabulary, and lengths from a handful of words to several hundred. Ratings follow labels
(positive 7-10, negative 1-4). It serves offline demos and fast tests; IMDB is the real thing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data.imdb import COLUMNS, sort_reviews

POSITIVE = [
    "brilliant",
    "wonderful",
    "superb",
    "gripping",
    "moving",
    "delightful",
    "masterful",
    "entertaining",
    "charming",
    "excellent",
    "touching",
    "funny",
    "stunning",
    "clever",
    "beautiful",
]
NEGATIVE = [
    "dull",
    "boring",
    "awful",
    "tedious",
    "clumsy",
    "forgettable",
    "terrible",
    "lifeless",
    "bland",
    "painful",
    "predictable",
    "dreadful",
    "messy",
    "shallow",
    "annoying",
]
NOUNS = [
    "cast",
    "script",
    "plot",
    "direction",
    "score",
    "cinematography",
    "pacing",
    "ending",
    "dialogue",
    "performances",
    "story",
    "soundtrack",
    "editing",
    "lead",
    "villain",
]
DIMINISHERS = ("mildly", "barely", "only slightly", "somewhat", "hardly")
FILLERS = (
    "i watched it on a rainy sunday with friends",
    "the film runs a little over two hours",
    "it was released in the autumn",
    "my brother recommended it to me",
    "the trailer gave away most of the twists",
    "it is based on a novel i have not read",
    "the director made three films before this one",
    "we saw it in a small cinema downtown",
)
_SYLLABLES = [
    "ka",
    "zo",
    "ri",
    "mu",
    "tel",
    "vor",
    "an",
    "qui",
    "bex",
    "lo",
    "pra",
    "sun",
    "dre",
    "yl",
    "fen",
    "ox",
]


def _rare_word(rng: np.random.Generator) -> str:
    """A made-up word (character names, foreign titles): almost surely out of vocabulary."""
    return "".join(rng.choice(_SYLLABLES, size=rng.integers(3, 5)))


def _sentence(rng: np.random.Generator, positive: bool) -> str:
    """One sentence whose overall meaning agrees with the review's label."""
    same, other = (POSITIVE, NEGATIVE) if positive else (NEGATIVE, POSITIVE)
    noun, noun2 = rng.choice(NOUNS, size=2, replace=False)
    kind = rng.choice(
        ["plain", "negated", "diminished", "contrast", "filler"], p=[0.3, 0.2, 0.15, 0.15, 0.2]
    )
    if kind == "plain":
        return f"the {noun} was {rng.choice(same)}"
    if kind == "negated":  # negating the opposite word supports the label
        return f"the {noun} was not {rng.choice(other)}"
    if kind == "diminished":
        if positive:  # "not ... dull at all" reads positive; diminished criticism is mild praise
            return f"the {noun} was {rng.choice(DIMINISHERS)} {rng.choice(NEGATIVE)} but never a problem"
        return f"the {noun} was {rng.choice(DIMINISHERS)} {rng.choice(POSITIVE)} at best"
    if kind == "contrast":  # the clause after the contrast carries the judgement
        if positive:
            return (
                f"a {rng.choice(NEGATIVE)} {noun} is redeemed by a {rng.choice(POSITIVE)} {noun2}"
            )
        return f"a {rng.choice(POSITIVE)} {noun} wasted on a {rng.choice(NEGATIVE)} {noun2}"
    return str(rng.choice(FILLERS))


def _review(rng: np.random.Generator, positive: bool) -> str:
    # Heavy-tailed length: most reviews have a few sentences, some run to several hundred words.
    n_sentences = int(min(80, 1 + rng.geometric(0.12)))
    if rng.random() < 0.05:
        n_sentences = 1
    oov_rate = rng.choice([0.0, 0.05, 0.4], p=[0.6, 0.3, 0.1])  # some reviews full of rare words
    sentences = []
    for _ in range(n_sentences):
        words = _sentence(rng, positive).split()
        if oov_rate:
            words = [_rare_word(rng) if rng.random() < oov_rate else w for w in words]
        sentences.append(" ".join(words))
    text = ". ".join(sentences).capitalize() + "."
    if rng.random() < 0.1:
        text = text.replace(". ", ".<br /><br />", 1)  # IMDB-like HTML residue
    return text


REVIEWS_PER_MOVIE = 5  # on average, per split, with the default even train/test split


def synthetic_reviews(n: int = 2_000, seed: int = 0, test_fraction: float = 0.5) -> pd.DataFrame:
    """`n` reviews, balanced between classes, split into train and test; same seed, same table."""
    if n < 4:
        raise ValueError(
            f"the synthetic corpus needs at least 4 reviews (2 classes x 2 splits), got {n}"
        )
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    movie_rng = np.random.default_rng([seed, 1])  # its own stream: the texts stay as they were
    rows = []
    counters = {(s, c): 0 for s in ("train", "test") for c in ("neg", "pos")}
    for i in range(n):
        label = i % 2
        pair = i // 2  # spread test reviews evenly: exactly round(pairs * test_fraction) of them
        split = "test" if int((pair + 1) * test_fraction) > int(pair * test_fraction) else "train"
        cls = "pos" if label else "neg"
        rating = int(rng.integers(7, 11) if label else rng.integers(1, 5))
        idx = counters[(split, cls)]
        counters[(split, cls)] += 1
        text = _review(rng, bool(label))
        # Several reviews per movie, and no movie in both splits, as in IMDB.
        movie = f"{split}-movie-{movie_rng.integers(max(1, n // (2 * REVIEWS_PER_MOVIE)))}"
        rows.append((f"{split}/{cls}/{idx}_{rating}", split, text, label, rating, movie))
    return sort_reviews(pd.DataFrame(rows, columns=COLUMNS))
