"""Integrated Gradients (captum) per token, toward the positive or the negative class.

IG runs on `net.forward_from_embeddings(embedded, mask)` from the input embeddings `net.embed(ids)`,
with the real ids' mask held fixed, from a baseline of all-zero embeddings (the PAD embedding) to
the review's embeddings. Scores are summed over the embedding dimension, so each token gets one
number: > 0 pushes the target class's logit up. Completeness: the scores of a review sum to
logit_target(review) - logit_target(zero embeddings) up to the convergence delta that is returned
with them. With word-pair embeddings (`bigram_buckets`), a token's input is its word's embedding
plus that of the pair it starts, so its score covers both: "not" in "not good" carries the pair "not
good".
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from captum.attr import IntegratedGradients
from torch import nn
from tqdm.auto import tqdm

from analysis.common.schema import OOV_ID, PAD_ID
from analysis.errors.predict import net_device
from models.memory import trimming

logger = logging.getLogger(__name__)

DEFAULT_N_STEPS = 32
# Rows (review x interpolation step) pushed through the network at once. Without a cap IG runs
# batch_size * n_steps rows with gradients: 512 rows of 800 tokens held 1.3 GB for the CNN.
MAX_IG_ROWS = 64
POSITIVE, NEGATIVE = 1, 0


def explain(
    net: nn.Module,
    ids: np.ndarray,
    target: int,
    n_steps: int = DEFAULT_N_STEPS,
    batch_size: int = 16,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """IG attributions [N, L] (0 at padding) toward class `target` and convergence delta [N].

    `batch_size` reviews are interpolated together (batch_size * n_steps forward rows at once).
    The network is put in eval mode (dropout off) and its previous mode restored afterwards.
    """
    if target not in (POSITIVE, NEGATIVE):
        raise ValueError(f"target must be 0 (negative) or 1 (positive), got {target!r}")
    ids = np.asarray(ids, dtype=np.int64)
    if ids.ndim != 2:
        raise ValueError(f"ids must be 2-D (N, L), got shape {ids.shape}")
    attributions = np.zeros(ids.shape, dtype=np.float32)
    deltas = np.zeros(len(ids), dtype=np.float32)
    device = net_device(net)
    was_training = net.training
    net.eval()
    ig = IntegratedGradients(net.forward_from_embeddings)
    try:
        for start in trimming(
            tqdm(
                range(0, len(ids), batch_size),
                desc=f"Integrated Gradients (class {target})",
                unit="batch",
                disable=not progress,
            ),
            every=4,  # each batch is batch_size * n_steps rows with gradients
        ):
            batch = torch.as_tensor(ids[start : start + batch_size], device=device)
            mask = batch != PAD_ID
            with torch.no_grad():
                embedded = net.embed(batch)
            attr, delta = ig.attribute(
                embedded,
                baselines=torch.zeros_like(embedded),
                target=target,
                additional_forward_args=(mask,),
                n_steps=n_steps,
                internal_batch_size=MAX_IG_ROWS,
                return_convergence_delta=True,
            )
            per_token = attr.sum(dim=-1) * mask  # padding gets exactly 0, whatever IG gave it
            stop = start + len(batch)
            attributions[start:stop] = per_token.detach().float().cpu().numpy()
            deltas[start:stop] = delta.detach().float().cpu().numpy()
    finally:
        net.train(was_training)
    return attributions, deltas


def token_scores(
    ids_row: np.ndarray, attr_row: np.ndarray, vocab: Sequence[str]
) -> list[tuple[str, float]]:
    """(token, score) for the real (non-padding) tokens of one review, in order."""
    return [
        (vocab[int(i)], float(s)) for i, s in zip(ids_row, attr_row, strict=True) if i != PAD_ID
    ]


@dataclass(frozen=True)
class TokenView:
    """One model's explanation of one review: what the heat map renders in a column pair."""

    model_name: str
    tokens: list[str]  # shown words: the review's own words when alignable, else vocab tokens
    is_oov: list[bool]
    scores_pos: np.ndarray  # IG toward the positive class, one per token
    scores_neg: np.ndarray  # IG toward the negative class
    prob_positive: float
    loss: float
    delta_pos: float
    delta_neg: float
    unseen_tokens: int  # tokens beyond max_len that the model never saw


def display_tokens(
    ids_row: np.ndarray,
    vocab: Sequence[str],
    text: str | None = None,
    tokenize: Callable[[str], list[str]] | None = None,
) -> list[str]:
    """Words to show for the real tokens of `ids_row`.

    With the data layer's `tokenize`, OOV positions show the review's actual word instead of
    "<oov>" (that is what a reader needs to see); it is used only if it reproduces every in-vocab
    token of the row, so a mismatched tokenizer can never shift words against their scores.
    """
    real = [int(i) for i in ids_row if i != PAD_ID]
    fallback = [vocab[i] for i in real]
    if text is None or tokenize is None:
        return fallback
    words = tokenize(text)[: len(real)]
    aligned = len(words) == len(real) and all(
        i == OOV_ID or vocab[i] == w for i, w in zip(real, words, strict=True)
    )
    return words if aligned else fallback


def explain_reviews(
    net: nn.Module,
    ids: np.ndarray,
    prob_positive: np.ndarray,
    loss: np.ndarray,
    lengths: np.ndarray,
    vocab: Sequence[str],
    model_name: str = "model",
    texts: Sequence[str] | None = None,
    tokenize: Callable[[str], list[str]] | None = None,
    n_steps: int = DEFAULT_N_STEPS,
    progress: bool = True,
) -> list[TokenView]:
    """IG toward both classes for the rows of `ids`, packaged for `heatmap.render_heatmap_html`.

    All arrays are aligned with `ids`; `lengths` are token counts before truncation.
    """
    attr_pos, delta_pos = explain(net, ids, POSITIVE, n_steps=n_steps, progress=progress)
    attr_neg, delta_neg = explain(net, ids, NEGATIVE, n_steps=n_steps, progress=progress)
    views = []
    for row in range(len(ids)):
        real = ids[row] != PAD_ID
        views.append(
            TokenView(
                model_name=model_name,
                tokens=display_tokens(
                    ids[row], vocab, None if texts is None else texts[row], tokenize
                ),
                is_oov=(ids[row][real] == OOV_ID).tolist(),
                scores_pos=attr_pos[row][real],
                scores_neg=attr_neg[row][real],
                prob_positive=float(prob_positive[row]),
                loss=float(loss[row]),
                delta_pos=float(delta_pos[row]),
                delta_neg=float(delta_neg[row]),
                unseen_tokens=max(int(lengths[row]) - int(real.sum()), 0),
            )
        )
    return views


# Global token importance: how a model reads each word across many reviews, not one. Computed on
# a fixed subset of reviews chosen by review id alone, so two models (or a model and its
# champion) are explained on exactly the same reviews and their importances can be compared.
IMPORTANCE_COLUMNS = ("token", "count", "importance", "mean_abs_attribution")
DEFAULT_IMPORTANCE_REVIEWS = 256
DEFAULT_MIN_COUNT = 3


def importance_rows(review_ids: Sequence[str], n: int = DEFAULT_IMPORTANCE_REVIEWS) -> np.ndarray:
    """Positions of `n` reviews picked by a hash of their id: independent of model and row order."""
    keys = [hashlib.blake2b(str(r).encode(), digest_size=8).digest() for r in review_ids]
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return np.sort(np.asarray(order[:n], dtype=np.int64))


def token_importance(
    net: nn.Module,
    ids: np.ndarray,
    vocab: Sequence[str],
    *,
    n_steps: int = DEFAULT_N_STEPS,
    min_count: int = DEFAULT_MIN_COUNT,
    progress: bool = True,
) -> pd.DataFrame:
    """Per word: occurrences in `ids` and mean IG toward the positive class per occurrence.

    `importance` > 0: the word pushes this model toward "positive" on average; < 0 toward
    "negative". `mean_abs_attribution` is how much it matters either way. Words seen fewer than
    `min_count` times are left out (one review's context would decide their sign). Sorted by
    importance, most positive first; `<oov>` stands for every out-of-vocabulary word.
    """
    ids = np.asarray(ids, dtype=np.int64)
    attr, _ = explain(net, ids, POSITIVE, n_steps=n_steps, progress=progress)
    real = ids != PAD_ID
    token_ids, scores = ids[real], attr[real].astype(np.float64)
    size = max(len(vocab), int(token_ids.max(initial=0)) + 1)
    count = np.bincount(token_ids, minlength=size)
    total = np.bincount(token_ids, weights=scores, minlength=size)
    total_abs = np.bincount(token_ids, weights=np.abs(scores), minlength=size)
    keep = np.flatnonzero(count >= max(min_count, 1))
    table = pd.DataFrame(
        {
            "token": [vocab[i] for i in keep],
            "count": count[keep],
            "importance": total[keep] / count[keep],
            "mean_abs_attribution": total_abs[keep] / count[keep],
        }
    )
    return table.sort_values(
        ["importance", "token"], ascending=[False, True], kind="stable"
    ).reset_index(drop=True)
