"""Groups of similar reviews in the latent space, beyond the predicted class, and what sets each
group apart.

The latent vectors are the pooled features the classifier head reads, so the predicted class is
by construction their largest, cleanest split: k-means on them picks k = 2 by silhouette and
returns the two predicted classes (on IMDB, for both models), which says nothing about kinds of
review. So before clustering:

1. the predicted-class direction is projected out: the difference of the two predicted classes'
   mean vectors (then the vectors are standardised). After the projection the two classes have
   the same mean, so the split k-means and silhouette respond to (distances) is no longer there,
   while every direction orthogonal to it (length, out-of-vocabulary words, topic) is kept as it
   was. Chosen over the alternatives:
   - the logistic direction fitted to the predicted labels is the most *discriminative* direction,
     not the one that makes the classes far apart in Euclidean terms; after removing it the class
     means can still differ along the rest and k-means can still split on them;
   - clustering within each predicted class makes every cluster one class by construction and
     cuts a group that spans both (the out-of-vocabulary-heavy reviews) in two.
   One linear direction is what the head reads (logits are linear in these vectors); class
   structure the projection leaves (a non-linear remainder) shows in each cluster's share
   predicted positive, which `cluster_table` reports for that reason;
2. k-means with k chosen by silhouette over 3..8 (`K_RANGE`): above 2 because silhouette favours
   the coarsest split of data without strong cluster structure, and a two-way split is too coarse
   to describe; the clusters are for description, the weak-segment rule (a bootstrap interval)
   decides which matter. k-means rather than HDBSCAN: predictable cost (k is chosen on a seeded
   5,000-review subsample, k-means and silhouette both; then one full fit started from that
   subsample's centres: seconds on 25,000 x D), every review gets a cluster (HDBSCAN calls a large
   share noise, often the odd, high-loss reviews this analysis is about) and clusters are stable
   across runs with the seed, so two MLflow runs' clusters can be matched.

Each cluster is then described (`cluster_table`): size, accuracy, mean loss and its lift over the
overall mean with a bootstrap interval, the share predicted positive (so a reader sees a cluster is
not a class), the review feature whose mean differs most from the rest's (standardised mean
difference) and its distinctive words (class-based TF-IDF).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from scipy import sparse
from sklearn.cluster import KMeans
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from analysis.common.bootstrap import bootstrap_mean_ci, segment_rng
from analysis.common.render import DPI, size_legend_handle, strip_tags
from analysis.common.segments import SEGMENT_FEATURES
from analysis.common.segments import feature as feature_info
from analysis.common.thresholds import DEFAULT_THRESHOLDS, Thresholds

logger = logging.getLogger(__name__)

K_RANGE = range(3, 9)
SILHOUETTE_SAMPLE = 5000
TOP_WORDS = 8
# Tokens that are markup or padding, not words a reader would learn from.
_NOT_WORDS = frozenset({"<pad>", "br"})
# Words must appear this often overall to be called distinctive (one-off typos otherwise win).
_MIN_TERM_COUNT = 3


@dataclass(frozen=True)
class Clustering:
    """Cluster labels and how they were chosen."""

    labels: np.ndarray  # [N] cluster per review, 0 the largest
    silhouette: dict[int, float]  # k -> silhouette on the subsample
    class_variance: float  # share of the standardised variance along the removed class direction


def remove_class_direction(
    latent: np.ndarray, predicted: np.ndarray | None
) -> tuple[np.ndarray, float]:
    """Vectors with the component along the predicted classes' mean difference removed, then
    standardised; and the share of the variance that component held (0 when nothing was removed:
    no labels, or one class only).

    Removed before standardising: the sentiment variance would otherwise set each unit's scale and
    shrink the units that also carry the other groups. Standardising afterwards keeps the two
    classes' means equal (it scales each unit) and puts units of any scale on one footing.
    """
    latent = np.asarray(latent, dtype=np.float64)
    share = 0.0
    if predicted is not None and len(latent):
        positive = np.asarray(predicted) == 1
        if positive.any() and not positive.all():
            direction = latent[positive].mean(axis=0) - latent[~positive].mean(axis=0)
            norm = float(np.linalg.norm(direction))
            if norm > 0:
                along = (latent - latent.mean(axis=0)) @ (direction / norm)
                total = float(np.sum(latent.var(axis=0)))
                share = float(along.var()) / total if total > 0 else 0.0
                latent = latent - np.outer(along, direction / norm)
    return StandardScaler().fit_transform(latent) if len(latent) else latent, share


def choose_clusters(
    latent: np.ndarray,
    k_range: Sequence[int] = K_RANGE,
    random_state: int = 0,
    sample_size: int = SILHOUETTE_SAMPLE,
    *,
    predicted: np.ndarray | None = None,
) -> Clustering:
    """k-means clusters of `latent` [N, D] with the `predicted` classes' direction removed (see
    the module docstring), k of best silhouette in `k_range`.

    With fewer distinct (projected) vectors than the smallest k, every review goes into a single
    cluster 0 and a warning says why; the rest of the analysis still runs.
    """
    latent = np.asarray(latent, dtype=np.float64)
    n = len(latent)
    space, class_variance = remove_class_direction(latent, predicted)
    n_distinct = len(np.unique(space.round(9), axis=0)) if n else 0
    candidates = [k for k in k_range if 2 <= k < n_distinct]
    if not candidates:
        logger.warning(
            "Only %d samples (%d distinct latent vectors): too few for k in %s; "
            "putting every review in a single cluster",
            n,
            n_distinct,
            list(k_range),
        )
        return Clustering(np.zeros(n, dtype=int), {}, class_variance)
    rng = np.random.default_rng(random_state)
    sample = space[np.sort(rng.choice(n, size=min(n, sample_size), replace=False))]
    scores: dict[int, float] = {}
    centres: dict[int, np.ndarray] = {}
    # One thread: k-means' OpenMP threads spin-wait when the cores are busy (another analysis, a
    # training run): on 2 busy cores 25,000 x 128 took 64 s with 2 threads and 10 s with one.
    with threadpool_limits(limits=1):
        for k in candidates:
            fit = KMeans(n_clusters=k, n_init=4, random_state=random_state).fit(sample)
            centres[k] = fit.cluster_centers_
            if len(np.unique(fit.labels_)) < 2:
                scores[k] = -1.0  # silhouette is undefined on one cluster: never pick this k
                continue
            scores[k] = float(silhouette_score(sample, fit.labels_))
        best = max(scores, key=lambda k: (scores[k], -k))  # ties: the simpler partition
        # One full fit started from the subsample's centres: a single, well-started pass.
        labels = KMeans(n_clusters=best, init=centres[best], n_init=1, max_iter=100).fit_predict(
            space
        )
    logger.info(
        "k-means (class direction removed, %.0f%% of the variance): silhouette %s -> k=%d",
        100 * class_variance,
        {k: round(s, 3) for k, s in scores.items()},
        best,
    )
    return Clustering(_relabel_by_size(labels), scores, class_variance)


def _relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Cluster 0 is the largest, so numbering is stable-ish and easy to talk about."""
    ids, counts = np.unique(labels, return_counts=True)
    order = ids[np.argsort(-counts, kind="stable")]
    mapping = np.empty(ids.max() + 1, dtype=int)
    mapping[order] = np.arange(len(order))
    return mapping[labels]


def _analyzer(doc: str | Sequence[str]) -> list[str]:
    """Words of a document: raw text is lowercased with tags removed; token lists are used as-is.
    English stop words and markup are dropped (sklearn's bundled list: no download)."""
    if isinstance(doc, str):
        words = re.findall(r"[a-z][a-z']+", strip_tags(doc.lower()))
    else:
        words = list(doc)
    return [w for w in words if w not in ENGLISH_STOP_WORDS and w not in _NOT_WORDS]


def class_tfidf_top_words(
    docs: Sequence[str] | Sequence[Sequence[str]], labels: np.ndarray, top_n: int = TOP_WORDS
) -> dict[int, list[str]]:
    """Most distinctive words per cluster by class-based TF-IDF (c-TF-IDF, as in BERTopic).

    All documents of a cluster form one class document; the weight of term t in cluster c is
    tf(t, c) * log(1 + A / f(t)), tf L1-normalised per cluster, A = mean number of words per
    cluster, f(t) = count of t over all clusters.
    """
    labels = np.asarray(labels)
    clusters = np.unique(labels)
    if len(docs) == 0:
        return {int(c): [] for c in clusters}
    vectorizer = CountVectorizer(analyzer=_analyzer)
    try:
        counts = vectorizer.fit_transform(docs)
    except ValueError:  # empty vocabulary: every document is empty or stop words
        return {int(c): [] for c in clusters}
    terms = vectorizer.get_feature_names_out()
    # Sum document rows per cluster with a (clusters x docs) indicator matrix (sparse-friendly).
    indicator = sparse.csr_matrix((labels[None, :] == clusters[:, None]).astype(float))
    per_cluster = (indicator @ counts).toarray()  # (clusters, terms)
    total = per_cluster.sum(axis=0)
    words_per_cluster = per_cluster.sum(axis=1, keepdims=True)
    tf = per_cluster / np.maximum(words_per_cluster, 1.0)
    idf = np.log1p(words_per_cluster.mean() / np.maximum(total, 1.0))
    weights = tf * idf
    weights[:, total < min(_MIN_TERM_COUNT, total.max())] = 0.0
    top: dict[int, list[str]] = {}
    for row, cluster in enumerate(clusters):
        best = np.argsort(-weights[row], kind="stable")[:top_n]
        top[int(cluster)] = [str(terms[i]) for i in best if weights[row, i] > 0]
    return top


@dataclass(frozen=True)
class Apart:
    """The review feature whose mean differs most between a cluster and the other reviews."""

    feature: str
    smd: float  # standardised mean difference: (cluster mean - rest mean) / pooled sd
    inside: float  # mean in the cluster
    rest: float  # mean over the other reviews

    def text(self) -> str:
        """'out-of-vocabulary share 14.2% vs 2.1% elsewhere'"""
        f = feature_info(self.feature)
        inside, rest = f.fmt(self.inside), f.fmt(self.rest)
        if inside == rest:  # a feature's format is for edges (whole tokens); means need digits
            inside, rest = f"{self.inside:.3g}", f"{self.rest:.3g}"
        return f"{f.noun} {inside} vs {rest} elsewhere"


def what_sets_apart(
    table: pd.DataFrame, members: np.ndarray, features: Sequence[str] = SEGMENT_FEATURES
) -> Apart | None:
    """The feature of largest |standardised mean difference| between `members` and the rest
    (features missing from `table`, or constant on both sides, are skipped); None when none is
    left or either side is empty. The difference of means in pooled-sd units compares features
    of any scale (tokens, shares, stars)."""
    members = np.asarray(members, dtype=bool)
    if members.all() or not members.any():
        return None
    best: Apart | None = None
    for name in features:
        if name not in table.columns:
            continue
        values = table[name].to_numpy(dtype=float)
        inside, rest = values[members], values[~members]
        inside, rest = inside[np.isfinite(inside)], rest[np.isfinite(rest)]
        if len(inside) == 0 or len(rest) == 0:
            continue
        pooled = math.sqrt((inside.var() + rest.var()) / 2)
        if pooled == 0:
            continue
        smd = (float(inside.mean()) - float(rest.mean())) / pooled
        if best is None or abs(smd) > abs(best.smd):
            best = Apart(name, smd, float(inside.mean()), float(rest.mean()))
    return best


def cluster_table(
    table: pd.DataFrame,
    docs: Sequence[str] | Sequence[Sequence[str]],
    labels: np.ndarray,
    top_n: int = TOP_WORDS,
    *,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    seed: int = 0,
) -> pd.DataFrame:
    """Per cluster: size, share, accuracy, mean loss, its lift (cluster mean loss / overall mean)
    with a bootstrap interval (`thresholds.n_boot` resamples, seeded per cluster), errors, the
    share positive (true) and predicted positive, mean OOV count, length and polarity, what sets
    it apart (`what_sets_apart`: `apart_feature`, `apart_smd`, `apart_in`, `apart_rest`; empty
    for a single cluster) and the top c-TF-IDF words (space-separated). `docs` aligned with
    `table`."""
    labels = np.asarray(labels)
    frame = table.assign(cluster=labels, correct=(table["pred"] == table["label"]))
    overall = float(frame["loss"].mean())
    top = class_tfidf_top_words(docs, labels, top_n)
    loss = frame["loss"].to_numpy(dtype=float)
    rows = []
    for cluster, part in frame.groupby("cluster", sort=True):
        members = labels == cluster
        low, high = bootstrap_mean_ci(
            loss[members], thresholds.n_boot, segment_rng(seed, f"cluster={cluster}")
        )
        apart = what_sets_apart(frame, members)
        rows.append(
            {
                "cluster": int(cluster),
                "size": len(part),
                "share": len(part) / len(frame),
                "accuracy": float(part["correct"].mean()),
                "mean_loss": float(part["loss"].mean()),
                "loss_lift": float(part["loss"].mean()) / overall if overall > 0 else math.nan,
                "lift_low": low / overall if overall > 0 else math.nan,
                "lift_high": high / overall if overall > 0 else math.nan,
                "errors": int((~part["correct"]).sum()),
                "positive_share": float(part["label"].mean()),
                "predicted_positive_share": float(part["pred"].mean()),
                "mean_oov_count": float(part["oov_count"].mean()),
                "mean_length": float(part["length"].mean()),
                "mean_polarity": float(part["polarity"].mean()),
                "apart_feature": apart.feature if apart else "",
                "apart_smd": apart.smd if apart else math.nan,
                "apart_in": apart.inside if apart else math.nan,
                "apart_rest": apart.rest if apart else math.nan,
                "top_words": " ".join(top.get(int(cluster), [])),
            }
        )
    return pd.DataFrame(rows)


def cluster_apart_text(row: pd.Series | object) -> str:
    """'out-of-vocabulary share 14.2% vs 2.1% elsewhere' for a `cluster_table` row ('' if none)."""
    name = getattr(row, "apart_feature", "")
    if not isinstance(name, str) or not name:
        return ""
    apart = Apart(name, float(row.apart_smd), float(row.apart_in), float(row.apart_rest))
    return apart.text()


def plot_clusters(
    table: pd.DataFrame, path_png: Path, clusters: pd.DataFrame | None = None
) -> Path:
    """The 2-D map coloured by cluster (dot area = OOV count), then one small map per cluster
    with that cluster highlighted and the rest faded grey. Needs `x`, `y`, `cluster` columns."""
    ids = sorted(int(c) for c in table["cluster"].unique())
    palette = matplotlib.colormaps["tab10" if len(ids) <= 10 else "tab20"]
    colour = {c: palette(i % palette.N) for i, c in enumerate(ids)}
    oov = table["oov_count"].to_numpy(dtype=float)
    area = 4.0 + 60.0 * oov / max(float(oov.max()) if len(oov) else 0.0, 1.0)
    n_small_cols = min(len(ids), 4)
    n_small_rows = math.ceil(len(ids) / n_small_cols)
    width = max(3.4 * n_small_cols + 0.5, 10.0)
    fig = Figure(figsize=(width, 7.0 + 3.5 * n_small_rows), dpi=DPI)
    grid = fig.add_gridspec(
        1 + n_small_rows, n_small_cols, height_ratios=[6.5] + [3.5] * n_small_rows
    )
    main = fig.add_subplot(grid[0, :])
    for c in ids:
        members = (table["cluster"] == c).to_numpy()
        main.scatter(
            table["x"][members],
            table["y"][members],
            s=area[members],
            color=colour[c],
            alpha=0.55,
            edgecolors="none",
        )
    handles = [
        Line2D(
            [],
            [],
            ls="",
            marker="o",
            color=colour[c],
            markersize=7,
            label=f"cluster {c} ({int((table['cluster'] == c).sum()):,})",
        )
        for c in ids
    ]
    max_oov = int(oov.max()) if len(oov) else 0
    for value in sorted({0, max_oov // 2, max_oov}):
        size = 4.0 + 60.0 * value / max(max_oov, 1)
        handles.append(size_legend_handle(size, f"{value} OOV tokens"))
    main.legend(
        handles=handles,
        fontsize=8,
        loc="best",
        title="cluster (reviews) / dot area",
        title_fontsize=8,
        labelspacing=1.0,
    )
    main.set_title(
        f"{len(ids)} clusters (k-means on the model's latent vectors, predicted-class direction "
        "removed), drawn on the UMAP map\ncolour = cluster, dot area = out-of-vocabulary token count",
        fontsize=11,
    )
    main.set_xlabel("UMAP 1")
    main.set_ylabel("UMAP 2")
    if clusters is None:
        clusters = pd.DataFrame({"cluster": ids})
    info = clusters.set_index("cluster")
    for i, c in enumerate(ids):
        ax = fig.add_subplot(grid[1 + i // n_small_cols, i % n_small_cols])
        members = (table["cluster"] == c).to_numpy()
        ax.scatter(
            table["x"][~members], table["y"][~members], s=3, color="#d0d0d0", edgecolors="none"
        )
        ax.scatter(
            table["x"][members],
            table["y"][members],
            s=area[members] * 0.5,
            color=colour[c],
            alpha=0.7,
            edgecolors="none",
        )
        title = f"cluster {c}: {members.sum():,} reviews"
        if "predicted_positive_share" in info.columns and c in info.index:
            title += f", {info.at[c, 'predicted_positive_share']:.0%} predicted +"
        if "accuracy" in info.columns and c in info.index:
            title += (
                f"\naccuracy {info.at[c, 'accuracy']:.2f}, mean loss {info.at[c, 'mean_loss']:.2f}"
            )
            if "loss_lift" in info.columns:
                title += f" ({info.at[c, 'loss_lift']:.1f}x)"
        if c in info.index and (apart := cluster_apart_text(info.loc[c])):
            title += "\n" + apart
        if "top_words" in info.columns and c in info.index:
            title += "\n" + ", ".join(str(info.at[c, "top_words"]).split()[:4])
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    path_png = Path(path_png)
    fig.savefig(path_png)
    return path_png
