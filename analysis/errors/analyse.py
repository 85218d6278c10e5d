"""`analyse_errors()`: the whole error analysis of one model on one evaluation set, in a folder.

Files written into `out_dir` (the lead's Prefect task logs the folder to MLflow as is):
    samples.parquet      one row per review (`common.schema.SAMPLE_COLUMNS`) + cluster, x, y
    population.png       2-D latent map, colour = true label, size = loss
    population.html      the same map, interactive and self-contained (hover reads the review)
    heatmaps/top_loss.html            word attributions of the `top_k_heatmaps` highest-loss reviews
    heatmaps/review_<id>.html         one page per review id requested in `explain_ids`
    metadata_loss.png    loss against length, OOV count, subjectivity, confidence, polarity, rating
                         (quantile bins, mean loss with its bootstrap interval as error bars)
    metadata_loss.csv    per-bin figures (mean loss, loss_low/loss_high) and each feature's Spearman
                         rho with loss
    clusters.csv         per cluster (k-means, predicted-class direction removed): size, accuracy,
                         loss and its lift with an interval, share predicted positive, what sets it
                         apart, OOV, length, polarity, distinctive words
    clusters.png         the clusters on the 2-D map, plus one small map per cluster
    token_importance.csv per word: mean IG toward "positive" over a fixed, id-hashed subset of
                         reviews (the same reviews for every model, so runs can be compared)
    movies.csv           per movie with 10+ reviews: error rate, mean loss, share positive, worst first
    calibration.png      reliability diagram of P(positive), raw and after the model's temperature
    calibration.csv      its bins, then ECE and Brier score per segment, raw and calibrated
    label_issues.csv     likely label errors (`label_issues`): test, and train when its
                         out-of-sample probabilities are given; given and suggested label, score
    insights.md          the weak segments in plain sentences, the words the model leans on and the
                         movies whose reviews it gets wrong most
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from torch import nn

from analysis.common.schema import MAP_COLUMNS, SAMPLE_COLUMNS
from analysis.common.thresholds import DEFAULT_THRESHOLDS, Thresholds
from analysis.errors.attributions import (
    DEFAULT_IMPORTANCE_REVIEWS,
    DEFAULT_N_STEPS,
    explain_reviews,
    importance_rows,
    token_importance,
)
from analysis.errors.calibration import (
    CalibrationReport,
    calibration_markdown,
    calibration_report,
    plot_reliability,
)
from analysis.errors.clustering import K_RANGE, choose_clusters, cluster_table, plot_clusters
from analysis.errors.dashboard import (
    metadata_loss_table,
    plot_metadata_loss,
    write_metadata_loss_csv,
)
from analysis.errors.heatmap import ReviewHeatmap, write_heatmap_page
from analysis.errors.insights import (
    importance_markdown,
    insights_markdown,
    segment_stats,
    weak_segments,
)
from analysis.errors.label_issues import LabelIssues, label_issues
from analysis.errors.movies import movie_errors, movies_markdown
from analysis.errors.population import (
    DEFAULT_MAX_POINTS,
    DEFAULT_UMAP_SEED,
    plot_population,
    population_html,
    reduce_2d,
)
from analysis.errors.predict import build_sample_table, predict
from analysis.errors.text_metadata import text_metadata
from models.calibration import check_temperature
from models.scores import SplitScores

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("review_id", "text", "label")
TOP_LOSS_PAGE = "top_loss.html"
# Result key -> file name in out_dir (heat-map pages are added per run).
OUTPUT_FILES = {
    "samples": "samples.parquet",
    "population_png": "population.png",
    "population_html": "population.html",
    "metadata_loss_png": "metadata_loss.png",
    "metadata_loss_csv": "metadata_loss.csv",
    "clusters_csv": "clusters.csv",
    "clusters_png": "clusters.png",
    "insights": "insights.md",
    "token_importance": "token_importance.csv",
    "movies": "movies.csv",
    "calibration_png": "calibration.png",
    "calibration_csv": "calibration.csv",
    "label_issues": "label_issues.csv",
}


@dataclass(frozen=True)
class ErrorAnalysis:
    """What `analyse_errors` found and where it wrote it."""

    table: pd.DataFrame  # the per-review table, with cluster, x, y
    clusters: pd.DataFrame  # one row per k-means cluster (`clustering.cluster_table`)
    segments: pd.DataFrame  # the weak segments (`insights.weak_segments`), by impact
    silhouette: dict[int, float]  # k -> silhouette score
    importance: pd.DataFrame  # per word: mean attribution toward positive
    timings: dict[str, float]  # seconds per step
    paths: dict[str, Path] = field(default_factory=dict)  # result key -> file written
    calibration: CalibrationReport | None = None  # None only for an empty evaluation set
    label_issues: LabelIssues | None = None  # None only for an empty evaluation set

    def summary(self, run_id: str) -> AnalysisSummary:
        return AnalysisSummary(
            run_id=run_id,
            n_samples=len(self.table),
            n_weak_segments=len(self.segments),
            n_clusters=len(self.clusters),
            timings=dict(self.timings),
        )


@dataclass(frozen=True)
class AnalysisSummary:
    """The few numbers of an `ErrorAnalysis` a flow passes on (the tables stay in MLflow)."""

    run_id: str
    n_samples: int
    n_weak_segments: int
    n_clusters: int
    timings: dict[str, float]


@contextmanager
def _timed(timings: dict[str, float], step: str) -> Iterator[None]:
    start = time.perf_counter()
    logger.info("analysis: %s ...", step)
    yield
    timings[step] = time.perf_counter() - start
    logger.info("analysis: %s done in %.1f s", step, timings[step])


def review_page_name(review_id: str) -> str:
    """File name of the heat-map page for one requested review (ids may hold any character)."""
    return f"review_{re.sub(r'[^A-Za-z0-9._-]', '_', str(review_id))}.html"


def _validate(
    samples: pd.DataFrame,
    ids: np.ndarray,
    metadata: pd.DataFrame | None,
    explain_ids: Sequence[str],
) -> None:
    """Every cheap check, before any heavy work starts."""
    missing_cols = [c for c in REQUIRED_COLUMNS if c not in samples.columns]
    if missing_cols:
        raise ValueError(f"samples lack required column(s): {', '.join(missing_cols)}")
    if len(ids) != len(samples):
        raise ValueError(f"ids has {len(ids)} rows but samples has {len(samples)}")
    if metadata is not None and len(metadata) != len(samples):
        raise ValueError(f"metadata has {len(metadata)} rows but samples has {len(samples)}")
    known = set(samples["review_id"].astype(str))
    unknown = [str(r) for r in explain_ids if str(r) not in known]
    if unknown:
        raise ValueError(f"unknown review id(s) in explain_ids: {', '.join(unknown)}")


def analyse_errors(
    net: nn.Module,
    samples: pd.DataFrame,
    ids: np.ndarray,
    vocab: Sequence[str],
    out_dir: Path,
    *,
    metadata: pd.DataFrame | None = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    explain_ids: Sequence[str] = (),
    top_k_heatmaps: int = 20,
    umap_random_state: int | None = DEFAULT_UMAP_SEED,
    max_points: int = DEFAULT_MAX_POINTS,
    n_steps: int = DEFAULT_N_STEPS,
    importance_reviews: int = DEFAULT_IMPORTANCE_REVIEWS,
    k_range: Sequence[int] = K_RANGE,
    tokenize: Callable[[str], list[str]] | None = None,
    model_name: str = "model",
    batch_size: int = 64,
    n_jobs: int = 2,
    progress: bool = True,
    temperature: float = 1.0,
    train_probs: pd.DataFrame | None = None,
    scores: SplitScores | None = None,
) -> ErrorAnalysis:
    """Run the error analysis and write the files listed in the module docstring into `out_dir`.

    `metadata` (subjectivity, polarity; aligned with `samples`) skips the slow TextBlob step when
    the caller has it cached. Pass the data layer's `tokenize` (data.text.tokenize) so heat maps
    show the actual out-of-vocabulary words instead of "<oov>".

    `importance_reviews` reviews (picked by a hash of their id) are explained for the global
    token importance; 0 skips it.

    `thresholds` decide which segments insights.md calls weak.
    `temperature` is the model's (the logged model's `.temperature`, 1 for one logged before
    calibration): calibration.png/csv and insights.md compare its probabilities with the raw ones;
    everything else (the table's `prob_positive`, losses, attributions) is the raw network's.
    `train_probs` (review_id, label, prob_positive, text: out-of-sample, from
    `label_issues.cross_validated_probs`) adds the training split to the likely label errors.
    `scores`: this network's scores of exactly these reviews (training's test pass), used instead
    of scoring them again; scores of other reviews are a ValueError.
    Raises ValueError (before any heavy work) for an unknown id in `explain_ids` or misaligned
    inputs. An empty `samples` writes an empty table and an insights.md that says so.
    """
    _validate(samples, ids, metadata, explain_ids)
    check_temperature(temperature)
    if scores is not None and not scores.matches(samples["review_id"].astype(str)):
        raise ValueError("the given scores are not of these reviews (or not in their order)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    samples = samples.reset_index(drop=True)
    texts = samples["text"]
    timings: dict[str, float] = {}
    paths = {key: out_dir / name for key, name in OUTPUT_FILES.items()}

    if samples.empty:
        logger.warning("analysis: no samples to analyse; writing an empty report")
        table = pd.DataFrame(columns=[*SAMPLE_COLUMNS, *MAP_COLUMNS])
        table.to_parquet(paths["samples"], index=False)
        paths["insights"].write_text(insights_markdown(pd.DataFrame(), table), encoding="utf-8")
        empty = pd.DataFrame()
        return ErrorAnalysis(
            table, empty, empty, {}, empty, timings, {k: paths[k] for k in ("samples", "insights")}
        )

    with _timed(timings, "metadata"):
        if metadata is None:
            metadata = text_metadata(texts, n_jobs=n_jobs, progress=progress)
        metadata = metadata.reset_index(drop=True)
    with _timed(timings, "predict"):
        if scores is None:
            prob_positive, latent, logit = predict(net, ids, batch_size, progress=progress)
        else:
            prob_positive, latent, logit = scores.prob_positive, scores.latent, scores.logit
        table = build_sample_table(samples, prob_positive, metadata, ids=ids)
    with _timed(timings, "umap"):
        xy = reduce_2d(latent, random_state=umap_random_state)
        table["x"], table["y"] = xy[:, 0], xy[:, 1]
    with _timed(timings, "clustering"):
        clustering = choose_clusters(latent, k_range, predicted=table["pred"].to_numpy())
        table["cluster"], silhouettes = clustering.labels, clustering.silhouette
        clusters = cluster_table(table, texts.tolist(), clustering.labels, thresholds=thresholds)
        clusters.to_csv(paths["clusters_csv"], index=False)
        plot_clusters(table, paths["clusters_png"], clusters)
    with _timed(timings, "population"):
        plot_population(table, paths["population_png"], max_points)
        population_html(
            table,
            texts,
            paths["population_html"],
            max_points,
        )
    with _timed(timings, "attributions"):
        paths.update(
            _write_heatmaps(
                net,
                table,
                ids,
                vocab,
                texts,
                out_dir / "heatmaps",
                explain_ids,
                top_k_heatmaps,
                n_steps,
                tokenize,
                model_name,
                progress,
            )
        )
    with _timed(timings, "token_importance"):
        rows = importance_rows(table["review_id"].tolist(), importance_reviews)
        importance = token_importance(net, ids[rows], vocab, n_steps=n_steps, progress=progress)
        importance.to_csv(paths["token_importance"], index=False)
    with _timed(timings, "metadata_loss"):
        bins_table = metadata_loss_table(table, thresholds=thresholds)
        write_metadata_loss_csv(bins_table, paths["metadata_loss_csv"])
        plot_metadata_loss(
            table,
            paths["metadata_loss_png"],
            bins_table=bins_table,
        )
    with _timed(timings, "calibration"):
        # The table keeps the raw net's probabilities and losses; only this step applies T.
        calibration = calibration_report(
            logit.astype(np.float64), table["label"], temperature, table, thresholds=thresholds
        )
        calibration.table().to_csv(paths["calibration_csv"], index=False)
        plot_reliability(calibration, paths["calibration_png"])
    with _timed(timings, "label_issues"):
        issues = label_issues(table.assign(text=texts.to_numpy()), train_probs)
        issues.table.to_csv(paths["label_issues"], index=False)
    with _timed(timings, "insights"):
        candidates = segment_stats(table, clusters=clusters, thresholds=thresholds)
        segments = weak_segments(candidates, thresholds)
        text = insights_markdown(
            segments, table, candidates=candidates, clusters=clusters, thresholds=thresholds
        )
        text += importance_markdown(importance, reviews=len(rows))
        movies = movie_errors(table, samples.get("movie"))
        movies.to_csv(paths["movies"], index=False)
        text += movies_markdown(movies)
        text += calibration_markdown(calibration)
        text += issues.markdown()
        paths["insights"].write_text(text, encoding="utf-8")
    table.to_parquet(paths["samples"], index=False)
    logger.info(
        "analysis: k-means silhouettes %s; timings %s",
        silhouettes,
        {k: round(v, 1) for k, v in timings.items()},
    )
    return ErrorAnalysis(
        table, clusters, segments, silhouettes, importance, timings, paths, calibration, issues
    )


def _write_heatmaps(
    net: nn.Module,
    table: pd.DataFrame,
    ids: np.ndarray,
    vocab: Sequence[str],
    texts: pd.Series,
    folder: Path,
    explain_ids: Sequence[str],
    top_k: int,
    n_steps: int,
    tokenize: Callable[[str], list[str]] | None,
    model_name: str,
    progress: bool,
) -> dict[str, Path]:
    """One IG pass over the top-loss rows and the requested rows together, then the pages."""
    folder.mkdir(parents=True, exist_ok=True)
    top_rows = np.argsort(-table["loss"].to_numpy(), kind="stable")[:top_k].tolist()
    position = {rid: i for i, rid in enumerate(table["review_id"])}
    requested = [position[str(r)] for r in explain_ids]
    rows = list(dict.fromkeys(top_rows + requested))  # ordered, no repeats
    views = explain_reviews(
        net,
        ids[rows],
        table["prob_positive"].to_numpy()[rows],
        table["loss"].to_numpy()[rows],
        table["length"].to_numpy()[rows],
        vocab,
        model_name=model_name,
        texts=texts.iloc[rows].tolist(),
        tokenize=tokenize,
        n_steps=n_steps,
        progress=progress,
    )
    view_of = dict(zip(rows, views, strict=True))

    def review(row: int, caption: str = "") -> ReviewHeatmap:
        return ReviewHeatmap(
            table["review_id"].iat[row], int(table["label"].iat[row]), [view_of[row]], caption
        )

    paths = {
        "heatmaps_top_loss": write_heatmap_page(
            [review(r, f"rank {i} by loss") for i, r in enumerate(top_rows, start=1)],
            folder / TOP_LOSS_PAGE,
            f"Word attributions of the {len(top_rows)} highest-loss reviews ({model_name})",
        )
    }
    for rid, row in zip(explain_ids, requested, strict=True):
        paths[f"heatmap_{rid}"] = write_heatmap_page(
            [review(row)],
            folder / review_page_name(str(rid)),
            f"Word attributions of review {rid} ({model_name})",
        )
    return paths
