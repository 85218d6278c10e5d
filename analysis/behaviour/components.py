"""Which part of a two-part model passes each behavioural check: the network alone, the n-gram
branch alone, or the whole model (their sum).

A model with the naive-Bayes n-gram branch adds the branch's logit to the network's
(`models.networks`). Scored apart, the parts say where a check's failures come from: the branch
reads "not good" as an n-gram of its own and can pass negation cases that the network, far more
confident on short texts, then outvotes. Each part's P(pos) is sigmoid(its margin / T), T the
model's temperature, so the whole model's rates are those `run_behaviour_suite` gives the served
model, and a part's are what the model would score if the other part said nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import pandas as pd

from analysis.behaviour.cases import CHECKS
from analysis.behaviour.suite import (
    METRIC_PREFIX,
    METRIC_SUFFIX,
    BehaviourReport,
    metric_name,
    run_behaviour_suite,
)
from analysis.common.render import markdown_table
from models.calibration import apply_temperature_to_logits, check_temperature

Part = Literal["network", "branch", "model"]
PARTS: tuple[Part, ...] = get_args(Part)
# Each part's weights on the (network, branch) margins.
_WEIGHTS: dict[Part, tuple[float, float]] = {
    "network": (1.0, 0.0),
    "branch": (0.0, 1.0),
    "model": (1.0, 1.0),
}


def part_metric_name(check: str, part: Part) -> str:
    """The MLflow metric of one part's pass rate: behaviour_<check>_pass_rate_<part>. (The whole
    model's is the suite's own `behaviour_<check>_pass_rate`, `metric_name`.)"""
    return f"{metric_name(check)}_{part}"


def part_of_metric(key: str) -> tuple[str, Part] | None:
    """(check, part) of a `part_metric_name` key, or None for another metric."""
    for part in PARTS:
        suffix = f"{METRIC_SUFFIX}_{part}"
        if key.startswith(METRIC_PREFIX) and key.endswith(suffix):
            return key.removeprefix(METRIC_PREFIX).removesuffix(suffix), part
    return None


@dataclass(frozen=True)
class ComponentReport:
    """The behavioural suite scored once per part (`PARTS`)."""

    reports: Mapping[Part, BehaviourReport]

    def pass_rates(self) -> pd.DataFrame:
        """One row per check, then per (check, kind) (`kind` "" on a check's own row); one
        column of pass rates per part."""
        rows = [
            {"check": c, "kind": "", **{p: self.reports[p].pass_rates[c] for p in PARTS}}
            for c in CHECKS
        ]
        kinds = {p: self.reports[p].kind_pass_rates for p in PARTS}
        rows += [
            {"check": c, "kind": k, **{p: kinds[p][c, k] for p in PARTS}} for c, k in kinds["model"]
        ]
        order = {check: i for i, check in enumerate(CHECKS)}
        frame = pd.DataFrame(rows)
        return frame.sort_values("check", key=lambda c: c.map(order), kind="stable").reset_index(
            drop=True
        )

    def metrics(self) -> dict[str, float]:
        """`behaviour_<check>_pass_rate_network` and `..._branch` for every check."""
        return {
            part_metric_name(check, part): self.reports[part].pass_rates[check]
            for part in PARTS
            if part != "model"
            for check in CHECKS
        }

    def markdown(self) -> str:
        rates = self.pass_rates()
        table = pd.DataFrame(
            {
                "Check": [
                    c if not k else f"{c}: {k}"
                    for c, k in zip(rates.check, rates.kind, strict=True)
                ],
                **{p.capitalize(): [f"{r:.1%}" for r in rates[p]] for p in PARTS},
            }
        )
        lines = [
            "## Behavioural tests by part of the model",
            "",
            "The network's logit and the n-gram branch's, each scored alone (P(pos) = sigmoid of"
            " its logit over the model's temperature), and the model, their sum. A check the"
            " branch passes and the model fails is one the network outvotes.",
            "",
            markdown_table(table, right=tuple(p.capitalize() for p in PARTS)),
        ]
        fillers = {p: self.reports[p].filler for p in PARTS}
        if all(f is not None for f in fillers.values()):
            spans = [f"{p} {f['prob'].min():.2f}-{f['prob'].max():.2f}" for p, f in fillers.items()]
            lines += ["", "P(pos) of the sentiment-free filler alone: " + ", ".join(spans) + "."]
        return "\n".join(lines) + "\n"


def run_component_suite(
    logit_parts: Callable[[list[str]], np.ndarray], temperature: float = 1.0, seed: int = 0
) -> ComponentReport:
    """The suite's pass rates for each part. `logit_parts(texts)` gives (N, 2): the network's and
    the branch's logit margins (positive minus negative) of each text; each text is scored once."""
    check_temperature(temperature)
    margins: dict[str, np.ndarray] = {}

    def scored(texts: list[str]) -> np.ndarray:
        new = [t for t in dict.fromkeys(texts) if t not in margins]
        if new:
            parts = np.asarray(logit_parts(new), dtype=np.float64)
            if parts.shape != (len(new), 2):
                raise ValueError(f"logit_parts returned shape {parts.shape} for {len(new)} texts")
            margins.update(zip(new, parts, strict=True))
        return np.stack([margins[t] for t in texts])

    def predictor(part: Part) -> Callable[[list[str]], np.ndarray]:
        weights = np.asarray(_WEIGHTS[part])
        return lambda texts: apply_temperature_to_logits(scored(texts) @ weights, temperature)

    return ComponentReport(
        {part: run_behaviour_suite(predictor(part), seed=seed) for part in PARTS}
    )
