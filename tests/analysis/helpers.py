"""Stand-in network and planted synthetic data for the analysis tests.

The stand-in obeys the network contract of models/networks.py (embedding with padding_idx=0,
forward, latent, forward_from_embeddings) with weights set by hand, so the right answers are known:
the positive logit is HEAD_GAIN x (mean embedding)[0], the negative logit its opposite, and embedding
dimension 1 (the "ignored" token's only non-zero dimension) never reaches the head.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

PAD_ID, OOV_ID = 0, 1
POSITIVE_WORDS = ["great", "wonderful", "superb", "moving"]
NEGATIVE_WORDS = ["awful", "terrible", "boring", "dull"]
NEUTRAL_WORDS = ["the", "film", "plot", "actor", "scene", "story", "music", "ending"]
IGNORED_WORD = "ignored"
VOCAB = ["<pad>", "<oov>", *POSITIVE_WORDS, *NEGATIVE_WORDS, *NEUTRAL_WORDS, IGNORED_WORD]
TOKEN_ID = {w: i for i, w in enumerate(VOCAB)}
EMBEDDING_DIM = 4
HEAD_GAIN = 10.0  # logits = +-10 x mean of dim 0: confident on clean reviews


class StandInNet(nn.Module):
    """Embedding -> (optional tanh layer) -> masked mean -> linear; hand-set weights."""

    def __init__(self, hidden: bool = False, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.embedding = nn.Embedding(len(VOCAB), EMBEDDING_DIM, padding_idx=PAD_ID)
        weights = torch.zeros(len(VOCAB), EMBEDDING_DIM)
        for w in POSITIVE_WORDS:
            weights[TOKEN_ID[w], 0] = 2.0
        for w in NEGATIVE_WORDS:
            weights[TOKEN_ID[w], 0] = -2.0
        for w in NEUTRAL_WORDS:  # small, harmless: neutral words point along dims 2-3
            weights[TOKEN_ID[w], 2:] = torch.rand(2, generator=gen) * 0.5
        weights[TOKEN_ID[IGNORED_WORD], 1] = 5.0  # large, but the head ignores dim 1
        weights[OOV_ID] = torch.tensor([0.0, 0.0, 0.0, 6.0])  # OOV: far from everything else
        self.hidden = nn.Linear(EMBEDDING_DIM, EMBEDDING_DIM) if hidden else None
        if self.hidden is not None:
            self.hidden.weight.data = torch.eye(EMBEDDING_DIM) + 0.1 * torch.randn(
                EMBEDDING_DIM, EMBEDDING_DIM, generator=gen
            )
            self.hidden.bias.data.zero_()
        self.embedding.weight.data = weights
        self.head = nn.Linear(EMBEDDING_DIM, 2)
        self.head.weight.data = torch.tensor(
            [[-HEAD_GAIN, 0.0, 0.0, 0.0], [HEAD_GAIN, 0.0, 0.0, 0.0]]
        )
        self.head.bias.data.zero_()

    def _pool(self, embedded: Tensor, mask: Tensor) -> Tensor:
        weights = mask.unsqueeze(-1).to(embedded.dtype)
        if self.hidden is not None:
            embedded = torch.tanh(self.hidden(embedded))
        return (embedded * weights).sum(1) / weights.sum(1).clamp(min=1.0)

    def classify(self, latent: Tensor) -> Tensor:
        return self.head(latent)

    def forward_from_embeddings(self, embedded: Tensor, mask: Tensor) -> Tensor:
        return self.classify(self._pool(embedded, mask))

    def embed(self, ids: Tensor) -> Tensor:
        return self.embedding(ids)

    def forward(self, ids: Tensor) -> Tensor:
        return self.forward_from_embeddings(self.embed(ids), ids != PAD_ID)

    def latent(self, ids: Tensor) -> Tensor:
        return self._pool(self.embed(ids), ids != PAD_ID)


def encode(tokens: list[str], max_len: int) -> np.ndarray:
    ids = np.zeros(max_len, dtype=np.int64)
    kept = [TOKEN_ID.get(t, OOV_ID) for t in tokens[:max_len]]
    ids[: len(kept)] = kept
    return ids


def planted_reviews(
    n: int = 200, oov_share: float = 0.2, max_len: int = 40, seed: int = 0
) -> tuple[pd.DataFrame, np.ndarray]:
    """Samples frame and ids: clean positive/negative reviews plus an OOV-heavy group.

    Clean reviews carry 2-4 sentiment words of their label among neutral words, so the stand-in
    gets them right with low loss. The OOV-heavy group (`group == "oov"`) is mostly made-up words
    with one sentiment word of a random side: the model is unsure or wrong there. Reviews come ten
    per movie, and the OOV-heavy ones are about movies of their own.
    """
    rng = np.random.default_rng(seed)
    rows, encoded = [], []
    n_oov = int(round(n * oov_share))
    for i in range(n):
        label = int(rng.integers(0, 2))
        if i < n_oov:
            group = "oov"
            words = [f"zq{rng.integers(0, 10**6)}x" for _ in range(rng.integers(12, 30))]
            side = POSITIVE_WORDS if rng.random() < 0.5 else NEGATIVE_WORDS
            words.insert(int(rng.integers(0, len(words))), str(rng.choice(side)))
        else:
            group = "clean"
            words = list(rng.choice(NEUTRAL_WORDS, size=rng.integers(6, 60)))
            for _ in range(rng.integers(2, 5)):
                side = POSITIVE_WORDS if label else NEGATIVE_WORDS
                words.insert(int(rng.integers(0, len(words) + 1)), str(rng.choice(side)))
        text = " ".join(words)
        rows.append(
            {
                "review_id": f"r{i:04d}",
                "text": text,
                "label": label,
                "rating": float(rng.integers(7, 11) if label else rng.integers(1, 5)),
                "length": len(words),
                "oov_count": sum(w not in TOKEN_ID for w in words),
                "group": group,
                # Ten reviews per movie: the OOV-heavy reviews are about movies of their own.
                "movie": f"tt{i // 10 if i < n_oov else 1000 + (i - n_oov) // 10:07d}",
            }
        )
        encoded.append(encode(words, max_len))
    return pd.DataFrame(rows), np.stack(encoded)


def tokenize(text: str) -> list[str]:
    return text.split()
