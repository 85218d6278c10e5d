"""Compare two logged model runs on the same test reviews: the dense-vs-CNN page for any two runs.

Reads each run's per-review table, metrics and model back from MLflow (`analysis.common.artifacts`),
so any two runs can be compared, today's or a past champion's:

    python -m analysis.compare RUN_A RUN_B --out comparison/
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from analysis.behaviour.components import part_of_metric
from analysis.behaviour.suite import check_of_metric
from analysis.common.artifacts import (
    logged_model,
    logged_samples,
    run_metrics,
    run_params,
    run_tags,
)
from analysis.errors.attributions import POSITIVE, explain, explain_reviews
from analysis.errors.heatmap import render_heatmap_html, side_by_side
from analysis.paired.comparison_report import WrittenComparison, write_comparison
from analysis.paired.dense_vs_cnn import METRIC_ROWS, compare, phrase_scores
from analysis.paired.pairing import pair_tables
from data.text import tokenize


def run_names(runs: Sequence[str]) -> list[str]:
    """Each run's `arch` tag; the run id is appended when both runs have the same one."""
    archs = [run_tags(r).get("arch", "model") for r in runs]
    if archs[0] != archs[1]:
        return archs
    return [f"{arch}-{run[:6]}" for arch, run in zip(archs, runs, strict=True)]


def _behaviour_rates(run: str) -> dict[str, float]:
    """A run's behavioural pass rates by check, and its network's alone where it logged them
    ("negation, network alone"): with the n-gram branch both models share, the networks' own
    rates are where the CNN's context and the dense model's single-word view differ."""
    rates: dict[str, float] = {}
    for key, value in run_metrics(run).items():
        if (check := check_of_metric(key)) is not None:
            rates[check] = value
        elif (found := part_of_metric(key)) is not None and found[1] == "network":
            rates[f"{found[0]}, network alone"] = value  # the branch is the same in both
    return rates


def _behaviour(runs: dict[str, str]) -> pd.DataFrame | None:
    """Pass rates of the behavioural checks both runs logged: check, <name a>, <name b>."""
    rates = {name: _behaviour_rates(run) for name, run in runs.items()}
    a, b = runs
    checks = sorted(set(rates[a]) & set(rates[b]))
    if not checks:
        return None
    return pd.DataFrame(
        {"check": checks, a: [rates[a][c] for c in checks], b: [rates[b][c] for c in checks]}
    )


def compare_runs(
    run_a: str,
    run_b: str,
    reviews: pd.DataFrame,
    out_dir: Path,
    *,
    alerts: Sequence[str] | None = None,
    links: dict[str, str] | None = None,
    heatmap_reviews: int = 10,
    phrase_reviews: int = 200,
) -> WrittenComparison:
    """Write the comparison of two runs into `out_dir`: the files and the numbers for MLflow.

    `reviews` holds the test reviews both runs were analysed on (review_id, text, label). Each
    model encodes the texts with its own vocabulary, so runs of different presets compare too.
    """
    a, b = run_names((run_a, run_b))
    runs = {a: run_a, b: run_b}
    tables = {name: logged_samples(run) for name, run in runs.items()}
    models = {name: logged_model(f"runs:/{run}/model") for name, run in runs.items()}
    metrics = {name: run_metrics(run, METRIC_ROWS) for name, run in runs.items()}
    texts = dict(zip(reviews["review_id"].astype(str), reviews["text"], strict=True))
    missing = sorted(set(tables[a]["review_id"]) - set(texts))
    if missing:
        raise ValueError(f"no text for {len(missing)} analysed reviews, e.g. {missing[:3]}")

    # Phrase attributions on the reviews where the two models disagree most: context at work.
    joined = pair_tables(tables[a], tables[b], a, b, ("prob_positive",))
    gap = (joined[f"prob_positive_{a}"] - joined[f"prob_positive_{b}"]).abs()
    chosen = [texts[r] for r in joined.loc[gap.nlargest(phrase_reviews).index, "review_id"]]
    phrases = {}
    for name, model in models.items():
        ids = model.encode(chosen)
        attributions, _ = explain(model.net, ids, POSITIVE, progress=False)
        phrases[name] = phrase_scores(ids, attributions, list(model.vocab.tokens))
    comparison = compare(
        tables[a],
        tables[b],
        metrics[a],
        metrics[b],
        a,
        b,
        phrases_a=phrases[a],
        phrases_b=phrases[b],
        texts=texts,
    )

    # Each model's highest-loss reviews, explained by both models side by side.
    worst = list(
        dict.fromkeys(
            r
            for name in (a, b)
            for r in tables[name].nlargest(heatmap_reviews // 2, "loss")["review_id"]
        )
    )
    worst_texts = [texts[r] for r in worst]
    # Token counts before truncation and labels: the analysis table has them already.
    worst_rows = tables[a].set_index("review_id").loc[worst]
    lengths = worst_rows["length"].to_numpy()
    views = []
    for name, model in models.items():
        table = tables[name].set_index("review_id").loc[worst]
        views.append(
            explain_reviews(
                model.net,
                model.encode(worst_texts),
                table["prob_positive"].to_numpy(),
                table["loss"].to_numpy(),
                lengths,
                list(model.vocab.tokens),
                model_name=name,
                texts=worst_texts,
                tokenize=tokenize,
                progress=False,
            )
        )
    labels = worst_rows["label"].tolist()
    heatmaps = render_heatmap_html(
        side_by_side(worst, labels, *views), title="Each model's highest-loss reviews, by both"
    )
    return write_comparison(
        Path(out_dir),
        comparison,
        heatmaps,
        _behaviour(runs),
        links,
        title=f"{a} vs {b}",
        alerts=alerts,
    )


def main(argv: list[str] | None = None) -> Path:
    """`python -m analysis.compare RUN_A RUN_B --out DIR`: the page's path."""
    from data.prepare import load_reviews  # the CLI alone needs the raw data
    from models.tracking import configure_tracking

    parser = argparse.ArgumentParser(
        prog="python -m analysis.compare",
        description="Compare two logged model runs on the same test reviews (report.html).",
    )
    parser.add_argument("run_a", help="MLflow run id (e.g. the dense run)")
    parser.add_argument("run_b", help="MLflow run id (e.g. the CNN run)")
    parser.add_argument("--out", type=Path, default=Path("comparison"), help="output folder")
    parser.add_argument("--data-path", default=None, help="IMDB archive (default: as in training)")
    args = parser.parse_args(argv)
    configure_tracking()
    dataset = run_tags(args.run_a).get("dataset", "imdb")
    seed = int(run_params(args.run_a).get("seed", 42))
    reviews, _ = load_reviews(dataset, args.data_path, seed)
    written = compare_runs(args.run_a, args.run_b, reviews, args.out)
    print(f"comparison written to {written.paths['report_html'].resolve()}")
    return written.paths["report_html"]
