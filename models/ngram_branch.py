"""The naive-Bayes n-gram branch of the networks (NBSVM; the bag-of-n-grams branch of Johnson &
Zhang's seq2-bown-CNN): hashing a review's distinct n-grams, their weights, and fitting those
weights on the training split. A mixin of `models.networks.SentimentNet`, which owns the
parameters (`ngram_weight`, `ngram_bias`) and adds the branch's score to its logits.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from torch import Tensor, nn

from data.text import NEGATION_WORDS, PAD_ID, Vocabulary

# The n-gram hash: a polynomial hash kept below 2^31, so `running * multiplier + id` fits int64.
_NGRAM_MULTIPLIER = 1_000_003
_NGRAM_MODULUS = 2_147_483_647  # 2^31 - 1, a prime


class NgramBranch:
    """The branch's methods; the network sets `ngram_buckets`, `ngram_order`, `ngram_weight`
    (an `nn.Embedding(ngram_buckets, 1)`, or None without the branch) and `ngram_bias`."""

    ngram_buckets: int
    ngram_order: int
    ngram_weight: nn.Embedding | None
    ngram_bias: nn.Parameter | Tensor | None
    vocab_size: int
    # Tokens after a negation word whose n-grams count as negated ones (0: none); the network sets
    # it and, when it is on, a buffer `negation_ids` (`set_negation_words`).
    ngram_negation_scope: int = 0
    negation_ids: Tensor

    def set_negation_words(self, vocab: Vocabulary) -> None:
        """Look `NEGATION_WORDS` up in the vocabulary the network reads (-1: a word it lacks).
        The ids are a buffer of the state dict, so a logged model carries them."""
        ids = [vocab.id_of(word) if word in vocab else -1 for word in NEGATION_WORDS]
        self.negation_ids.copy_(torch.tensor(ids, dtype=torch.long))

    def negation_marked(self, ids: Tensor) -> Tensor:
        """`ids` with each of the `ngram_negation_scope` tokens after a negation word (not itself
        one) moved to a second id range (id + vocab_size): "not good" then hashes "not", "NOT_good"
        and their pair, so the branch's weight for "good" is the weight of praise, not also of its
        denial. Only earlier tokens decide, so right padding changes nothing."""
        if not self.ngram_negation_scope:
            return ids
        negation = torch.isin(ids, self.negation_ids.to(ids.device))
        scope = torch.zeros_like(negation)
        for step in range(1, min(self.ngram_negation_scope, ids.shape[1] - 1) + 1):
            scope[:, step:] |= negation[:, :-step]
        scope &= (ids != PAD_ID) & ~negation
        return torch.where(scope, ids + self.vocab_size, ids)

    def ngram_ids(self, ids: Tensor) -> Tensor:
        """(B, L, ngram_order) hash buckets of the n-grams starting at each token, n = 1..order.

        0 where an n-gram reaches padding or repeats one seen earlier in the review: the branch
        counts each distinct n-gram once (binary features, as NBSVM). Hashing never overflows: the
        running hash stays below the bucket count times a 20-bit multiplier.
        """
        ids = self.negation_marked(ids)
        length = ids.shape[1]
        padded = nn.functional.pad(ids, (0, self.ngram_order - 1), value=PAD_ID)
        modulus = self.ngram_buckets - 1
        running = torch.zeros_like(ids)
        valid = torch.ones_like(ids, dtype=torch.bool)
        columns = []
        for n in range(self.ngram_order):
            shifted = padded[:, n : n + length]  # token t + n, padding past the end
            valid = valid & (shifted != PAD_ID)
            running = (running * _NGRAM_MULTIPLIER + shifted + n + 1) % _NGRAM_MODULUS
            columns.append((1 + running % modulus).masked_fill(~valid, 0))
        buckets = torch.stack(columns, dim=-1)  # (B, L, order)
        flat = buckets.reshape(len(ids), length * self.ngram_order)
        ordered, order = flat.sort(dim=1, stable=True)  # stable: the first occurrence is kept
        repeat = nn.functional.pad(ordered[:, 1:] == ordered[:, :-1], (1, 0))
        first = torch.empty_like(repeat).scatter_(1, order, repeat)
        return flat.masked_fill(first, 0).reshape(buckets.shape)

    def ngram_scores(self, ids: Tensor) -> Tensor:
        """(B, L) each token's share of the n-gram branch score: its distinct n-grams' weights."""
        assert self.ngram_weight is not None
        return self.ngram_weight(self.ngram_ids(ids)).sum(dim=(2, 3))

    @torch.no_grad()
    def init_ngram_weights(
        self, ids: Tensor, labels: Tensor, alpha: float = 1.0, scale: float = 1.0, chunk: int = 512
    ) -> Tensor:
        """Set the n-gram weights to `scale` x the naive-Bayes log-count ratios of (ids, labels).

        r = log((alpha + p) / |alpha + p|_1) - log((alpha + q) / |alpha + q|_1), p and q the counts
        of reviews containing each bucket among the positive and negative reviews (Wang & Manning
        2012). Returns r; a no-op without the branch. Call it on the training split only.
        """
        if self.ngram_weight is None:
            raise ValueError("this network has no n-gram branch (ngram_buckets=0)")
        device = self.ngram_weight.weight.device
        counts = torch.zeros(2, self.ngram_buckets, dtype=torch.float64, device=device)
        for start in range(0, len(ids), chunk):
            buckets = self.ngram_ids(ids[start : start + chunk].to(device))
            for label in (0, 1):
                present = buckets[labels[start : start + chunk].to(device) == label].flatten()
                counts[label] += torch.bincount(present, minlength=self.ngram_buckets)
        counts[:, 0] = 0.0
        smoothed = counts + alpha
        ratios = (smoothed[1] / smoothed[1].sum()).log() - (smoothed[0] / smoothed[0].sum()).log()
        ratios[0] = 0.0
        self.ngram_weight.weight.copy_((scale * ratios).unsqueeze(1).to(self.ngram_weight.weight))
        return ratios.float()

    def ngram_features(self, ids: Tensor, chunk: int = 1000) -> sparse.csr_matrix:
        """(N, ngram_buckets) sparse float64 matrix: 1 where a review has the bucket's n-gram."""
        rows, columns = [], []
        for start in range(0, len(ids), chunk):
            buckets = self.ngram_ids(ids[start : start + chunk]).flatten(1)
            row, position = buckets.nonzero(as_tuple=True)
            rows.append((row + start).numpy())
            columns.append(buckets[row, position].numpy())
        row, column = np.concatenate(rows), np.concatenate(columns)
        values = np.ones(len(row), dtype=np.float64)
        return sparse.csr_matrix((values, (row, column)), shape=(len(ids), self.ngram_buckets))

    @torch.no_grad()
    def set_ngram_weights(self, weight: Tensor, bias: Tensor) -> None:
        """Set the branch to fitted weights (ngram_buckets, 1) and bias, and freeze it."""
        if self.ngram_weight is None or self.ngram_bias is None:
            raise ValueError("this network has no n-gram branch (ngram_buckets=0)")
        self.ngram_weight.weight.copy_(weight.to(self.ngram_weight.weight))
        self.ngram_bias.copy_(bias.to(self.ngram_bias))
        self.ngram_weight.weight.requires_grad_(False)
        self.ngram_bias.requires_grad_(False)

    def fit_ngram_weights(
        self, ids: Tensor, labels: Tensor, c: float = 0.1, scale: float = 1.0
    ) -> dict[str, float]:
        """Fit the n-gram branch on (ids, labels), the training split, and freeze it (NBSVM).

        The features are the naive-Bayes log-count ratios r of the review's distinct n-grams
        (`init_ngram_weights`); an L2 logistic regression on them (liblinear, C = `c`, solved to
        convergence) gives v and a bias b; each bucket's weight is `scale` x r x v and the
        branch's bias `scale` x b, `scale` weighing the branch against the rest of the network,
        which trains alone and ends more confident. Returns the fit's training loss and accuracy
        (at scale 1).
        """
        if self.ngram_weight is None or self.ngram_bias is None:
            raise ValueError("this network has no n-gram branch (ngram_buckets=0)")
        if not c > 0 or not scale > 0:
            raise ValueError(f"c and scale must be positive, got {c!r} and {scale!r}")
        if self.ngram_negation_scope and bool((self.negation_ids < 0).all()):
            raise ValueError(
                "ngram_negation_scope is on but no negation word is known: call "
                f"set_negation_words(vocab) first (or the vocabulary has none of {NEGATION_WORDS})"
            )
        ids, labels = ids.cpu(), labels.cpu()
        ratios = self.init_ngram_weights(ids, labels).double().numpy()
        features = self.ngram_features(ids).multiply(ratios).tocsr()
        target = labels.numpy()
        # liblinear, not an iterative solver with an iteration cap: on 25k reviews x 4M buckets it
        # converges in seconds, where L-BFGS stopped short of the optimum at 1-3 grams.
        model = LogisticRegression(C=c, solver="liblinear", max_iter=1000).fit(features, target)
        v = torch.from_numpy(model.coef_[0])
        b = torch.tensor(float(model.intercept_[0]), dtype=torch.float64)
        self.set_ngram_weights((scale * torch.from_numpy(ratios) * v).unsqueeze(1), scale * b)
        fitted = torch.from_numpy(model.decision_function(features))
        target_t = torch.from_numpy(target).double()
        return {
            "ngram_train_loss": float(
                nn.functional.binary_cross_entropy_with_logits(fitted, target_t)
            ),
            "ngram_train_acc": float(((fitted > 0).double() == target_t).double().mean()),
        }
