"""The words and sentence templates of the behavioural checks (`cases` draws its cases from them).

Common IMDB words, written here so the suite needs no data. A template's slots: {adj}, {noun},
{film}, {a} (the article before the adjective), {context} (a neutral opening sentence); contrast
templates hold {a1} (the conceded clause's adjective) and {a2} (the judging clause's).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal, get_args

from data.text import NEGATION_WORDS, tokenize

POS_ADJ = (
    "great",
    "excellent",
    "wonderful",
    "brilliant",
    "good",
    "enjoyable",
    "entertaining",
    "funny",
    "amazing",
    "beautiful",
)
NEG_ADJ = (
    "bad",
    "terrible",
    "awful",
    "boring",
    "dull",
    "poor",
    "weak",
    "stupid",
    "horrible",
    "disappointing",
)
DIMINISHERS = ("mildly", "barely", "hardly", "only slightly", "somewhat")
NOUNS = (
    "acting",
    "story",
    "plot",
    "script",
    "cast",
    "soundtrack",
    "direction",
    "ending",
    "dialogue",
    "cinematography",
)
FILMS = ("movie", "film")
# Sentiment-free filler so inputs look like reviews rather than bare phrases. Free of sentiment in
# IMDB, not only to a reader (`filler_problems`; tests/data/test_real_imdb.py checks it on the real
# training reviews): the first fillers held "recommended" (+1.18), "rented" (-0.90) and "nothing",
# a negation word, and scored alone P(pos) 0.12-0.98 under the benchmark models.
CONTEXTS = (
    "I watched it last night.",
    "I watched this movie with a friend from work.",
    "I watched the movie this morning.",
    "We watched it at my place last night.",
    "I saw this film on a plane.",
    "We saw this movie as a group of four.",
    "I saw this one on a Monday.",
    "I watched the film twice this year.",
)
# A filler's words may each lean this far at most, and all of them together too, in the training
# reviews' document-frequency log ratio (`word_polarities`): 0.3 is a word 1.35 times as frequent
# in one class's reviews as in the other's.
FILLER_MAX_POLARITY = 0.3
# Real names on purpose: a model that learned "Seagal" means a bad film fails invariance.
ACTORS = (
    "John Smith",
    "Maria Garcia",
    "Tom Hanks",
    "Meryl Streep",
    "Denzel Washington",
    "Keanu Reeves",
    "Nicolas Cage",
    "Steven Seagal",
    "Julia Roberts",
    "Samuel Jackson",
    "Emma Thompson",
    "Chen Wei",
)
# Invented titles without sentiment words, so any shift is the model reacting to the name.
TITLES = (
    "The Northern Road",
    "Harbor Lights",
    "Cold River",
    "The Last Station",
    "Silver Creek",
    "Midnight Train",
    "The Glass House",
    "Blue Valley",
    "Paper Bridges",
    "The Quiet Hour",
)
SENTIMENT_WORDS = (
    frozenset(POS_ADJ + NEG_ADJ)
    | {"not", "but", "although", "though", "despite"}
    | {w for d in DIMINISHERS for w in d.split()}
)

# (base, variant) sentence templates; {adj}, {noun}, {film}, {a} (article before adj) fill in.
NEGATION_TEMPLATES = (
    ("The {noun} was {adj}.", "The {noun} was not {adj}."),
    ("This {film} is {adj}.", "This {film} is not {adj}."),
    ("I found the {noun} {adj}.", "I did not find the {noun} {adj}."),
    ("The {noun} is really {adj}.", "The {noun} is not really {adj}."),
    ("It was {a} {adj} {film}.", "It was not {a} {adj} {film}."),
)
DIMINISHER_TEMPLATES = (
    ("The {noun} was {adj}.", "The {noun} was {dim} {adj}."),
    ("This {film} is {adj}.", "This {film} is {dim} {adj}."),
    ("I found the {noun} {adj}.", "I found the {noun} {dim} {adj}."),
    ("Overall the {film} was {adj}.", "Overall the {film} was {dim} {adj}."),
)
# {a1}: the conceded clause's adjective, {a2}: the clause that carries the overall judgement.
# Where the verdict stands: a model that only weighs the end of a review passes "last" alone.
ContrastKind = Literal["verdict_last", "verdict_first"]
CONTRAST_KINDS: tuple[ContrastKind, ...] = get_args(ContrastKind)
CONTRAST_TEMPLATES: dict[ContrastKind, tuple[str, ...]] = {
    "verdict_last": (
        "The {noun} was {a1}, but the {noun2} was {a2}.",
        "{A1} {noun} but {a2} {noun2}.",
        "The {noun} is {a1} but overall the {film} is {a2}.",
        "Although the {noun} was {a1}, the {film} itself was {a2}.",
        "It has {art1} {a1} {noun}, but it is {art2} {a2} {film}.",
    ),
    "verdict_first": (
        "The {film} was {a2}, although the {noun} was {a1}.",
        "Overall the {film} is {a2}, even though the {noun} is {a1}.",
        "It is {art2} {a2} {film}, despite {art1} {a1} {noun}.",
        "The {film} itself was {a2}, though the {noun} was {a1}.",
        "{A2} {film}, even if the {noun} is {a1}.",
    ),
}
INVARIANCE_ACTOR_TEMPLATES = (
    "{context} {name} plays the lead, and the {film} is {adj}.",
    "{context} I thought {name} was {adj} in this one.",
    "{name} stars in this {film}. {context} The {noun} was {adj}.",
)
INVARIANCE_TITLE_TEMPLATES = (
    "{name} is {a} {adj} {film}. {context}",
    "{context} I have to say {name} was {adj}.",
    "{context} The {noun} of {name} was {adj}.",
)
ROBUSTNESS_TEMPLATES = (
    "{context} The {noun} was {adj}.",
    "{context} This {film} is {adj}, and the {noun} is {adj2} too.",
    "{context} I found the {noun} {adj} and the {noun2} {adj2}.",
)


def word_polarities(
    token_lists: Iterable[Sequence[str]], labels: Iterable[int], words: Iterable[str]
) -> dict[str, float]:
    """Each word's lean in a labelled corpus: log of its add-one share of positive reviews over its
    add-one share of negative ones (0: as frequent in both; document frequency, not count)."""
    wanted = set(words)
    counts = {0: Counter[str](), 1: Counter[str]()}
    reviews = Counter[int]()
    for tokens, label in zip(token_lists, labels, strict=True):
        counts[int(label)].update(wanted.intersection(tokens))
        reviews[int(label)] += 1
    return {
        w: math.log((counts[1][w] + 1) / (reviews[1] + 1))
        - math.log((counts[0][w] + 1) / (reviews[0] + 1))
        for w in wanted
    }


def filler_words() -> set[str]:
    """The words of the fillers, as the models read them (`data.text.tokenize`)."""
    return {w for filler in CONTEXTS for w in tokenize(filler)}


def filler_problems(polarity: Mapping[str, float]) -> list[str]:
    """What breaks the filler rule, one line each (none: every filler is sentiment-free): a word or
    a filler leaning past `FILLER_MAX_POLARITY` in `polarity` (`word_polarities` of at least
    `filler_words`), or a negation word (`data.text.NEGATION_WORDS`)."""
    problems = []
    for filler in CONTEXTS:
        tokens = tokenize(filler)
        leaning = {w: polarity[w] for w in tokens if abs(polarity[w]) > FILLER_MAX_POLARITY}
        total = sum(polarity[w] for w in set(tokens))
        if leaning:
            problems.append(f"{filler!r}: words leaning {leaning}")
        if abs(total) > FILLER_MAX_POLARITY:
            problems.append(f"{filler!r}: leans {total:+.2f} in all")
        if denial := set(tokens) & set(NEGATION_WORDS):
            problems.append(f"{filler!r}: negation words {sorted(denial)}")
    return problems
