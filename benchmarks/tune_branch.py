"""Choose the n-gram branch's settings by cross-validation on the 25,000 labelled training reviews.

The 2,500-review validation split tells branch settings apart only to about +-0.006; five folds
over all training reviews (grouped by movie, as the validation split is) narrow that to the
fourth decimal, and the test split is never read. Each configuration is fitted with the
pipeline's own code (`NgramBranch.fit_ngram_weights`) on four folds and scored on the fifth;
the script prints out-of-fold accuracy, log-loss and the mean fit time.

    .venv/bin/python -m benchmarks.tune_branch 20000:800:0.1:2:20 20000:800:0.1:3:22

A configuration is vocab:max_len:C:order:log2(buckets)[:negation scope], the scope 0 unless
given. Encoded arrays are cached under --cache (outside the repository), shared with
`benchmarks.tune_networks`.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import GroupKFold

from benchmarks.tune_networks import branch_scores, encoded, load_tokens, training_vocabulary
from models.networks import build_net


@dataclass(frozen=True)
class BranchConfig:
    vocab: int
    max_len: int
    c: float
    order: int
    log2_buckets: int
    negation_scope: int = 0

    @classmethod
    def parse(cls, text: str) -> BranchConfig:
        vocab, max_len, c, order, log2_buckets, *scope = text.split(":")
        negation = int(scope[0]) if scope else 0
        return cls(int(vocab), int(max_len), float(c), int(order), int(log2_buckets), negation)


@dataclass(frozen=True)
class BranchScore:
    config: BranchConfig
    folds: int
    accuracy: float
    log_loss: float
    fold_accuracies: list[float]
    fit_seconds: float


def cross_validate(config: BranchConfig, cache: Path, folds: int) -> BranchScore:
    """Out-of-fold branch logits of every training review (validation split included)."""
    ids_all, split, label = encoded(cache, config.vocab, config.max_len)
    # The vocabulary `encoded` used: where the negation words are, for the negation scope.
    vocab = training_vocabulary(cache, config.vocab) if config.negation_scope else None
    rows = np.flatnonzero(split != "test")
    movies = load_tokens(cache)["movie"][rows]
    ids, labels = torch.from_numpy(ids_all[rows]).long(), torch.from_numpy(label[rows]).long()
    oof = torch.zeros(len(rows), dtype=torch.float64)
    accuracies, seconds = [], []
    for fit_rows, held_rows in GroupKFold(folds).split(rows, groups=movies):
        net = build_net(
            "dense", config.vocab, embedding_dim=1, hidden_dim=1,
            ngram_buckets=2**config.log2_buckets, ngram_order=config.order,
            ngram_negation_scope=config.negation_scope,
        )  # fmt: skip
        if vocab is not None:
            net.set_negation_words(vocab)
        start = time.perf_counter()
        net.fit_ngram_weights(ids[fit_rows], labels[fit_rows], c=config.c)
        seconds.append(time.perf_counter() - start)
        oof[held_rows] = branch_scores(net, ids[held_rows]).double()
        held = labels[held_rows]
        accuracies.append(float(((oof[held_rows] > 0).long() == held).double().mean()))
        print(f"  fold {len(accuracies)}: {accuracies[-1]:.4f} ({seconds[-1]:.0f} s)", flush=True)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(oof, labels.double())
    return BranchScore(
        config=config,
        folds=folds,
        accuracy=float(((oof > 0).long() == labels).double().mean()),
        log_loss=float(loss),
        fold_accuracies=accuracies,
        fit_seconds=float(np.mean(seconds)),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+", type=BranchConfig.parse)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/tune"))
    parser.add_argument("--log", type=Path, default=Path("/tmp/tune/branch_cv.jsonl"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.cache.mkdir(parents=True, exist_ok=True)
    for config in args.configs:
        print(config, flush=True)
        score = cross_validate(config, args.cache, args.folds)
        print(
            f"{config}: out-of-fold accuracy {score.accuracy:.4f}, log-loss {score.log_loss:.4f}, "
            f"fit {score.fit_seconds:.0f} s",
            flush=True,
        )
        with args.log.open("a") as log:
            log.write(json.dumps(asdict(score)) + "\n")


if __name__ == "__main__":
    main()
