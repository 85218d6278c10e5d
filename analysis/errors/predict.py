"""Batched inference and the per-review table (`common.schema`) that every other step reads."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from analysis.common.schema import (
    METADATA_COLUMNS,
    OOV_ID,
    PAD_ID,
    confidence_from_prob,
    per_sample_loss,
)
from models.memory import trimming
from models.scores import LengthOrder, binary_logit, prob_positive, score_batch

logger = logging.getLogger(__name__)


def net_device(net: nn.Module) -> torch.device:
    """The device of the network's parameters (CPU for a parameterless module)."""
    return next(net.parameters(), torch.empty(0)).device


def predict(
    net: nn.Module, ids: np.ndarray, batch_size: int = 64, progress: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P(positive) [N], pooled latent features [N, D] and binary logits z1 - z0 [N] (exact where
    the probabilities saturate) for encoded reviews `ids` [N, L], from `models.scores.score_batch`.

    Runs in eval mode under `torch.no_grad` on the network's device and restores the network's
    previous train/eval mode afterwards, so calling it mid-training has no side effect.
    """
    device = net_device(net)
    was_training = net.training
    net.eval()
    probs: list[np.ndarray] = []
    latents: list[np.ndarray] = []
    logits_out: list[np.ndarray] = []
    try:
        with torch.no_grad():
            batches = LengthOrder(ids, batch_size)
            for rows in trimming(
                tqdm(batches, desc="Predicting", unit="batch", disable=not progress)
            ):
                batch = torch.as_tensor(rows, dtype=torch.long).to(device)
                logits, latent = score_batch(net, batch)  # the same as training's test pass
                probs.append(prob_positive(logits).float().cpu().numpy())
                logits_out.append(binary_logit(logits).float().cpu().numpy())
                latents.append(latent.float().cpu().numpy())
    finally:
        net.train(was_training)
    if not probs:
        empty = np.zeros(0, dtype=np.float32)
        return empty, np.zeros((0, 0), dtype=np.float32), empty
    return batches.restore(probs), batches.restore(latents), batches.restore(logits_out)


def token_counts(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(tokens seen, OOV tokens seen) per row of `ids`: a fallback when the data layer's
    pre-truncation `length` / `oov_count` columns are missing."""
    ids = np.asarray(ids)
    return (ids != PAD_ID).sum(axis=1), (ids == OOV_ID).sum(axis=1)


def build_sample_table(
    samples: pd.DataFrame,
    prob_positive: np.ndarray,
    metadata: pd.DataFrame,
    ids: np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per review with the columns of `common.schema.SAMPLE_COLUMNS`.

    `samples` provides review_id, label, rating and, from the data layer, `length` (tokens before
    truncation) and `oov_count`; if those two are missing they are counted from `ids` (after
    truncation, with a warning). `metadata` holds subjectivity/polarity in the order of `samples`.
    """
    n = len(samples)
    prob = np.asarray(prob_positive, dtype=float)
    if len(prob) != n or len(metadata) != n:
        raise ValueError(
            f"samples ({n} rows), prob_positive ({len(prob)}) and metadata ({len(metadata)}) "
            "must have the same length"
        )
    label = samples["label"].to_numpy(dtype=int)
    if {"length", "oov_count"} <= set(samples.columns):
        length = samples["length"].to_numpy(dtype=int)
        oov_count = samples["oov_count"].to_numpy(dtype=int)
    elif ids is not None:
        logger.warning("samples lack length/oov_count: counting them from ids (after truncation)")
        length, oov_count = token_counts(ids)
    else:
        raise ValueError("samples need `length` and `oov_count` columns, or pass `ids`")
    rating = (
        samples["rating"] if "rating" in samples.columns else pd.Series(np.nan, index=samples.index)
    )
    table = pd.DataFrame(
        {
            "review_id": samples["review_id"].astype(str).to_numpy(),
            "label": label,
            "rating": rating.to_numpy(dtype=float),
            "pred": (prob >= 0.5).astype(int),
            "prob_positive": prob,
            "loss": per_sample_loss(prob, label),
            "confidence": confidence_from_prob(prob),
            "length": length,
            "oov_count": oov_count,
            "oov_ratio": np.divide(
                oov_count, length, out=np.zeros(n, dtype=float), where=length > 0
            ),
        }
    )
    for column in METADATA_COLUMNS:
        table[column] = metadata[column].to_numpy(dtype=float)
    return table
