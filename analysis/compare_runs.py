"""Compare two logged model runs on the same test reviews: the report of `analysis.compare`.

Reads each run's per-sample table (`analysis/samples.parquet`), metrics and model back from
MLflow, so any two runs can be compared, today's or a past champion's:

    python -m analysis.compare RUN_A RUN_B --out comparison/
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient

from analysis.attributions import POSITIVE, explain, explain_reviews
from analysis.compare import compare, phrase_scores, write_comparison
from analysis.heatmap import render_heatmap_html, side_by_side
from data.text import tokenize

SAMPLES_ARTIFACT = "analysis/samples.parquet"
IMPORTANCE_ARTIFACT = "analysis/token_importance.csv"
METRIC_KEYS = ("test_acc", "test_loss", "test_f1", "test_roc_auc", "train_seconds", "n_parameters")


def _logged_artifact(run_id: str, path: str, read: Callable[[str], pd.DataFrame]) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as tmp:
        return read(
            mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, dst_path=tmp)
        )


def logged_samples(run_id: str) -> pd.DataFrame:
    """The per-sample analysis table a run logged."""
    return _logged_artifact(run_id, SAMPLES_ARTIFACT, pd.read_parquet)


def logged_token_importance(run_id: str) -> pd.DataFrame | None:
    """The token importance table a run logged, or None for a run analysed before it existed."""
    names = {a.path for a in MlflowClient().list_artifacts(run_id, "analysis")}
    if IMPORTANCE_ARTIFACT not in names:
        return None
    # keep_default_na=False: the words "null" and "nan" are tokens, not missing values.
    return _logged_artifact(
        run_id, IMPORTANCE_ARTIFACT, lambda path: pd.read_csv(path, keep_default_na=False)
    )


def logged_model(run_id: str):
    """The raw-text model a run logged (unwrapped: `.net`, `.vocab`, `.encode`)."""
    return mlflow.pyfunc.load_model(f"runs:/{run_id}/model").unwrap_python_model()


def run_names(runs: Sequence[str]) -> list[str]:
    """Each run's `arch` tag; the run id is appended when both runs have the same one."""
    client = MlflowClient()
    archs = [client.get_run(r).data.tags.get("arch", "model") for r in runs]
    if archs[0] != archs[1]:
        return archs
    return [f"{arch}-{run[:6]}" for arch, run in zip(archs, runs, strict=True)]


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
) -> tuple[dict[str, Path], dict[str, float]]:
    """Write the comparison of two runs into `out_dir`; returns (paths, numbers for MLflow).

    `reviews` holds the test reviews both runs were analysed on (review_id, text, label). Each
    model encodes the texts with its own vocabulary, so runs of different presets compare too.
    """
    client = MlflowClient()
    runs = (run_a, run_b)
    a, b = run_names(runs)
    tables = {a: logged_samples(run_a), b: logged_samples(run_b)}
    models = {a: logged_model(run_a), b: logged_model(run_b)}
    metrics = {
        name: {k: v for k, v in client.get_run(run).data.metrics.items() if k in METRIC_KEYS}
        for name, run in zip((a, b), runs, strict=True)
    }
    texts = dict(zip(reviews["review_id"], reviews["text"], strict=True))
    missing = sorted(set(tables[a]["review_id"]) - set(texts))
    if missing:
        raise ValueError(f"no text for {len(missing)} analysed reviews, e.g. {missing[:3]}")

    # Phrase attributions on the reviews where the two models disagree most: context at work.
    joined = tables[a].merge(tables[b], on="review_id", suffixes=(f"_{a}", f"_{b}"))
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

    rates = {
        name: {
            k.removeprefix("behaviour_").removesuffix("_pass_rate"): v
            for k, v in client.get_run(run).data.metrics.items()
            if k.startswith("behaviour_")
        }
        for name, run in zip((a, b), runs, strict=True)
    }
    checks = sorted(set(rates[a]) & set(rates[b]))
    behaviour = (
        pd.DataFrame(
            {"check": checks, a: [rates[a][c] for c in checks], b: [rates[b][c] for c in checks]}
        )
        if checks
        else None
    )
    return write_comparison(
        Path(out_dir), comparison, heatmaps, behaviour, links, title=f"{a} vs {b}", alerts=alerts
    )


def main(argv: list[str] | None = None) -> Path:
    from data.prepare import load_reviews  # the CLI alone needs the raw data

    parser = argparse.ArgumentParser(
        prog="python -m analysis.compare",
        description="Compare two logged model runs on the same test reviews (report.html).",
    )
    parser.add_argument("run_a", help="MLflow run id (e.g. the dense run)")
    parser.add_argument("run_b", help="MLflow run id (e.g. the CNN run)")
    parser.add_argument("--out", type=Path, default=Path("comparison"), help="output folder")
    parser.add_argument("--data-path", default=None, help="IMDB archive (default: as in training)")
    args = parser.parse_args(argv)
    from models.tracking import configure_tracking

    configure_tracking()
    tags = MlflowClient().get_run(args.run_a).data
    dataset = tags.tags.get("dataset", "imdb")
    seed = int(tags.params.get("seed", 42))
    reviews, _ = load_reviews(dataset, args.data_path, seed)
    paths, _ = compare_runs(args.run_a, args.run_b, reviews, args.out)
    print(f"comparison written to {paths['report_html'].resolve()}")
    return paths["report_html"]
