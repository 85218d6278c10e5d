"""The two sentiment networks: a per-token dense model and a 1-D CNN, both with padding-aware pooling.

Both map right-padded token ids (B, L) to two logits. Every path goes through
`forward_from_embeddings(embedded, mask)`, so Integrated Gradients (captum) attributes exactly the
function that `forward` computes. Padding never influences the output: activations are zeroed at
padded positions and pooling only looks at real tokens, so a review scores the same whatever
`max_len` it was padded to.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, get_args

import torch
from torch import Tensor, nn

from config import check_choice
from data.text import NEGATION_WORDS, OOV_ID, PAD_ID
from models.ngram_branch import NgramBranch

__all__ = [
    "ARCHITECTURES",
    "CONV_EDGES",
    "ConvEdges",
    "Arch",
    "OOV_ID",
    "PAD_ID",
    "POOLINGS",
    "Pooling",
    "CNNNet",
    "DenseNet",
    "SentimentNet",
    "build_net",
    "check_ngram_buckets",
]

# The two architectures. Defined here, with the networks, and re-exported by models.presets:
# the presets import this module, so it cannot import them.
Arch = Literal["dense", "cnn"]
Pooling = Literal["mean", "max", "meanmax", "attention", "position"]
POOLINGS: tuple[Pooling, ...] = get_args(Pooling)
# "position" pooling: a mean weighted by where in the review a position falls, in this many
# equal bins of relative position (first to last covered position), one learned log-weight each.
POSITION_BINS = 8
# The log-weights are the parameters times a gain (a network hyperparameter, this by default):
# Adam moves a parameter by about its learning rate per step, so one epoch at 2e-3 (about 350
# steps, decayed to 0) could move a raw log-weight by 0.35 at most; with the gain the bins can
# come to differ as much as the data says they do.
POSITION_GAIN = 10.0
# Which positions the CNN's conv blocks compute and pool. "same": the review's own tokens (the
# reference). "full": also, per block, the kernel_size // 2 positions past each end of the review,
# so every token feeds as many pooled positions as any other: under "same" a word within three
# blocks' reach of either end feeds fewer of them (the last word of a review 4 of 7 at kernel 3)
# and counts about half as much in the mean, which is where reviews put their verdict.
ConvEdges = Literal["same", "full"]
CONV_EDGES: tuple[ConvEdges, ...] = get_args(ConvEdges)
# Knuth's multiplicative constant: spreads consecutive pair ids over the hash buckets.
_HASH_MULTIPLIER = 2_654_435_761
NUM_CLASSES = 2
EMBEDDING_INIT = 0.05  # half-width of the uniform embedding init


def _check_positive(name: str, value: int) -> None:
    # bool is an int subclass; True as a width is always a mistake.
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_dropout(value: float) -> None:
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {value!r}")


def _check_pooling(value: Pooling) -> None:
    check_choice(value, Pooling, "pooling")


def check_bigram_buckets(value: int) -> int:
    """0 (no word pairs) or at least 2: bucket 0 is reserved for pairs that reach padding."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"bigram_buckets must be an integer, got {value!r}")
    if value == 1 or value < 0:
        raise ValueError(f"bigram_buckets must be 0 (off) or at least 2, got {value}")
    return value


def check_ngram_buckets(value: int) -> int:
    """0 (no n-gram branch) or at least 2: bucket 0 is reserved for n-grams that reach padding."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"ngram_buckets must be an integer, got {value!r}")
    if value == 1 or value < 0:
        raise ValueError(f"ngram_buckets must be 0 (off) or at least 2, got {value}")
    return value


def check_negation_scope(scope: int, ngram_buckets: int) -> int:
    """`scope` if valid: 0, or positive with the n-gram branch (whose n-grams it marks)."""
    if scope < 0 or (scope and not ngram_buckets):
        raise ValueError(
            "ngram_negation_scope must be 0, or positive with the n-gram branch "
            f"(ngram_buckets > 0), got {scope}"
        )
    return scope


def position_bins(mask: Tensor, bins: int) -> Tensor:
    """(B, L) long: the bin of each masked position's relative place among the row's masked
    positions (first 0, last bins - 1, equal-width bins of (rank) / (count - 1)); 0 elsewhere."""
    real = mask.to(torch.float32)
    rank = real.cumsum(dim=1) - 1.0
    span = (real.sum(dim=1, keepdim=True) - 1.0).clamp(min=1.0)
    where = (rank / span).clamp(0.0, 1.0)  # padding past the end reads 1, then is masked out
    return (where * bins).long().clamp(max=bins - 1) * mask.long()


def bin_weights(learned: Tensor, gain: float = POSITION_GAIN) -> Tensor:
    """Position pooling's weight per bin from its learned parameters (1 everywhere at zero)."""
    return torch.exp(gain * learned)


def masked_pool(
    features: Tensor,
    mask: Tensor,
    pooling: Pooling,
    learned: Tensor | None = None,
    gain: float = POSITION_GAIN,
) -> Tensor:
    """Pool (B, L, C) features over real tokens only; (B, C), or (B, 2C) for "meanmax".

    "attention" weighs each token by softmax(features . query) over the real tokens (`learned` is
    the query, (C,); at zero it is the mean). "position" weighs each token by its relative-position
    bin's weight (`bin_weights(learned, gain)`, `learned` (POSITION_BINS,); at zero the mean),
    normalised over the real tokens: it can learn that where a review says a thing matters (its
    closing verdict), which no bag of words can. An all-padding row pools to zeros (finite), not
    NaN: the mean divisor is clamped to 1 and the max of an empty set is defined as 0.
    """
    weights = mask.unsqueeze(-1).to(features.dtype)  # (B, L, 1)
    if pooling == "position":
        if learned is None:
            raise ValueError("position pooling needs its per-bin log-weights")
        per_bin = bin_weights(learned, gain)[position_bins(mask, learned.numel())]
        weights = weights * per_bin.unsqueeze(-1)
        return (features * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-12)
    if pooling == "attention":
        if learned is None:
            raise ValueError("attention pooling needs a query vector")
        real = mask.bool()
        scores = (features @ learned).masked_fill(~real, torch.finfo(features.dtype).min)
        attention = torch.softmax(scores, dim=1) * weights.squeeze(-1)  # all-padding rows: 0
        return (attention.unsqueeze(-1) * features).sum(dim=1)
    parts: list[Tensor] = []
    if pooling in ("mean", "meanmax"):
        count = weights.sum(dim=1).clamp(min=1.0)
        parts.append((features * weights).sum(dim=1) / count)
    if pooling in ("max", "meanmax"):
        real = mask.unsqueeze(-1).bool()
        lowest = torch.finfo(features.dtype).min
        best = features.masked_fill(~real, lowest).amax(dim=1)
        parts.append(torch.where(real.any(dim=1), best, torch.zeros_like(best)))
    return torch.cat(parts, dim=-1)


class SentimentNet(NgramBranch, nn.Module):
    """Common base: embedding -> dropout -> token encoder -> masked pooling -> dropout -> linear."""

    embedding: nn.Embedding
    latent_dim: int
    # A class default too: a network pickled before the gain was a hyperparameter reads it here.
    position_gain: float = POSITION_GAIN

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int,
        dropout: float,
        pooling: Pooling,
        word_dropout: float = 0.0,
        bigram_buckets: int = 0,
        ngram_buckets: int = 0,
        ngram_order: int = 3,
        position_gain: float = POSITION_GAIN,
        ngram_negation_scope: int = 0,
    ) -> None:
        super().__init__()
        _check_positive("vocab_size", vocab_size)
        _check_positive("embedding_dim", embedding_dim)
        _check_dropout(dropout)
        _check_dropout(word_dropout)
        _check_pooling(pooling)
        if vocab_size <= max(PAD_ID, OOV_ID):
            raise ValueError(f"vocab_size must exceed the reserved ids, got {vocab_size}")
        check_bigram_buckets(bigram_buckets)
        check_ngram_buckets(ngram_buckets)
        _check_positive("ngram_order", ngram_order)
        if not (math.isfinite(position_gain) and position_gain > 0):
            raise ValueError(f"position_gain must be positive and finite, got {position_gain}")
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.pooling = pooling
        self.position_gain = float(position_gain)  # only "position" pooling reads it
        # Word dropout (training only): each real token becomes the out-of-vocabulary id with this
        # probability. Off by default; eval and the captum path (embeddings in) never drop words.
        self.word_dropout = float(word_dropout)
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD_ID)
        # Small uniform init (as Keras does) instead of N(0, 1): Adam moves each weight by about
        # the learning rate per step, so unit-scale embeddings take many epochs to become useful.
        with torch.no_grad():
            nn.init.uniform_(self.embedding.weight, -EMBEDDING_INIT, EMBEDDING_INIT)
            self.embedding.weight[PAD_ID].zero_()
        # Hashed bigram embeddings (fastText's trick), added to the first word's embedding: token t
        # also carries the pair (t, t+1), which a bag of words cannot see. Bucket 0 is the padding
        # bucket (a pair that runs into padding). Zero init: a bigram seen too rarely to learn
        # anything adds nothing, and the network starts as the plain word model.
        self.bigram_buckets = bigram_buckets
        self.bigram_embedding: nn.Embedding | None = None
        if bigram_buckets:
            self.bigram_embedding = nn.Embedding(bigram_buckets, embedding_dim, padding_idx=0)
            nn.init.zeros_(self.bigram_embedding.weight)
        # The n-gram branch (Wang & Manning's NBSVM, the bag-of-n-grams branch of Johnson & Zhang):
        # one weight per hashed 1..`ngram_order`-gram, summed over the distinct n-grams of a review,
        # plus a bias, added to the logit of the positive class (half to each side). It is fitted
        # at fit time on the training split (`fit_ngram_weights`: naive-Bayes log-count ratios,
        # then an L2 logistic regression on the NB-weighted binary features) and frozen; the rest of
        # the network then trains on its own (in training mode the branch is left out) and at
        # inference the two logits add up: a product of two experts, one of them reading context.
        # Fitted weights live in the state dict, so a logged model serves them with nothing extra.
        self.ngram_buckets = ngram_buckets
        self.ngram_order = ngram_order
        self.ngram_negation_scope = check_negation_scope(int(ngram_negation_scope), ngram_buckets)
        if self.ngram_negation_scope:  # filled by set_negation_words (-1 matches no id)
            self.register_buffer("negation_ids", torch.full((len(NEGATION_WORDS),), -1))
        self.ngram_weight: nn.Embedding | None = None
        self.ngram_bias: nn.Parameter | None = None
        if ngram_buckets:
            self.ngram_weight = nn.Embedding(ngram_buckets, 1, padding_idx=0)
            nn.init.zeros_(self.ngram_weight.weight)
            self.ngram_bias = nn.Parameter(torch.zeros(()))
        self.embedding_dropout = nn.Dropout(dropout)
        self.head_dropout = nn.Dropout(dropout)

    def _finish(self, feature_dim: int) -> None:
        """Create the head once the subclass knows its per-token feature width."""
        self.latent_dim = feature_dim * (2 if self.pooling == "meanmax" else 1)
        self.head = nn.Linear(self.latent_dim, NUM_CLASSES)
        # Attention pooling's query; zero at first, so the network starts as mean pooling.
        self.attention_query: nn.Parameter | None = None
        if self.pooling == "attention":
            self.attention_query = nn.Parameter(torch.zeros(feature_dim))
        # Position pooling's per-bin log-weights; zero at first, so it too starts as the mean.
        self.position_logits: nn.Parameter | None = None
        if self.pooling == "position":
            self.position_logits = nn.Parameter(torch.zeros(POSITION_BINS))

    def encode_tokens(self, embedded: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """(B, L, E) dropped-out embeddings and a (B, L) float mask -> (B, L', C) per-position
        features, zero outside the positions they cover, and the (B, L') mask of those positions
        (the input's, unless the network computes positions past the review's ends)."""
        raise NotImplementedError

    def pooled_from_embeddings(self, embedded: Tensor, mask: Tensor) -> Tensor:
        """The latent vector from embeddings: (B, latent_dim)."""
        mask = mask.to(embedded.dtype)
        embedded = embedded[..., : self.embedding_dim]  # without the n-gram channel, if any
        # Zero padded inputs: captum may pass interpolated embeddings with non-zero padding rows.
        embedded = self.embedding_dropout(embedded) * mask.unsqueeze(-1)
        features, covered = self.encode_tokens(embedded, mask)
        learned = self.attention_query if self.position_logits is None else self.position_logits
        return masked_pool(features, covered, self.pooling, learned, self.position_gain)

    def classify(self, latent: Tensor) -> Tensor:
        """Logits (B, 2) from pooled latent vectors: the head alone (analysis needs both)."""
        return self.head(self.head_dropout(latent))

    def forward_from_embeddings(self, embedded: Tensor, mask: Tensor) -> Tensor:
        """Logits (B, 2) from (B, L, E) embeddings and a (B, L) mask, 1/True for real tokens.

        With the n-gram branch the input is (B, L, E + 1): the last channel holds each token's share
        of the branch's score (`embed`), so attributions cover the branch as well. In training mode
        the branch is left out: it is fitted beforehand (`fit_ngram_weights`) and frozen.
        """
        return self._logits(self.pooled_from_embeddings(embedded, mask), embedded, mask)

    def _logits(self, latent: Tensor, embedded: Tensor, mask: Tensor) -> Tensor:
        """The head's logits from `latent`, plus the n-gram branch's score (eval mode only)."""
        logits = self.classify(latent)
        if self.ngram_bias is None or self.training:
            return logits
        score = self._branch_score(embedded, mask)
        return logits + torch.stack([-score, score], dim=-1) / 2

    @property
    def has_ngram_branch(self) -> bool:
        return self.ngram_bias is not None

    def _branch_score(self, embedded: Tensor, mask: Tensor) -> Tensor:
        """(B,) the n-gram branch's logit: the tokens' shares (the last channel) plus its bias."""
        assert self.ngram_bias is not None
        score = (embedded[..., self.embedding_dim] * mask.to(embedded.dtype)).sum(dim=1)
        return score + self.ngram_bias

    def branch_logit(self, ids: Tensor) -> Tensor:
        """(B,) the n-gram branch's logit alone, without running the network."""
        return self._branch_score(self.embed(ids), ids != PAD_ID)

    def logit_parts(self, ids: Tensor) -> Tensor:
        """(B, 2): the logit margin (positive minus negative) of the network alone and of the
        n-gram branch alone (0 without one). In eval mode they add up to `forward`'s margin."""
        embedded, mask = self.embed(ids), ids != PAD_ID
        logits = self.classify(self.pooled_from_embeddings(embedded, mask))
        network = logits[:, 1] - logits[:, 0]
        branch = torch.zeros_like(network)
        if self.ngram_bias is not None:
            branch = self._branch_score(embedded, mask)
        return torch.stack([network, branch], dim=-1)

    def bigram_ids(self, ids: Tensor) -> Tensor:
        """(B, L) hash bucket of each pair (token t, token t+1); 0 where either one is padding."""
        real = ids != PAD_ID
        pair = ids[:, :-1] * self.vocab_size + ids[:, 1:]
        buckets = 1 + (pair * _HASH_MULTIPLIER) % (self.bigram_buckets - 1)
        buckets = buckets.masked_fill(~(real[:, :-1] & real[:, 1:]), 0)
        return nn.functional.pad(buckets, (0, 1))  # the last position has no next token

    def embed(self, ids: Tensor) -> Tensor:
        """(B, L, E) input embeddings of token ids: the word's, plus its bigram's if enabled.

        With the n-gram branch, (B, L, E + 1): the last channel is `ngram_scores(ids)`.
        """
        embedded = self.embedding(ids)
        if self.bigram_embedding is not None:
            embedded = embedded + self.bigram_embedding(self.bigram_ids(ids))
        if self.ngram_weight is not None:
            embedded = torch.cat([embedded, self.ngram_scores(ids).unsqueeze(-1)], dim=-1)
        return embedded

    def forward(self, ids: Tensor) -> Tensor:
        """Logits (B, 2) for right-padded token ids (B, L)."""
        mask = ids != PAD_ID
        if self.training and self.word_dropout > 0:
            dropped = torch.rand(ids.shape, device=ids.device) < self.word_dropout
            ids = ids.masked_fill(dropped & mask, OOV_ID)
        return self.forward_from_embeddings(self.embed(ids), mask)

    def logits_and_latent(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        """Logits (B, 2) and the latent vector (B, latent_dim) of one pass, as `forward` in eval:
        the latent vector is the network's alone, the logits include the n-gram branch."""
        embedded, mask = self.embed(ids), ids != PAD_ID
        latent = self.pooled_from_embeddings(embedded, mask)
        return self._logits(latent, embedded, mask), latent

    def latent(self, ids: Tensor) -> Tensor:
        """Pooled features just before the classifier head: (B, latent_dim)."""
        return self.pooled_from_embeddings(self.embed(ids), ids != PAD_ID)


class DenseNet(SentimentNet):
    """Embedding -> dropout -> Linear(E, hidden) + ReLU per token -> masked pooling -> head.

    `common`: the settings both networks share, as `SentimentNet` takes them (word dropout, word
    pairs, the n-gram branch, the position gain)."""

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 16,
        hidden_dim: int = 28,
        dropout: float = 0.2,
        pooling: Pooling = "mean",
        **common: Any,
    ) -> None:
        super().__init__(vocab_size, embedding_dim, dropout, pooling, **common)
        _check_positive("hidden_dim", hidden_dim)
        self.hidden_dim = hidden_dim
        self.token_dense = nn.Linear(embedding_dim, hidden_dim)
        self._finish(hidden_dim)

    def encode_tokens(self, embedded: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        # Masking after the ReLU matters: the bias would otherwise make padded tokens non-zero.
        return torch.relu(self.token_dense(embedded)) * mask.unsqueeze(-1), mask


class CNNNet(SentimentNet):
    """Embedding -> dropout -> 3 x [Conv1d + BatchNorm1d + ReLU, masked] -> pooling -> head.

    `edges` (`ConvEdges`): "same" computes and pools the review's own positions, "full" also the
    positions within each block's reach past both ends (a "full" convolution, exact whatever the
    padding: positions past that reach are zeroed after every block). `common`: as `DenseNet`.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 16,
        channels: Sequence[int] = (28, 16, 8),
        kernel_size: int = 3,
        dropout: float = 0.2,
        pooling: Pooling = "mean",
        edges: ConvEdges = "same",
        **common: Any,
    ) -> None:
        super().__init__(vocab_size, embedding_dim, dropout, pooling, **common)
        check_choice(edges, ConvEdges, "edges")
        self.edges = edges
        channels = tuple(channels)
        if len(channels) != 3:
            raise ValueError(f"channels must give 3 conv widths, got {channels!r}")
        for i, width in enumerate(channels):
            _check_positive(f"channels[{i}]", width)
        _check_positive("kernel_size", kernel_size)
        if kernel_size % 2 == 0:
            # An odd kernel keeps "same" padding symmetric, so position t sees t-k//2..t+k//2.
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.channels = channels
        self.kernel_size = kernel_size
        widths = (embedding_dim, *channels)
        self.convs = nn.ModuleList(
            # No conv bias: BatchNorm's shift makes it redundant.
            nn.Conv1d(w_in, w_out, kernel_size, padding="same", bias=False)
            for w_in, w_out in zip(widths[:-1], widths[1:], strict=True)
        )
        self.norms = nn.ModuleList(nn.BatchNorm1d(w) for w in channels)
        self._finish(channels[-1])

    def encode_tokens(self, embedded: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        x = embedded.transpose(1, 2)  # (B, E, L): Conv1d wants channels first
        channel_mask = mask.unsqueeze(1)
        reach = self.kernel_size // 2
        if self.edges == "full":  # room for each block's reach past both ends of every review
            margin = reach * len(self.convs)
            x = nn.functional.pad(x, (margin, margin))
            channel_mask = nn.functional.pad(channel_mask, (margin, margin))
        for conv, norm in zip(self.convs, self.norms, strict=True):
            if self.edges == "full":  # this block also covers `reach` more positions each side
                channel_mask = nn.functional.max_pool1d(channel_mask, 2 * reach + 1, 1, reach)
            # Re-mask after every block: BatchNorm's shift would make uncovered positions non-zero
            # and the next convolution would then carry them into the covered ones at the edge.
            x = torch.relu(norm(conv(x))) * channel_mask
        return x.transpose(1, 2), channel_mask.squeeze(1)


ARCHITECTURES: dict[Arch, type[SentimentNet]] = {"dense": DenseNet, "cnn": CNNNet}


def build_net(arch: Arch, vocab_size: int, **hyperparameters: object) -> SentimentNet:
    """Construct the network `arch` ("dense" or "cnn"); seed torch beforehand for reproducibility."""
    check_choice(arch, Arch, "architecture")
    return ARCHITECTURES[arch](vocab_size, **hyperparameters)  # type: ignore[arg-type]
