"""Loss against review metadata: per-bin figures, Spearman correlations and one picture.

Bins are quantiles under the one bin rule of `common.segments` (a feature with few values, the
rating, per value): every bin holds a similar share of the reviews, so no tail bin of a handful of
reviews draws a mean-loss point that looks like a finding and is noise. Each bin's mean loss comes
with its bootstrap interval (`common.bootstrap`, `Thresholds.n_boot` resamples), drawn as an error
bar: a point is a finding only where its bar clears the overall mean.

`metadata_loss.csv` holds one row per (feature, bin) with the bin's edges (equal for a per-value
bin), count, median value, mean loss with its interval (`loss_low`, `loss_high`) and accuracy; the
feature's Spearman rho/p with loss are repeated on each of its rows (one file is easier to load
and filter in the MLflow UI than two). Undefined values (a constant feature's rho) are written as
empty cells, never "nan".
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

from analysis.common.bootstrap import CI_LEVEL, bootstrap_mean_ci, segment_rng
from analysis.common.render import DPI
from analysis.common.segments import DASHBOARD_FEATURES, EdgeRule, feature_segments
from analysis.common.segments import feature as feature_info
from analysis.common.thresholds import DEFAULT_THRESHOLDS, Thresholds

logger = logging.getLogger(__name__)

BIN_COLUMNS = (
    "feature",
    "bin",
    "bin_left",
    "bin_right",
    "count",
    "median",
    "mean_loss",
    "loss_low",
    "loss_high",
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
    table: pd.DataFrame,
    features: Sequence[str] = DASHBOARD_FEATURES,
    bins: int = 10,
    *,
    rule: EdgeRule = "quantile",
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    seed: int = 0,
) -> pd.DataFrame:
    """Per feature per non-empty bin: edges, count, median value, mean loss with its bootstrap
    interval, accuracy, plus the feature's Spearman rho/p.

    Bins are `common.segments.feature_segments` under `rule` (per value for a feature with few
    values); intervals use `thresholds.n_boot` resamples, seeded per bin. Features missing from
    `table` are skipped with a warning.
    """
    correct = (table["pred"] == table["label"]).to_numpy()
    loss = table["loss"].to_numpy(dtype=float)
    rows = []
    for feature in features:
        if feature not in table.columns:
            logger.warning("metadata_loss_table: no column %r, skipped", feature)
            continue
        values = table[feature].to_numpy(dtype=float)
        rho, p = spearman(values, loss)
        for b, seg in enumerate(feature_segments(values, feature, bins, rule)):
            members = seg.mask
            low, high = bootstrap_mean_ci(
                loss[members], thresholds.n_boot, segment_rng(seed, seg.name)
            )
            median = float(np.median(values[members]))
            rows.append(
                {
                    "feature": feature,
                    "bin": b,
                    # a per-value bin (the rating) is the single value
                    "bin_left": median if seg.left is None else seg.left,
                    "bin_right": median if seg.right is None else seg.right,
                    "count": int(members.sum()),
                    "median": median,
                    "mean_loss": float(loss[members].mean()),
                    "loss_low": low,
                    "loss_high": high,
                    "accuracy": float(correct[members].mean()),
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
    """One panel per feature: histogram (bars, left axis) and mean loss per bin with its bootstrap
    interval (error bars at the bin's median value, right axis).

    Quantile bins differ in width, so a bar's height is reviews per unit of the feature (a
    histogram's density: the area is the count); a per-value feature's bars are plain counts.
    """
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
        left, right_edge = part["bin_left"].to_numpy(), part["bin_right"].to_numpy()
        widths = right_edge - left
        count = part["count"].to_numpy(dtype=float)
        if np.all(widths == 0):  # one bar per value
            gaps = np.diff(np.unique(left))
            width = 0.8 * (float(gaps.min()) if len(gaps) else 1.0)
            ax.bar(left, count, width=width, color="#b8c7d9", label="reviews (left)")
            ax.set_ylabel("reviews", fontsize=9)
        else:
            ax.bar(
                left,
                count / np.where(widths > 0, widths, 1.0),
                width=widths,
                align="edge",
                color="#b8c7d9",
                edgecolor="white",
                linewidth=0.6,
                label="reviews (left)",
            )
            ax.set_ylabel("reviews per unit (density)", fontsize=9)
            if left.min() >= 0 and right_edge.max() > 10 * np.median(part["median"]):
                # a long right tail (length): a log axis keeps the bulk of the reviews readable
                ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlabel(feature_info(feature).axis_label, fontsize=9)
        right = ax.twinx()
        mean = part["mean_loss"].to_numpy(dtype=float)
        spread = np.vstack([mean - part["loss_low"], part["loss_high"] - mean])
        right.errorbar(
            part["median"],
            mean,
            yerr=np.clip(spread, 0, None),
            fmt="o-",
            color="#c0392b",
            ecolor="#c0392b",
            elinewidth=1.2,
            capsize=3,
            markersize=4,
            label=f"mean loss, {CI_LEVEL:.0%} CI (right)",
        )
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
