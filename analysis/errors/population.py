"""2-D map of the latent space (UMAP) and the population pictures drawn on it."""

from __future__ import annotations

import functools
import html
import logging
import os
import sys
import textwrap
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from sklearn.decomposition import PCA

from analysis.common.render import DPI, opening, size_legend_handle
from analysis.common.schema import CLASS_NAMES
from config import get_settings

logger = logging.getLogger(__name__)

# Seeded by default: the map is an MLflow artifact that people compare across runs and re-runs,
# and a seeded UMAP draws the same picture for the same model. The usual price, umap-learn running
# single-threaded, is nil here: on 2 cores, 5,000 x 32 took 3.9-5.1 s seeded vs 4.9 s unseeded
# (numba's compilation dominates either way, and `import_umap` caches it on disk). Pass None to
# use all cores on a bigger machine when reproducibility does not matter.
DEFAULT_UMAP_SEED: int | None = 42
# Below this many points UMAP's neighbour graph is meaningless (and can fail): use PCA.
MIN_UMAP_POINTS = 10
DEFAULT_MAX_POINTS = 10_000
CLASS_COLOURS = {0: "#d95f02", 1: "#1b9e77"}  # colour-blind-safe orange (neg) / teal (pos)
SNIPPET_CHARS = 200
# Marker area grows with loss up to this value; beyond it every point has the same (largest) size.
LOSS_SIZE_CAP = 4.0


def reduce_2d(
    latent: np.ndarray, random_state: int | None = DEFAULT_UMAP_SEED, n_neighbors: int = 15
) -> np.ndarray:
    """Project latent vectors [N, D] to 2-D [N, 2] with UMAP (PCA when N < MIN_UMAP_POINTS).

    `random_state=None` lets UMAP use every core (faster, but a different map on each run).
    """
    latent = np.asarray(latent, dtype=np.float32)
    n = len(latent)
    if n < MIN_UMAP_POINTS:
        logger.warning(
            "Only %d samples: too few for UMAP (needs >= %d); using PCA for the 2-D map",
            n,
            MIN_UMAP_POINTS,
        )
        return _pca_2d(latent)
    umap = import_umap()
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=min(n_neighbors, n - 1),
        random_state=random_state,
        n_jobs=1 if random_state is not None else -1,  # a seed forces 1 job; say so up front
    )
    with warnings.catch_warnings():
        # Tiny or degenerate inputs make UMAP's spectral init warn and fall back to random init.
        warnings.filterwarnings("ignore", category=UserWarning, module="umap")
        return reducer.fit_transform(latent).astype(np.float32)


def _cache_by_default(decorator: Callable[..., object]) -> Callable[..., object]:
    @functools.wraps(decorator)
    def with_cache(*args: object, **kwargs: object) -> object:
        kwargs.setdefault("cache", True)
        return decorator(*args, **kwargs)

    return with_cache


def import_umap() -> ModuleType:
    """umap-learn, its numba functions compiled once per machine rather than once per process.

    umap-learn declares almost none of its numba functions `cache=True`, so every fresh process
    (each flow run, worker run, benchmark) spent 10-25 s compiling them on first use. Imported
    here, `numba.njit`/`numba.jit` default to `cache=True` while umap and pynndescent define their
    functions, and the compiled code lands in `<cache_dir>/numba` (or `NUMBA_CACHE_DIR`, if set);
    numba keys each entry by the source file's stamp, so an upgrade recompiles. Imported already
    (by a caller), it is returned as it is. Deferred: importing umap-learn costs ~1.5 s.
    """
    if "umap" in sys.modules:
        return sys.modules["umap"]
    import numba
    from numba.core import config as numba_config

    if not os.environ.get("NUMBA_CACHE_DIR"):
        folder = get_settings().cache_dir / "numba"
        folder.mkdir(parents=True, exist_ok=True)
        numba_config.CACHE_DIR = str(folder)  # read when each function's cache is created
    njit, jit = numba.njit, numba.jit
    numba.njit, numba.jit = _cache_by_default(njit), _cache_by_default(jit)
    try:
        import umap
    finally:
        numba.njit, numba.jit = njit, jit
    return umap


def _pca_2d(latent: np.ndarray) -> np.ndarray:
    out = np.zeros((len(latent), 2), dtype=np.float32)
    if len(latent) < 2 or latent.ndim != 2 or latent.shape[1] == 0:
        return out  # one point (or none): put it at the origin
    n_components = min(2, len(latent), latent.shape[1])
    out[:, :n_components] = PCA(n_components=n_components).fit_transform(latent)
    return out


def select_points(table: pd.DataFrame, max_points: int, seed: int = 0) -> tuple[np.ndarray, str]:
    """Row positions to draw and a caption saying what was drawn.

    Never caps silently: when the table is larger than `max_points`, half the budget goes to the
    highest-loss rows (the failures users come for) and half to a seeded uniform sample of the rest
    (the context they sit in); the caption says so.
    """
    n = len(table)
    if n <= max_points:
        return np.arange(n), f"all {n:,} reviews"
    loss = table["loss"].to_numpy()
    order = np.argsort(-loss, kind="stable")
    n_top = max_points // 2
    top, rest = order[:n_top], order[n_top:]
    rng = np.random.default_rng(seed)
    sampled = rng.choice(rest, size=max_points - n_top, replace=False)
    caption = (
        f"showing {max_points:,} of {n:,} reviews: the {n_top:,} highest-loss "
        f"+ {max_points - n_top:,} others sampled at random (seed {seed})"
    )
    return np.sort(np.concatenate([top, sampled])), caption


def _marker_area(loss: np.ndarray) -> np.ndarray:
    return 3.0 + 30.0 * np.minimum(loss, LOSS_SIZE_CAP)


def plot_population(
    table: pd.DataFrame, path_png: Path, max_points: int = DEFAULT_MAX_POINTS
) -> Path:
    """Scatter of the 2-D map (`x`, `y`): colour = true label, area = loss, black edge = error."""
    rows, caption = select_points(table, max_points)
    shown = table.iloc[rows].sort_values("loss", kind="stable")  # failures drawn on top
    fig = Figure(figsize=(9, 7.5), dpi=DPI)  # no pyplot: no global state, no display needed
    ax = fig.subplots()
    wrong = (shown["pred"] != shown["label"]).to_numpy()
    for label, colour in CLASS_COLOURS.items():
        of_class = (shown["label"] == label).to_numpy()
        for is_wrong in (False, True):
            part = shown[of_class & (wrong == is_wrong)]
            ax.scatter(
                part["x"],
                part["y"],
                s=_marker_area(part["loss"].to_numpy()),
                color=colour,
                alpha=0.55 if not is_wrong else 0.8,
                edgecolors="black" if is_wrong else "none",
                linewidths=0.8,
            )
    handles = [
        Line2D([], [], ls="", marker="o", color=c, markersize=8, label=f"true {CLASS_NAMES[k]}")
        for k, c in CLASS_COLOURS.items()
    ]
    handles.append(
        Line2D(
            [], [], ls="", marker="o", mfc="white", mec="black", markersize=8, label="misclassified"
        )
    )
    for loss in (0.1, 0.7, 2.0, LOSS_SIZE_CAP):
        area = float(_marker_area(np.array([loss]))[0])
        label = f"loss {loss:g}" + ("+" if loss == LOSS_SIZE_CAP else "")
        handles.append(size_legend_handle(area, label))
    ax.legend(handles=handles, loc="best", fontsize=8, framealpha=0.85, labelspacing=1.1)
    accuracy = float((table["pred"] == table["label"]).mean()) if len(table) else float("nan")
    ax.set_title(
        f"Reviews in the model's latent space (UMAP), accuracy {accuracy:.3f}\n"
        + "\n".join(textwrap.wrap(f"colour = true label, dot area = loss; {caption}", 95)),
        fontsize=10,
    )
    ax.set_xlabel("UMAP 1")
    ax.set_ylabel("UMAP 2")
    fig.tight_layout()
    path_png = Path(path_png)
    fig.savefig(path_png)
    return path_png


def snippet(text: object, chars: int = SNIPPET_CHARS) -> str:
    """The review's opening (`common.render.opening`), HTML-escaped for a hover label."""
    return html.escape(opening(text, chars)) or "(empty review)"


def population_html(
    table: pd.DataFrame,
    texts: pd.Series,
    path_html: Path,
    max_points: int = DEFAULT_MAX_POINTS,
) -> Path:
    """Interactive, self-contained (plotly.js inlined, works offline in the MLflow UI) 2-D map.

    `texts` is aligned with `table` by position. Hover shows id, label, prediction, P(positive),
    loss and the review's opening.
    """
    rows, caption = select_points(table, max_points)
    shown = table.iloc[rows]
    shown_texts = pd.Series(texts).iloc[rows]
    fig = go.Figure()
    for label, colour in CLASS_COLOURS.items():
        mask = (shown["label"] == label).to_numpy()
        part = shown[mask]
        wrong = (part["pred"] != part["label"]).to_numpy()
        custom = np.column_stack(
            [
                part["review_id"].astype(str),
                [CLASS_NAMES[int(v)] for v in part["label"]],
                [CLASS_NAMES[int(v)] for v in part["pred"]],
                part["prob_positive"].round(3),
                part["loss"].round(3),
                ["<br>".join(textwrap.wrap(snippet(t), 70)) for t in shown_texts[mask]],
            ]
        )
        fig.add_trace(
            go.Scatter(
                x=part["x"],
                y=part["y"],
                mode="markers",
                name=f"true {CLASS_NAMES[label]}",
                customdata=custom,
                marker={
                    "color": colour,
                    "size": np.sqrt(_marker_area(part["loss"].to_numpy())),
                    "opacity": 0.6,
                    "line": {"color": np.where(wrong, "black", colour).tolist(), "width": 1},
                },
                hovertemplate=(
                    "<b>%{customdata[0]}</b><br>true %{customdata[1]}, predicted %{customdata[2]}"
                    "<br>P(positive) %{customdata[3]}, loss %{customdata[4]}"
                    "<br><i>%{customdata[5]}</i><extra></extra>"
                ),
            )
        )
    fig.update_layout(
        title=f"Reviews in the model's latent space (UMAP): colour = true label, size = loss, "
        f"black outline = misclassified<br><sup>{caption}; hover a dot to read the review</sup>",
        xaxis_title="UMAP 1",
        yaxis_title="UMAP 2",
        hoverlabel={"align": "left"},
        width=1000,
        height=800,
        template="plotly_white",
    )
    path_html = Path(path_html)
    fig.write_html(path_html, include_plotlyjs=True, full_html=True)
    return path_html
