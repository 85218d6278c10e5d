"""Loss against review metadata: per-bin figures, Spearman correlations and one picture.

`metadata_loss.csv` holds one row per (feature, bin) with the bin's edges, count, mean loss and
accuracy; the feature's Spearman rho/p with loss are repeated on each of its rows (one file is
easier to load and filter in the MLflow UI than two). Undefined values (an empty bin, a constant
feature) are written as empty cells, never "nan".
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from analysis.common.render import DPI
from analysis.common.segments import DASHBOARD_FEATURES, assign_bins, edges
from analysis.common.segments import feature as feature_info

logger = logging.getLogger(__name__)

BIN_COLUMNS = (
    "feature",
    "bin",
    "bin_left",
    "bin_right",
    "count",
    "mean_loss",
    "accuracy",
    "spearman_rho",
    "spearman_p",
)


def spearman(values: np.ndarray, loss: np.ndarray) -> tuple[float, float]:
    """Spearman (rho, p) of a feature with loss; (nan, nan) when undefined (constant, < 3 rows)."""
    values = np.asarray(values, dtype=float)
    loss = np.asarray(loss, dtype=float)
    ok = np.isfinite(values) & np.isfinite(loss)
    values, loss = values[ok], loss[ok]
    if len(values) < 3 or np.ptp(values) == 0 or np.ptp(loss) == 0:
        return math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConstantInputWarning etc.: handled as nan below
        result = stats.spearmanr(values, loss)
    return float(result.statistic), float(result.pvalue)


def metadata_loss_table(
    table: pd.DataFrame, features: Sequence[str] = DASHBOARD_FEATURES, bins: int = 10
) -> pd.DataFrame:
    """Per feature per bin: edges, count, mean loss, accuracy, plus the feature's Spearman rho/p.

    Equal-width bins (a histogram, so bar heights are honest) under the one bin rule of
    `common.segments`. Features missing from `table` are skipped with a warning.
    """
    correct = (table["pred"] == table["label"]).to_numpy()
    loss = table["loss"].to_numpy(dtype=float)
    rows = []
    for feature in features:
        if feature not in table.columns:
            logger.warning("metadata_loss_table: no column %r, skipped", feature)
            continue
        values = table[feature].to_numpy(dtype=float)
        bin_edges = edges(values, bins, "equal_width")
        rho, p = spearman(values, loss)
        which = assign_bins(values, bin_edges)
        for b in range(len(bin_edges) - 1):
            members = which == b
            count = int(members.sum())
            rows.append(
                {
                    "feature": feature,
                    "bin": b,
                    "bin_left": float(bin_edges[b]),
                    "bin_right": float(bin_edges[b + 1]),
                    "count": count,
                    "mean_loss": float(loss[members].mean()) if count else math.nan,
                    "accuracy": float(correct[members].mean()) if count else math.nan,
                    "spearman_rho": rho,
                    "spearman_p": p,
                }
            )
    return pd.DataFrame(rows, columns=list(BIN_COLUMNS))


def write_metadata_loss_csv(bins_table: pd.DataFrame, path: Path) -> Path:
    """CSV of `metadata_loss_table`; undefined values are empty cells."""
    path = Path(path)
    bins_table.to_csv(path, index=False, na_rep="", float_format="%.6g")
    return path


def plot_metadata_loss(
    table: pd.DataFrame,
    path_png: Path,
    features: Sequence[str] = DASHBOARD_FEATURES,
    bins: int = 10,
    bins_table: pd.DataFrame | None = None,
) -> Path:
    """One panel per feature: histogram (bars, left axis) and mean loss per bin (line, right axis)."""
    if bins_table is None:
        bins_table = metadata_loss_table(table, features, bins)
    present = [f for f in features if f in set(bins_table["feature"])]
    n_cols = 3 if len(present) > 4 else max(len(present), 1)
    n_rows = max(math.ceil(len(present) / n_cols), 1)
    fig = Figure(figsize=(5.2 * n_cols, 3.9 * n_rows), dpi=DPI)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    overall = float(table["loss"].mean()) if len(table) else math.nan
    for ax, feature in zip(axes.flat, present, strict=False):
        part = bins_table[bins_table["feature"] == feature]
        centres = ((part["bin_left"] + part["bin_right"]) / 2).to_numpy()
        widths = (part["bin_right"] - part["bin_left"]).to_numpy()
        ax.bar(centres, part["count"], width=widths * 0.92, color="#b8c7d9", label="reviews (left)")
        ax.set_xlabel(feature_info(feature).axis_label, fontsize=9)
        ax.set_ylabel("reviews", fontsize=9)
        right = ax.twinx()
        right.plot(centres, part["mean_loss"], "o-", color="#c0392b", label="mean loss (right)")
        if math.isfinite(overall):
            right.axhline(overall, color="#c0392b", ls=":", lw=1, label="overall mean loss")
        right.set_ylabel("mean loss (nats)", fontsize=9, color="#c0392b")
        right.set_ylim(bottom=0)
        rho, p = part["spearman_rho"].iloc[0], part["spearman_p"].iloc[0]
        rho_text = f"Spearman ρ = {rho:+.2f} (p = {p:.1g})" if math.isfinite(rho) else "ρ undefined"
        ax.set_title(f"{feature}: {rho_text}", fontsize=10)
        if feature == present[0]:
            legend_handles = (
                ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
            )
    for ax in axes.flat[len(present) :]:
        ax.axis("off")
    fig.suptitle(
        f"Where the loss is: {len(table):,} reviews, overall mean loss {overall:.3f}",
        fontsize=12,
    )
    if present:
        fig.legend(
            handles=legend_handles,
            loc="upper center",
            ncol=3,
            fontsize=9,
            bbox_to_anchor=(0.5, 0.955),
            frameon=False,
        )
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    path_png = Path(path_png)
    fig.savefig(path_png)
    return path_png
