"""Behavioural suite against hand-written stand-in scorers whose behaviour is known."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from analysis.behaviour.cases import (
    CHECKS,
    BehaviourCase,
    build_cases,
    case_direction,
    case_passes,
    swap_typo,
)
from analysis.behaviour.suite import behaviour_markdown, behaviour_metrics, run_behaviour_suite
from analysis.behaviour.templates import (
    CONTEXTS,
    CONTRAST_KINDS,
    DIMINISHERS,
    NEG_ADJ,
    POS_ADJ,
    SENTIMENT_WORDS,
    filler_problems,
    filler_words,
    word_polarities,
)

Scorer = Callable[[list[str]], np.ndarray]
POLARITY = {w: 1.0 for w in POS_ADJ} | {w: -1.0 for w in NEG_ADJ}
DIM_WORDS = {w for d in DIMINISHERS for w in d.split()} - {"only"}
GAIN = 2.0  # sigmoid(+-2) = 0.88 / 0.12: confident on a single sentiment word


def _tokens(text: str) -> list[str]:
    # The pyfunc's standardisation in miniature: lowercase, punctuation to spaces.
    return re.sub(r"[^\w\s]", " ", text.lower()).split()


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def bag_of_words(texts: list[str]) -> np.ndarray:
    """Sum of word polarities through a sigmoid: blind to order, negation and diminishers."""
    return np.array([_sigmoid(GAIN * sum(POLARITY.get(w, 0.0) for w in _tokens(t))) for t in texts])


CONCESSIONS = {"although", "though", "despite", "even"}


def _reader(texts: list[str], skip_concessions: bool) -> np.ndarray:
    """Rule-based reader: the last sentiment word decides; "not" earlier in its sentence flips and
    halves it, a diminisher right before it shrinks it towards neutral. With `skip_concessions`
    a clause (between commas) holding "although", "though", "despite" or "even" is passed over:
    it concedes, the clause beside it judges."""
    probs = []
    for text in texts:
        score = 0.0
        for sentence in text.split("."):
            words: list[str] = []
            conceded: list[bool] = []
            for clause in sentence.split(","):
                tokens = _tokens(clause)
                words += tokens
                conceded += [skip_concessions and bool(CONCESSIONS & set(tokens))] * len(tokens)
            for i, w in enumerate(words):
                if w not in POLARITY or conceded[i]:
                    continue
                score = GAIN * POLARITY[w]  # later sentiment words override earlier ones
                if "not" in words[:i]:
                    score = -0.5 * score
                elif i > 0 and words[i - 1] in DIM_WORDS:
                    score = 0.3 * score
        probs.append(_sigmoid(score))
    return np.array(probs)


def oracle(texts: list[str]) -> np.ndarray:
    """Reads negation, diminishers and which clause of a contrast judges."""
    return _reader(texts, skip_concessions=True)


def last_word(texts: list[str]) -> np.ndarray:
    """The oracle without the conjunctions: whatever judgement ends the review wins."""
    return _reader(texts, skip_concessions=False)


def name_biased(texts: list[str]) -> np.ndarray:
    """Bag of words that also learned "Seagal" means a bad film: a spurious name feature."""
    out = []
    for t in texts:
        words = _tokens(t)
        score = sum(POLARITY.get(w, 0.0) for w in words) - 2.0 * words.count("seagal")
        out.append(_sigmoid(GAIN * score))
    return np.array(out)


@pytest.fixture(scope="module")
def bow_run() -> tuple[pd.DataFrame, pd.DataFrame]:
    return run_behaviour_suite(bag_of_words)


@pytest.fixture(scope="module")
def oracle_run() -> tuple[pd.DataFrame, pd.DataFrame]:
    return run_behaviour_suite(oracle)


def _rates(summary: pd.DataFrame) -> dict[str, float]:
    return dict(zip(summary["check"], summary["pass_rate"], strict=True))


def _kind_rate(results: pd.DataFrame, check: str, kind: str) -> float:
    rows = results[(results["check"] == check) & results["case"].str.startswith(f"{kind}/")]
    assert len(rows) > 0
    return float(rows["passed"].mean())


def test_cases_are_many_distinct_and_reviewlike() -> None:
    cases = build_cases()
    counts = pd.Series([c.check for c in cases]).value_counts()
    assert set(counts.index) == set(CHECKS)
    assert counts.between(50, 200).all(), counts
    for check in CHECKS:
        names = [c.name for c in cases if c.check == check]
        assert len(names) == len(set(names)), f"duplicate case names in {check}"
        texts = [c.texts for c in cases if c.check == check]
        assert len(texts) == len(set(texts)), f"duplicate cases in {check}"
    for case in cases:
        assert len(case.texts) == 2 and case.texts[0] != case.texts[1]
        assert case.expectation
        # Filler context sentence plus the judgement: at least two sentences, like a review.
        assert case.texts[0].count(".") >= 2, case.texts[0]


def test_contrast_pairs_hold_the_same_words_in_another_order() -> None:
    for case in (c for c in build_cases() if c.check == "contrast"):
        first, second = (_tokens(t) for t in case.texts)
        assert sorted(first) == sorted(second) and first != second


def test_same_seed_same_cases_other_seed_other_cases() -> None:
    assert build_cases(0) == build_cases(0)
    assert build_cases(3) == build_cases(3)
    assert build_cases(0) != build_cases(1)
    first = run_behaviour_suite(bag_of_words, seed=5)
    second = run_behaviour_suite(bag_of_words, seed=5)
    s1, r1, s2, r2 = first.summary, first.results, second.summary, second.results
    pd.testing.assert_frame_equal(s1, s2)
    pd.testing.assert_frame_equal(r1, r2)


def test_bag_of_words_fails_order_checks_and_passes_invariance(bow_run) -> None:
    summary, results = bow_run.summary, bow_run.results
    rates = _rates(summary)
    # "not"/diminishers weigh nothing and contrast pairs hold the same words: equal P, no pass.
    assert rates["negation"] <= 0.1
    assert rates["diminisher"] <= 0.1
    assert rates["contrast"] <= 0.1
    assert rates["invariance"] == 1.0
    # Casing and typos outside sentiment words cannot move it; a typo in the sentiment word can.
    for kind in ("typo_context", "upper", "titlecase"):
        assert _kind_rate(results, "robustness", kind) == 1.0
    assert _kind_rate(results, "robustness", "typo_any") < 1.0


def test_oracle_passes_the_context_checks(oracle_run) -> None:
    summary, results = oracle_run.summary, oracle_run.results
    rates = _rates(summary)
    assert rates["negation"] >= 0.99
    assert rates["diminisher"] >= 0.99
    assert rates["contrast"] >= 0.99
    assert rates["invariance"] == 1.0
    assert _kind_rate(results, "robustness", "typo_context") == 1.0


def test_contrast_tells_reading_the_conjunction_from_weighing_the_end(oracle_run) -> None:
    end_weigher = run_behaviour_suite(last_word)
    kinds = end_weigher.kind_pass_rates
    assert kinds["contrast", "verdict_last"] == 1.0
    assert kinds["contrast", "verdict_first"] == 0.0
    assert end_weigher.pass_rates["contrast"] == pytest.approx(0.5)
    assert {k for c, k in kinds if c == "contrast"} == set(CONTRAST_KINDS)
    assert oracle_run.kind_pass_rates["contrast", "verdict_first"] == 1.0
    # It reads the verdict-first pairs backwards: every one moved the wrong way.
    directions = end_weigher.kind_direction_rates
    assert directions["contrast", "verdict_last"] == 1.0
    assert directions["contrast", "verdict_first"] == 0.0
    assert not {c for c, _ in directions} & {"invariance", "robustness"}  # no direction
    # The same figure as counting the kind's rows by hand.
    assert kinds["robustness", "typo_any"] == _kind_rate(
        end_weigher.results, "robustness", "typo_any"
    )


def test_direction_is_the_rule_without_its_bar() -> None:
    contrast, negation, invariance = (
        next(c for c in build_cases() if c.rule == rule)
        for rule in ("order_flip", "negated_pos", "invariant")
    )
    # Ordered right but both read positive: the right direction, not a pass.
    assert case_direction(contrast, [0.6, 0.9]) is True
    assert not case_passes(contrast, [0.6, 0.9])
    assert case_direction(contrast, [0.9, 0.6]) is False
    assert case_direction(contrast, [0.5, 0.5]) is False  # a tie reads no cue
    assert case_direction(negation, [0.9, 0.7]) is True
    assert not case_passes(negation, [0.9, 0.7])  # "not good" still read as positive
    assert case_direction(invariance, [0.7, 0.7]) is None


def test_name_sensitive_scorer_fails_exactly_the_seagal_invariance_cases() -> None:
    results = run_behaviour_suite(name_biased).results
    inv = results[results["check"] == "invariance"]
    has_seagal = inv["texts"].str.contains("Seagal")
    assert has_seagal.sum() >= 3  # the fixed seed draws the name in several cases
    assert not inv.loc[has_seagal, "passed"].any()
    assert inv.loc[~has_seagal, "passed"].all()


def test_metrics_have_the_five_keys_and_valid_rates(bow_run, oracle_run) -> None:
    for summary in (bow_run.summary, oracle_run.summary):
        metrics = behaviour_metrics(summary)
        assert set(metrics) == {f"behaviour_{c}_pass_rate" for c in CHECKS}
        assert all(0.0 <= v <= 1.0 for v in metrics.values())
        assert metrics["behaviour_negation_pass_rate"] == pytest.approx(
            summary.set_index("check").loc["negation", "passed"]
            / summary.set_index("check").loc["negation", "cases"]
        )
    with pytest.raises(ValueError, match="lacks"):
        behaviour_metrics(bow_run.summary.iloc[:4])


def test_summary_and_results_columns(bow_run) -> None:
    summary, results = bow_run.summary, bow_run.results
    assert list(summary.columns) == ["check", "cases", "passed", "pass_rate", "description"]
    assert list(summary["check"]) == list(CHECKS)
    assert list(results.columns) == [
        "check",
        "case",
        "texts",
        "probs",
        "passed",
        "direction",
        "expectation",
    ]
    assert summary["cases"].sum() == len(results)
    row = results.iloc[0]
    assert len(row["texts"].split(" || ")) == len(row["probs"].split(" || ")) == 2


def test_markdown_lists_failures_with_probabilities(bow_run, oracle_run) -> None:
    summary, results = bow_run.summary, bow_run.results
    md = behaviour_markdown(summary, results, max_failures_per_check=3)
    assert "| negation |" in md and "| invariance |" in md
    first_failure = results[(results["check"] == "negation") & ~results["passed"]].iloc[0]
    assert f"`{first_failure['case']}`" in md
    p0 = first_failure["probs"].split(" || ")[0]
    assert f"P(pos)={p0}" in md
    negation_section = md.split("### negation")[1].split("###")[0]
    assert negation_section.count("\n- `") == 3  # capped at max_failures_per_check
    # Invariance never fails for bag of words: no failure section for it.
    assert "### invariance" not in md
    oracle_md = oracle_run.markdown()
    assert "### contrast" not in oracle_md


def test_predict_proba_is_batched_and_each_text_scored_once() -> None:
    calls: list[list[str]] = []

    def counting(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        return bag_of_words(texts)

    n_unique = len({t for c in build_cases() for t in c.texts} | set(CONTEXTS))
    run_behaviour_suite(counting, batch_size=256)
    assert len(calls) == math.ceil(n_unique / 256)
    assert all(len(batch) <= 256 for batch in calls)
    scored = [t for batch in calls for t in batch]
    assert len(scored) == len(set(scored)) == n_unique


def test_the_filler_alone_is_scored_and_a_model_it_moves_is_called_out(bow_run) -> None:
    """A bag of sentiment words puts every sentiment-free opening at 0.5; a scorer that learned
    "plane" means praise does not, and the report says its 0.5 bars read through that."""
    assert list(bow_run.filler["text"]) == list(CONTEXTS)
    assert (bow_run.filler["prob"] == 0.5).all()
    assert "scores P(pos) 0.50 to 0.50" in bow_run.markdown()
    assert "more than invariance allows" not in bow_run.markdown()

    def plane_biased(texts: list[str]) -> np.ndarray:
        bonus = np.array([2.0 * ("plane" in _tokens(t)) for t in texts])
        return 1 / (1 + np.exp(-(_logit(bag_of_words(texts)) + bonus)))

    report = run_behaviour_suite(plane_biased)
    probs = report.filler.set_index("text")["prob"]
    on_a_plane = [f for f in CONTEXTS if "plane" in _tokens(f)]
    assert len(on_a_plane) == 1
    assert probs[on_a_plane[0]] == pytest.approx(1 / (1 + math.exp(-2.0)))
    assert (probs.drop(on_a_plane) == 0.5).all()
    assert "more than invariance allows" in report.markdown()


def test_negation_by_adjective_names_the_words_a_model_fails_on(oracle_run) -> None:
    """The oracle reads every denial; a reader that takes "not great" for praise (as IMDB's labels
    mostly do) fails exactly the cases on "great", and the report names it."""
    assert oracle_run.adjective_pass_rates() == dict.fromkeys((*POS_ADJ, *NEG_ADJ), 1.0)
    assert set(oracle_run.adjective_pass_rates("diminisher")) == set(POS_ADJ)

    def great_is_great(texts: list[str]) -> np.ndarray:
        probs = oracle(texts)
        denied_great = [{"not", "great"} <= set(_tokens(t)) for t in texts]
        return np.where(denied_great, 0.9, probs)

    report = run_behaviour_suite(great_is_great)
    rates = report.adjective_pass_rates()
    assert rates.pop("great") == 0.0
    assert set(rates.values()) == {1.0}
    lines = report.markdown().splitlines()
    line = next(ln for ln in lines if ln.startswith("- **negation, by adjective**"))
    assert " great 0/" in line and " good " in line


def test_the_filler_rule_flags_leaning_words_fillers_and_negation() -> None:
    """`word_polarities` on a corpus where "plane" is in every positive review only, and the rule
    that then flags the filler holding it (the real training reviews: tests/data)."""
    tokens = [["saw", "it", "plane"]] * 10 + [["saw", "it"]] * 10
    labels = [1] * 10 + [0] * 10
    polarity = word_polarities(tokens, labels, filler_words())
    assert polarity["plane"] == pytest.approx(math.log(11 / 11) - math.log(1 / 11))
    assert polarity["saw"] == 0.0 and polarity["monday"] == 0.0  # in both classes, or neither
    problems = filler_problems(polarity)
    assert len(problems) == 2 and all("plane" in line for line in problems)  # the word, the sum
    assert filler_problems(dict.fromkeys(filler_words(), 0.0)) == []


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def test_wrong_length_output_is_rejected() -> None:
    with pytest.raises(ValueError, match="returned"):
        run_behaviour_suite(lambda texts: np.zeros(len(texts) + 1))


@pytest.mark.parametrize(
    ("rule", "probs", "expected"),
    [
        ("negated_pos", (0.9, 0.2), True),
        ("negated_pos", (0.9, 0.6), False),  # lower but still positive
        ("negated_pos", (0.1, 0.3), False),  # negative but not below the base
        ("negated_neg", (0.1, 0.3), True),
        ("negated_neg", (0.3, 0.3), False),
        ("less_positive", (0.9, 0.8), True),
        ("less_positive", (0.8, 0.8), False),
        ("order_flip", (0.2, 0.7), True),
        ("order_flip", (0.4, 0.4), False),
        ("invariant", (0.7, 0.75), True),
        ("invariant", (0.7, 0.85), False),  # same label, moved too far
        ("invariant", (0.52, 0.48), False),  # close, but the label flips
    ],
)
def test_pass_criteria(rule: str, probs: tuple[float, float], expected: bool) -> None:
    case = BehaviourCase("x", "k/000", ("a.", "b."), "", rule)  # type: ignore[arg-type]
    assert case_passes(case, probs) is expected


def test_swap_typo_swaps_two_adjacent_letters_outside_protected_words() -> None:
    text = "I saw this film last week with my sister. The acting was wonderful."
    for seed in range(20):
        out = swap_typo(text, random.Random(seed), SENTIMENT_WORDS)
        changed = [(a, b) for a, b in zip(text.split(), out.split(), strict=True) if a != b]
        assert len(changed) == 1
        before, after = changed[0]
        assert sorted(before) == sorted(after) and before.lower() not in SENTIMENT_WORDS
        diffs = [i for i, (x, y) in enumerate(zip(before, after, strict=True)) if x != y]
        assert len(diffs) == 2 and diffs[1] == diffs[0] + 1
    assert swap_typo("a bad day", random.Random(0)) == "a bad day"  # no word of >= 4 letters
