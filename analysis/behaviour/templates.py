"""The words and sentence templates of the behavioural checks (`cases` draws its cases from them).

Common IMDB words, written here so the suite needs no data. A template's slots: {adj}, {noun},
{film}, {a} (the article before the adjective), {context} (a neutral opening sentence); contrast
templates hold {a1} (the conceded clause's adjective) and {a2} (the judging clause's).
"""

from __future__ import annotations

from typing import Literal, get_args

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
# Sentiment-free filler so inputs look like reviews rather than bare phrases.
CONTEXTS = (
    "I saw this film last week with my sister.",
    "I watched this movie on a rainy Sunday afternoon.",
    "We rented this one on a Friday night.",
    "A friend of mine recommended this film to me.",
    "I went into this movie knowing nothing about it.",
    "I caught this on television late at night.",
    "My husband and I watched it at the cinema downtown.",
    "I finally got around to watching this after years.",
)
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
