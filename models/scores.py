"""One model's scores of one split, computed once: training's test pass writes them, the analysis
reads them instead of scoring the split again.

`score_batch` is the one definition of "a network's scores": the pooled latent vector and the
head's logits from it (`net.classify(net.latent(ids))`, what `net(ids)` computes in eval mode).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn


def score_batch(net: nn.Module, ids: Tensor) -> tuple[Tensor, Tensor]:
    """(logits [B, 2], latent [B, D]) of a batch of token ids; the caller sets eval/no_grad."""
    latent = net.latent(ids)
    return net.classify(latent), latent


def prob_positive(logits: Tensor) -> Tensor:
    return torch.softmax(logits, dim=-1)[:, 1]


@dataclass(frozen=True)
class SplitScores:
    """Per review of a split, in the split's order: its id, P(positive) and latent vector."""

    review_id: np.ndarray  # [N] str
    prob_positive: np.ndarray  # [N] float32
    latent: np.ndarray  # [N, D] float32

    def __post_init__(self) -> None:
        n = len(self.review_id)
        if len(self.prob_positive) != n or len(self.latent) != n:
            raise ValueError(
                f"scores of {n} reviews with {len(self.prob_positive)} probabilities and "
                f"{len(self.latent)} latent vectors"
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
                latent=self.latent.astype(np.float32),
            )
        os.replace(handle.name, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> SplitScores:
        with np.load(path, allow_pickle=False) as data:
            return cls(data["review_id"], data["prob_positive"], data["latent"])
