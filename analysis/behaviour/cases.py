"""CheckList-style behavioural tests: templated probes of how a sentiment model treats context.

Aggregate accuracy cannot say whether a model reads "not good" as negative or follows the clause
after "but"; a bag of words (with or without word pairs) and a CNN that reads a wider window can
score alike on IMDB. Each check here builds many small, templated review-like inputs (fixed seed,
no external data) whose right answer is known, scores them with the model and reports a pass rate,
so two models can be compared with numbers.

The model is any `predict_proba(texts) -> P(positive)` over raw texts (the caller wraps an MLflow
pyfunc, which standardises the text: lowercase, HTML stripped, punctuation removed). A text is
read as positive when P >= 0.5.

Checks and pass criteria (one case = a small tuple of texts, scored together):

- negation, kind `not_pos`: (base "... was {pos}", "... was not {pos}") passes iff the negated
  text is negative (P < 0.5) AND less positive than the base.
- negation, kind `not_neg`: (base "... was {neg}", "... was not {neg}") passes iff the negated
  text is more positive than the base ("not bad" is weaker than praise, so no 0.5 bar).
- diminisher: (base "... {pos}", "... {diminisher} {pos}") passes iff the diminished text is
  strictly less positive than the base.
- contrast: ("{pos} X but {neg} Y", "{neg} X but {pos} Y") passes iff the first is negative and
  the second positive: the judgement after "but" (or the main clause beside "although") wins. The
  two texts hold the same words, so an order-blind model can pass at most by luck of ties: never.
  Kind `verdict_last` puts the judgement at the end ("..., but the film was bad"), kind
  `verdict_first` at the start ("The film was bad, although the cast was great"): a model that
  reads the conjunctions passes both, one that only weighs the end of a review passes the first
  and fails the second.
- invariance: (review with name A, same review with name B) passes iff |dP| < 0.1 and the label
  is the same; names are actors and (invented, sentiment-free) film titles.
- robustness: (review, perturbed review) passes iff |dP| < 0.1 and the label is the same; the
  perturbations are a typo (two adjacent letters swapped) in a non-sentiment word (`typo_context`)
  or in any word (`typo_any`, which can hit the sentiment word itself), and casing (`upper`,
  `titlecase`). Casing is undone by the standardisation, so the casing kinds pass by construction
  for a pyfunc model; they are kept as a guard on that contract. Typos are the real test.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from analysis.behaviour.templates import (
    ACTORS,
    CONTEXTS,
    CONTRAST_TEMPLATES,
    DIMINISHER_TEMPLATES,
    DIMINISHERS,
    FILMS,
    INVARIANCE_ACTOR_TEMPLATES,
    INVARIANCE_TITLE_TEMPLATES,
    NEG_ADJ,
    NEGATION_TEMPLATES,
    NOUNS,
    POS_ADJ,
    ROBUSTNESS_TEMPLATES,
    SENTIMENT_WORDS,
    TITLES,
)
from data.text import tokenize

CHECKS = ("negation", "diminisher", "contrast", "invariance", "robustness")

CHECK_DESCRIPTIONS = {
    "negation": "'not good' is negative and below 'good'; 'not bad' is above 'bad'",
    "diminisher": "'mildly/barely/hardly/only slightly/somewhat good' is below 'good'",
    "contrast": "'good X but bad Y' is negative and 'bad X but good Y' positive, "
    "and 'bad Y although good X' negative, verdict last or first",
    "invariance": "swapping actor names or film titles moves P(pos) < 0.1, same label",
    "robustness": "a typo or a casing change moves P(pos) < 0.1, same label",
}

THRESHOLD = 0.5  # P(pos) >= THRESHOLD reads as positive
MAX_DELTA = 0.1  # invariance/robustness tolerance on |dP|
SEPARATOR = " || "  # joins a case's texts (and probabilities) in the results table

Rule = Literal["negated_pos", "negated_neg", "less_positive", "order_flip", "invariant"]

EXPECTATIONS: dict[Rule, str] = {
    "negated_pos": "2nd text negative (P<0.5) and below the 1st",
    "negated_neg": "2nd text above the 1st",
    "less_positive": "2nd text below the 1st",
    "order_flip": "1st text negative (P<0.5), 2nd positive (P>=0.5)",
    "invariant": "|P2-P1| < 0.1 and the same label",
}

# Cases per (check, kind): 100-120 per check keeps the suite near 1,100 unique texts (1,115).
N_NEGATION = 60  # per kind (not_pos, not_neg)
N_DIMINISHER = 100
N_CONTRAST = 60  # per kind (verdict_last, verdict_first)
N_INVARIANCE = 50  # per kind (actor, title)
N_TYPO = 40  # per kind (typo_context, typo_any)
N_CASING = 20  # per kind (upper, title)


@dataclass(frozen=True)
class BehaviourCase:
    """One behavioural probe: texts scored together and judged by `rule`."""

    check: str
    name: str  # "{kind}/{index}", unique within its check
    texts: tuple[str, ...]
    expectation: str  # human-readable pass criterion
    rule: Rule = "invariant"

    @property
    def kind(self) -> str:
        return case_kind(self.name)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _fill(template: str, **slots: str) -> str:
    if "adj" in slots:
        slots.setdefault("a", _article(slots["adj"]))
    return template.format(**slots)


class _Drawer:
    """Draws distinct cases: balanced over the key axes, other slots from the seeded RNG.

    Cycling a shuffled product of the key axes (e.g. adjective x template) guarantees every
    adjective and template appears about equally often, which plain sampling would not.
    """

    def __init__(self, rng: random.Random, axes: Sequence[Sequence[object]]) -> None:
        self.rng = rng
        self.axes = [list(a) for a in axes]
        self._queue: list[tuple[object, ...]] = []

    def keys(self) -> tuple[object, ...]:
        if not self._queue:
            self._queue = list(itertools.product(*self.axes))
            self.rng.shuffle(self._queue)
        return self._queue.pop()


def case_kind(name: str) -> str:
    """A case's kind: its name before the slash (`verdict_first/007` -> `verdict_first`)."""
    return name.split("/", 1)[0]


def _collect(
    n: int, make: Callable[[], tuple[str, ...]], seen: set[tuple[str, ...]]
) -> list[tuple[str, ...]]:
    """`n` distinct text tuples from `make`; a repeated draw is discarded, not counted twice."""
    out: list[tuple[str, ...]] = []
    for _ in range(50 * n):
        if len(out) == n:
            break
        texts = make()
        if texts not in seen and len(set(texts)) == len(texts):
            seen.add(texts)
            out.append(texts)
    if len(out) < n:
        raise RuntimeError(f"could only draw {len(out)} of {n} distinct cases")
    return out


def _negation(rng: random.Random) -> list[BehaviourCase]:
    cases: list[BehaviourCase] = []
    seen: set[tuple[str, ...]] = set()
    for kind, adjs, rule in (
        ("not_pos", POS_ADJ, "negated_pos"),
        ("not_neg", NEG_ADJ, "negated_neg"),
    ):
        drawer = _Drawer(rng, [adjs, NEGATION_TEMPLATES])

        def make(drawer: _Drawer = drawer) -> tuple[str, ...]:
            adj, (base, neg) = drawer.keys()
            slots = {"adj": adj, "noun": rng.choice(NOUNS), "film": rng.choice(FILMS)}
            context = rng.choice(CONTEXTS)
            return (f"{context} {_fill(base, **slots)}", f"{context} {_fill(neg, **slots)}")

        for i, texts in enumerate(_collect(N_NEGATION, make, seen)):
            cases.append(
                BehaviourCase("negation", f"{kind}/{i:03d}", texts, EXPECTATIONS[rule], rule)
            )
    return cases


def _diminisher(rng: random.Random) -> list[BehaviourCase]:
    drawer = _Drawer(rng, [POS_ADJ, DIMINISHERS])

    def make() -> tuple[str, ...]:
        adj, dim = drawer.keys()
        base, dimmed = rng.choice(DIMINISHER_TEMPLATES)
        slots = {"adj": adj, "dim": dim, "noun": rng.choice(NOUNS), "film": rng.choice(FILMS)}
        context = rng.choice(CONTEXTS)
        return (f"{context} {_fill(base, **slots)}", f"{context} {_fill(dimmed, **slots)}")

    rule: Rule = "less_positive"
    return [
        BehaviourCase("diminisher", f"{_dim_kind(t)}/{i:03d}", t, EXPECTATIONS[rule], rule)
        for i, t in enumerate(_collect(N_DIMINISHER, make, set()))
    ]


def _dim_kind(texts: tuple[str, ...]) -> str:
    """The diminisher a diminisher case uses (its kind), read back from its second text."""
    words = texts[1].lower().replace(".", " ").split()
    base = set(texts[0].lower().replace(".", " ").split())
    extra = [w for w in words if w not in base]
    return "_".join(extra) or "unknown"


def case_adjectives(texts: Sequence[str]) -> tuple[str, ...]:
    """The sentiment adjectives (`POS_ADJ`, `NEG_ADJ`) a case's texts hold, in order of first use:
    one for a negation or diminisher case, which drawn word it judges."""
    adjectives = set(POS_ADJ) | set(NEG_ADJ)
    words = tokenize(" ".join(texts))  # the models' standardisation, not a second one
    return tuple(dict.fromkeys(w for w in words if w in adjectives))


def _contrast(rng: random.Random) -> list[BehaviourCase]:
    cases: list[BehaviourCase] = []
    rule: Rule = "order_flip"
    for kind, templates in CONTRAST_TEMPLATES.items():
        drawer = _Drawer(rng, [POS_ADJ, NEG_ADJ, templates])

        def make(drawer: _Drawer = drawer) -> tuple[str, ...]:
            pos, neg, template = drawer.keys()
            noun, noun2 = rng.sample(NOUNS, 2)
            film = rng.choice(FILMS)
            context = rng.choice(CONTEXTS)

            def text(a1: str, a2: str) -> str:
                slots = {"a1": a1, "a2": a2, "A1": a1.capitalize(), "A2": a2.capitalize()}
                slots |= {"noun": noun, "noun2": noun2, "film": film}
                slots |= {"art1": _article(a1), "art2": _article(a2)}
                return f"{context} {template.format(**slots)}"

            # Same words, opposite order: only the clause order says which judgement wins.
            return (text(pos, neg), text(neg, pos))

        cases += [
            BehaviourCase("contrast", f"{kind}/{i:03d}", t, EXPECTATIONS[rule], rule)
            for i, t in enumerate(_collect(N_CONTRAST, make, set()))
        ]
    return cases


def _invariance(rng: random.Random) -> list[BehaviourCase]:
    cases: list[BehaviourCase] = []
    for kind, names, templates in (
        ("actor", ACTORS, INVARIANCE_ACTOR_TEMPLATES),
        ("title", TITLES, INVARIANCE_TITLE_TEMPLATES),
    ):
        drawer = _Drawer(rng, [POS_ADJ + NEG_ADJ, templates])

        def make(drawer: _Drawer = drawer, names: Sequence[str] = names) -> tuple[str, ...]:
            adj, template = drawer.keys()
            slots = {
                "adj": adj,
                "noun": rng.choice(NOUNS),
                "film": rng.choice(FILMS),
                "context": rng.choice(CONTEXTS),
            }
            name_a, name_b = rng.sample(list(names), 2)
            return (_fill(template, name=name_a, **slots), _fill(template, name=name_b, **slots))

        rule: Rule = "invariant"
        for i, texts in enumerate(_collect(N_INVARIANCE, make, set())):
            cases.append(
                BehaviourCase("invariance", f"{kind}/{i:03d}", texts, EXPECTATIONS[rule], rule)
            )
    return cases


def swap_typo(text: str, rng: random.Random, protect: frozenset[str] = frozenset()) -> str:
    """`text` with two adjacent, different letters of one word (>= 4 letters) swapped.

    Words whose lowercase form is in `protect` are left alone; the text is returned unchanged
    when no word qualifies.
    """
    words = text.split(" ")
    candidates = []
    for wi, word in enumerate(words):
        core = word.strip(".,!?")
        if len(core) >= 4 and core.isalpha() and core.lower() not in protect:
            # Swapping equal letters ("ll" in "dull") would not be a typo at all.
            spots = [ci for ci in range(len(core) - 1) if core[ci] != core[ci + 1]]
            candidates += [(wi, ci) for ci in spots]
    if not candidates:
        return text
    wi, ci = rng.choice(candidates)
    w = words[wi]
    words[wi] = w[:ci] + w[ci + 1] + w[ci] + w[ci + 2 :]
    return " ".join(words)


def _robustness(rng: random.Random) -> list[BehaviourCase]:
    cases: list[BehaviourCase] = []
    perturbations: tuple[tuple[str, int, Callable[[str], str]], ...] = (
        ("typo_context", N_TYPO, lambda t: swap_typo(t, rng, SENTIMENT_WORDS)),
        ("typo_any", N_TYPO, lambda t: swap_typo(t, rng)),
        ("upper", N_CASING, str.upper),
        ("titlecase", N_CASING, str.title),
    )
    seen: set[tuple[str, ...]] = set()
    for kind, n, perturb in perturbations:
        # Both polarities, and the second adjective shares the first's polarity: a clear label.
        drawer = _Drawer(rng, [(POS_ADJ, NEG_ADJ), ROBUSTNESS_TEMPLATES])

        def make(drawer: _Drawer = drawer, perturb: Callable[[str], str] = perturb):
            adjs, template = drawer.keys()
            adj, adj2 = rng.sample(list(adjs), 2)
            noun, noun2 = rng.sample(NOUNS, 2)
            slots = {"adj": adj, "adj2": adj2, "noun": noun, "noun2": noun2}
            slots |= {"film": rng.choice(FILMS), "context": rng.choice(CONTEXTS)}
            text = _fill(template, **slots)
            return (text, perturb(text))

        rule: Rule = "invariant"
        for i, texts in enumerate(_collect(n, make, seen)):
            cases.append(
                BehaviourCase("robustness", f"{kind}/{i:03d}", texts, EXPECTATIONS[rule], rule)
            )
    return cases


def build_cases(seed: int = 0) -> list[BehaviourCase]:
    """Every case of every check, in CHECKS order; the same seed gives the same cases."""
    builders = {
        "negation": _negation,
        "diminisher": _diminisher,
        "contrast": _contrast,
        "invariance": _invariance,
        "robustness": _robustness,
    }
    cases: list[BehaviourCase] = []
    for offset, check in enumerate(CHECKS):
        # One RNG per check: adding cases to one check does not reshuffle the others.
        cases += builders[check](random.Random(seed * 1000 + offset))
    return cases


def _probabilities(case: BehaviourCase, probs: Sequence[float]) -> list[float]:
    p = [float(x) for x in probs]
    if len(p) != len(case.texts) or len(p) < 2:
        raise ValueError(f"{case.name}: {len(p)} probabilities for {len(case.texts)} texts")
    return p


def case_direction(case: BehaviourCase, probs: Sequence[float]) -> bool | None:
    """Whether the model moved the right way between the case's texts: its rule's comparison
    without the 0.5 bar (a contrast pair ordered right but both read negative still counts). The
    pass rate says whether a model gets a case right; this says whether it reads the cue at all,
    or the wrong way round. None for invariance, which has no direction."""
    p = _probabilities(case, probs)
    if case.rule in ("negated_pos", "less_positive"):
        return p[1] < p[0]
    if case.rule in ("negated_neg", "order_flip"):
        return p[1] > p[0]
    if case.rule == "invariant":
        return None
    raise ValueError(f"unknown rule {case.rule!r}")


def case_passes(case: BehaviourCase, probs: Sequence[float]) -> bool:
    """Whether `probs` (P(pos) of `case.texts`, in order) meet the case's pass criterion."""
    p = _probabilities(case, probs)
    if case.rule == "negated_pos":
        return p[1] < THRESHOLD and p[1] < p[0]
    if case.rule == "negated_neg":
        return p[1] > p[0]
    if case.rule == "less_positive":
        return p[1] < p[0]
    if case.rule == "order_flip":
        return p[0] < THRESHOLD <= p[1]
    if case.rule == "invariant":
        same_label = (p[0] >= THRESHOLD) == (p[1] >= THRESHOLD)
        return same_label and abs(p[1] - p[0]) < MAX_DELTA
    raise ValueError(f"unknown rule {case.rule!r}")
