"""One model's scores of one split, computed once: training's test pass writes them, the analysis
reads them instead of scoring the split again.

`score_batch` is the one definition of "a network's scores": the logits and the pooled latent
vector of one pass (`net.logits_and_latent`; for a network without it, the head applied to
`net.latent`), what `net(ids)` computes in eval mode. `LengthOrder` batches a split for scoring.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from torch import Tensor, nn

from data.text import PAD_ID

ArrayOrTensor = TypeVar("ArrayOrTensor", np.ndarray, Tensor)


def real_widths(ids: np.ndarray) -> np.ndarray:
    """Per row of token ids (N, L), the columns up to its last real token (0 for all padding):
    a batch can be cut to its rows' widest without dropping a token, padding anywhere or not."""
    real = np.asarray(ids) != PAD_ID
    last = real.shape[1] - np.argmax(real[:, ::-1], axis=1)
    return np.where(real.any(axis=1), last, 0)


def cut_to_widest(ids: ArrayOrTensor, widths: ArrayOrTensor) -> ArrayOrTensor:
    """A batch of token ids (B, L) cut to the widest of its rows' `real_widths` (one column at
    least): the columns past it are padding in every row."""
    return ids[:, : max(1, int(widths.max()))] if len(widths) else ids


class LengthOrder:
    """Encoded reviews (N, L), right-padded, served for scoring in batches of similar length, each
    cut to its longest review; `restore` puts per-batch results back in row order.

    In eval mode the networks ignore padding, so this changes no score, only the work: on IMDB
    encoded to 800 tokens, 70% of the positions of a batch in row order are padding.
    """

    def __init__(self, ids: np.ndarray, batch_size: int) -> None:
        self.ids = ids
        self.batch_size = batch_size
        self.widths = real_widths(ids)
        self.order = np.argsort(self.widths, kind="stable")

    def __len__(self) -> int:
        return math.ceil(len(self.order) / self.batch_size)

    def __iter__(self) -> Iterator[np.ndarray]:
        for start in range(0, len(self.order), self.batch_size):
            rows = self.order[start : start + self.batch_size]
            yield cut_to_widest(np.asarray(self.ids[rows]), self.widths[rows])

    def restore(self, parts: list[np.ndarray]) -> np.ndarray:
        """The batches' results (in the order served), concatenated and put back in row order."""
        values = np.concatenate(parts)
        out = np.empty_like(values)
        out[self.order] = values
        return out


def score_batch(net: nn.Module, ids: Tensor) -> tuple[Tensor, Tensor]:
    """(logits [B, 2], latent [B, D]) of a batch of token ids; the caller sets eval/no_grad."""
    if hasattr(net, "logits_and_latent"):
        return net.logits_and_latent(ids)
    latent = net.latent(ids)
    return net.classify(latent), latent


def prob_positive(logits: Tensor) -> Tensor:
    return torch.softmax(logits, dim=-1)[:, 1]


def binary_logit(logits: Tensor) -> Tensor:
    """z1 - z0: exact where P(positive) in float32 saturates at 0 or 1 (|logit| > ~16)."""
    return logits[:, 1] - logits[:, 0]


@dataclass(frozen=True)
class SplitScores:
    """Per review of a split, in the split's order: its id, P(positive), binary logit, latent."""

    review_id: np.ndarray  # [N] str
    prob_positive: np.ndarray  # [N] float32
    logit: np.ndarray  # [N] float32, z1 - z0
    latent: np.ndarray  # [N, D] float32

    def __post_init__(self) -> None:
        n = len(self.review_id)
        if not len(self.prob_positive) == len(self.logit) == len(self.latent) == n:
            raise ValueError(
                f"scores of {n} reviews with {len(self.prob_positive)} probabilities, "
                f"{len(self.logit)} logits and {len(self.latent)} latent vectors"
            )

    def matches(self, review_ids: object) -> bool:
        """Scores of exactly these reviews, in this order."""
        ids = np.asarray(review_ids, dtype=str)
        return ids.shape == self.review_id.shape and bool(np.all(ids == self.review_id))

    def save(self, path: Path) -> Path:
        """Written under a temporary name and renamed, so a reader never sees half a file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as handle:
            np.savez(
                handle,
                review_id=self.review_id.astype(str),
                prob_positive=self.prob_positive.astype(np.float32),
                logit=self.logit.astype(np.float32),
                latent=self.latent.astype(np.float32),
            )
        os.replace(handle.name, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> SplitScores:
        with np.load(path, allow_pickle=False) as data:
            return cls(data["review_id"], data["prob_positive"], data["logit"], data["latent"])
