"""Groups of similar reviews in the latent space, and what sets each group apart.

Why k-means (on standardised latent vectors) rather than HDBSCAN:
- predictable cost: a handful of k-means fits on 25,000 x D vectors take seconds, where HDBSCAN's
  cost depends on the data's density structure and grows badly with the dimension;
- every review gets a cluster: HDBSCAN labels a large share of reviews as noise, and those are
  often exactly the odd, high-loss ones this analysis is about;
- stable across runs: with a fixed seed the same model gives the same clusters, so the clusters
  in two MLflow runs can be compared.
k is chosen by the silhouette score over a small range, computed on a seeded subsample
(silhouette is quadratic in the number of points).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
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

from analysis.common.render import DPI, size_legend_handle, strip_tags

logger = logging.getLogger(__name__)

K_RANGE = range(2, 9)
SILHOUETTE_SAMPLE = 5000
TOP_WORDS = 8
# Tokens that are markup or padding, not words a reader would learn from.
_NOT_WORDS = frozenset({"<pad>", "br"})
# Words must appear this often overall to be called distinctive (one-off typos otherwise win).
_MIN_TERM_COUNT = 3


def choose_clusters(
    latent: np.ndarray,
    k_range: Sequence[int] = K_RANGE,
    random_state: int = 0,
    sample_size: int = SILHOUETTE_SAMPLE,
) -> tuple[np.ndarray, dict[int, float]]:
    """Cluster labels [N] from k-means with the k of best silhouette, and the silhouette per k.

    With fewer distinct samples than the smallest k (or < 3 samples), every review goes into a
    single cluster 0 and a warning says why; the rest of the analysis still runs.
    """
    latent = np.asarray(latent, dtype=np.float64)
    n = len(latent)
    n_distinct = len(np.unique(latent, axis=0)) if n else 0
    candidates = [k for k in k_range if 2 <= k < n_distinct]
    if not candidates:
        logger.warning(
            "Only %d samples (%d distinct latent vectors): too few for k in %s; "
            "putting every review in a single cluster",
            n,
            n_distinct,
            list(k_range),
        )
        return np.zeros(n, dtype=int), {}
    scaled = StandardScaler().fit_transform(latent)
    rng = np.random.default_rng(random_state)
    subset = rng.choice(n, size=min(n, sample_size), replace=False)
    scores: dict[int, float] = {}
    labels_by_k: dict[int, np.ndarray] = {}
    for k in candidates:
        labels = KMeans(n_clusters=k, n_init=4, random_state=random_state).fit_predict(scaled)
        labels_by_k[k] = labels
        if len(np.unique(labels[subset])) < 2:
            scores[k] = -1.0  # silhouette is undefined on one cluster: never pick this k
            continue
        scores[k] = float(silhouette_score(scaled[subset], labels[subset]))
    best = max(scores, key=lambda k: (scores[k], -k))  # ties: the simpler partition
    logger.info("k-means: silhouette %s -> k=%d", {k: round(s, 3) for k, s in scores.items()}, best)
    return _relabel_by_size(labels_by_k[best]), scores


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


def cluster_table(
    table: pd.DataFrame,
    docs: Sequence[str] | Sequence[Sequence[str]],
    labels: np.ndarray,
    top_n: int = TOP_WORDS,
) -> pd.DataFrame:
    """Per cluster: size, share, accuracy, mean loss, error count, mean OOV count, mean length,
    mean polarity and the top c-TF-IDF words (space-separated). `docs` aligned with `table`."""
    labels = np.asarray(labels)
    frame = table.assign(cluster=labels, correct=(table["pred"] == table["label"]))
    top = class_tfidf_top_words(docs, labels, top_n)
    rows = []
    for cluster, part in frame.groupby("cluster", sort=True):
        rows.append(
            {
                "cluster": int(cluster),
                "size": len(part),
                "share": len(part) / len(frame),
                "accuracy": float(part["correct"].mean()),
                "mean_loss": float(part["loss"].mean()),
                "errors": int((~part["correct"]).sum()),
                "positive_share": float(part["label"].mean()),
                "mean_oov_count": float(part["oov_count"].mean()),
                "mean_length": float(part["length"].mean()),
                "mean_polarity": float(part["polarity"].mean()),
                "top_words": " ".join(top.get(int(cluster), [])),
            }
        )
    return pd.DataFrame(rows)


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
    fig = Figure(figsize=(width, 7.0 + 3.0 * n_small_rows), dpi=DPI)
    grid = fig.add_gridspec(
        1 + n_small_rows, n_small_cols, height_ratios=[6.5] + [3.0] * n_small_rows
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
        f"{len(ids)} clusters (k-means on the model's latent vectors), drawn on the UMAP map\n"
        "colour = cluster, dot area = out-of-vocabulary token count",
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
        if "accuracy" in info.columns and c in info.index:
            title += (
                f"\naccuracy {info.at[c, 'accuracy']:.2f}, mean loss {info.at[c, 'mean_loss']:.2f}"
            )
        if "top_words" in info.columns and c in info.index:
            title += "\n" + ", ".join(str(info.at[c, "top_words"]).split()[:4])
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    path_png = Path(path_png)
    fig.savefig(path_png)
    return path_png
