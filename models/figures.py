"""The figures logged with every training run: training curves and the test confusion matrix."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from mlflow import MlflowClient
from torch import Tensor


def _history(client: MlflowClient, run_id: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    points = sorted(client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp))
    return np.array([m.step for m in points]), np.array([m.value for m in points])


def curves_figure(client: MlflowClient, run_id: str) -> Figure:
    """Loss and accuracy against the optimizer step: per-batch training, per-epoch validation."""
    # Figure objects, not pyplot: no global state, no GUI backend, nothing to close.
    figure = Figure(figsize=(12, 4.5), layout="constrained")
    axes = figure.subplots(1, 2)
    for ax, what in zip(axes, ("loss", "acc"), strict=True):
        steps, values = _history(client, run_id, f"train_{what}")
        ax.plot(steps, values, color="tab:blue", alpha=0.35, lw=1, label="train (per batch)")
        if len(values) >= 20:  # a moving average keeps the trend readable over noisy batches
            window = len(values) // 20
            trend = np.convolve(values, np.ones(window) / window, mode="valid")
            ax.plot(steps[window - 1 :], trend, color="tab:blue", lw=2, label="train (smoothed)")
        steps, values = _history(client, run_id, f"val_{what}")
        ax.plot(steps, values, "o-", color="tab:orange", lw=2, label="validation (per epoch)")
        ax.set_xlabel("batch (optimizer step)")
        ax.set_ylabel("cross-entropy loss" if what == "loss" else "accuracy")
        ax.set_title("Loss" if what == "loss" else "Accuracy")
        ax.grid(alpha=0.3)
        ax.legend()
    return figure


def confusion_figure(matrix: Tensor) -> Figure:
    """The 2x2 test confusion matrix with counts and row percentages."""
    counts = matrix.numpy().astype(int)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    labels = ("negative", "positive")
    figure = Figure(figsize=(5, 4.5), layout="constrained")
    ax = figure.subplots()
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (i, j), n in np.ndenumerate(counts):
        ax.text(
            j,
            i,
            f"{n}\n{share[i, j]:.1%}",
            ha="center",
            va="center",
            fontsize=12,
            color="white" if share[i, j] > 0.5 else "black",
        )
    ax.set_xticks([0, 1], labels)
    ax.set_yticks([0, 1], labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"Test confusion matrix (n={counts.sum()})")
    return figure
