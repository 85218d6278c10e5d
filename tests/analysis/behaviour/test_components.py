"""The behavioural suite per part of a two-part model (network, n-gram branch, their sum), with
stand-in parts whose behaviour is known: a name-biased bag of words and the rule-based oracle."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.behaviour.cases import CHECKS, build_cases
from analysis.behaviour.components import (
    PARTS,
    part_metric_name,
    part_of_metric,
    run_component_suite,
)
from analysis.behaviour.suite import check_of_metric, run_behaviour_suite
from analysis.behaviour.templates import CONTEXTS
from tests.analysis.behaviour.test_behaviour import _logit, name_biased, oracle


def parts(texts: list[str]) -> np.ndarray:
    """Network: the name-biased bag of words; branch: the oracle (each as a logit margin)."""
    return np.stack([_logit(name_biased(texts)), _logit(oracle(texts))], axis=1)


@pytest.fixture(scope="module")
def report():
    return run_component_suite(parts, temperature=2.0)


def test_each_part_scores_as_that_part_alone_and_the_model_as_their_sum(report) -> None:
    """A part's rates are the suite's for a model made of that part only; the model's are those of
    sigmoid((network + branch) / T), what the served model returns."""
    expected = {
        "network": run_behaviour_suite(lambda t: 1 / (1 + np.exp(-_logit(name_biased(t)) / 2))),
        "branch": run_behaviour_suite(lambda t: 1 / (1 + np.exp(-_logit(oracle(t)) / 2))),
        "model": run_behaviour_suite(lambda t: 1 / (1 + np.exp(-parts(t).sum(axis=1) / 2))),
    }
    for part in PARTS:
        assert report.reports[part].pass_rates == pytest.approx(expected[part].pass_rates)
    # The stand-ins differ where they should: only the oracle reads contrast, only the bag of
    # words reacts to "Seagal".
    rates = report.pass_rates().set_index(["check", "kind"])
    assert rates.loc[("contrast", ""), "branch"] == 1.0
    assert rates.loc[("contrast", ""), "network"] < 0.5
    assert rates.loc[("invariance", ""), "network"] < rates.loc[("invariance", ""), "branch"]


def test_the_table_has_a_row_per_check_then_its_kinds(report) -> None:
    rates = report.pass_rates()
    assert list(rates.columns) == ["check", "kind", *PARTS]
    assert list(dict.fromkeys(rates["check"])) == list(CHECKS)
    for check in CHECKS:
        rows = rates[rates["check"] == check]
        assert rows["kind"].iloc[0] == ""  # the check's own row first
    assert {"verdict_last", "verdict_first"} <= set(rates.loc[rates.check == "contrast", "kind"])
    assert rates[list(PARTS)].apply(lambda c: c.between(0, 1)).all().all()
    md = report.markdown()
    assert "| negation: not_pos |" in md and "| contrast |" in md
    assert md.count("\n|") == len(rates) + 2  # header, rule, one line per row
    assert "filler alone: network " in md


def test_metrics_are_per_part_and_not_read_as_the_models_own(report) -> None:
    metrics = report.metrics()
    assert set(metrics) == {
        part_metric_name(check, part) for check in CHECKS for part in ("network", "branch")
    }
    assert metrics["behaviour_contrast_pass_rate_branch"] == 1.0
    # Run comparisons read `behaviour_<check>_pass_rate` as the model's rate; these are not that,
    # and read back as (check, part).
    assert all(check_of_metric(key) is None for key in metrics)
    assert part_of_metric("behaviour_negation_pass_rate_network") == ("negation", "network")
    assert part_of_metric("behaviour_negation_pass_rate") is None
    assert part_of_metric("test_acc") is None


def test_each_text_is_scored_once_for_all_three_parts() -> None:
    seen: list[str] = []

    def counting(texts: list[str]) -> np.ndarray:
        seen.extend(texts)
        return parts(texts)

    run_component_suite(counting)
    cases = {t for c in build_cases() for t in c.texts}
    assert len(seen) == len(set(seen)) == len(cases | set(CONTEXTS))


def test_bad_parts_and_temperatures_are_rejected() -> None:
    with pytest.raises(ValueError, match="shape"):
        run_component_suite(lambda texts: np.zeros(len(texts)))
    with pytest.raises(ValueError, match="non-finite"):
        run_component_suite(lambda texts: np.full((len(texts), 2), np.nan))
    with pytest.raises(ValueError, match="temperature"):
        run_component_suite(parts, temperature=0.0)
