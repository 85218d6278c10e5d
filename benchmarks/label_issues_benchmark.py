"""What the `drop_label_issues` option buys: plant label flips, find them, train with and without.

The synthetic corpus has no label noise of its own, so a share of its training labels is flipped
(seeded; the test labels stay right). The training split's out-of-sample probabilities
(`analysis.errors.label_issues.cross_validated_probs`, folds grouped by movie) go through
cleanlab; the flags are scored against the planted flips (precision, recall, estimate), and each
architecture is trained on the noisy split and on the split without the flagged reviews
(`data.clean.drop_train_reviews`, what the flow option does), and, for reference, on the split
without exactly the planted flips (what a perfect detector would drop). Test accuracy and loss.

    .venv/bin/python benchmarks/label_issues_benchmark.py --flip 0.1 --seeds 1 2
    .venv/bin/python benchmarks/label_issues_benchmark.py --dataset imdb --flip 0   # IMDB as is

Runs are tracked in the experiment `imdb-sentiment-benchmark` (not the pipeline's), never
registered; the data lives in the data cache.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("IMDB_SENTIMENT_EXPERIMENT", "imdb-sentiment-benchmark")

from analysis.errors.label_issues import cross_validated_probs, flag_label_issues  # noqa: E402
from config import get_settings  # noqa: E402
from data.clean import drop_train_reviews  # noqa: E402
from data.prepare import PreparedData, load_reviews, movie_groups, prepare  # noqa: E402
from models.presets import ARCHS, DEFAULT_PRESET, get_preset  # noqa: E402
from models.train import train  # noqa: E402


def planted_data(dataset: str, flip: float, seed: int, preset: str) -> tuple[Path, set[str]]:
    """The prepared data with `flip` of the training labels flipped; the flipped ids."""
    frame, source_hash = load_reviews(dataset, seed=42)  # type: ignore[arg-type]
    train_rows = np.flatnonzero((frame["split"] == "train").to_numpy())
    rows = np.random.default_rng(seed).choice(
        train_rows, int(round(flip * len(train_rows))), replace=False
    )
    frame = frame.copy()
    frame.loc[rows, "label"] = 1 - frame.loc[rows, "label"]
    spec = get_preset(ARCHS[0], preset)  # type: ignore[arg-type]
    data = prepare(
        frame,
        f"{source_hash}-flip{flip}-seed{seed}",
        dataset=dataset,  # type: ignore[arg-type]
        vocab_size=spec.vocab_size,
        max_len=spec.max_len,
    )
    folder = get_settings().data_cache_dir / "benchmark" / f"{dataset}-flip{flip}-seed{seed}"
    if not (folder / "meta.json").exists():
        data.save(folder)
    return folder, set(frame.loc[rows, "review_id"].astype(str))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="synthetic", choices=["synthetic", "imdb"])
    parser.add_argument("--flip", type=float, default=0.1, help="share of training labels flipped")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1], help="training seeds")
    parser.add_argument("--archs", nargs="+", default=list(ARCHS))
    parser.add_argument("--preset", default=DEFAULT_PRESET)
    parser.add_argument("--epochs", type=int, default=None, help="instead of the preset's")
    args = parser.parse_args(argv)

    folder, planted = planted_data(args.dataset, args.flip, 0, args.preset)
    data = PreparedData.load(folder)
    train_split, _ = data.split("train")
    planted &= set(train_split["review_id"])  # the validation split took some
    probs = cross_validated_probs(train_split, movie_groups(train_split).to_numpy())
    flags = flag_label_issues(probs["label"].to_numpy(), probs["prob_positive"].to_numpy())
    found = set(probs.loc[flags.flagged, "review_id"])
    hits = len(found & planted)
    print(
        f"{len(train_split):,} training reviews, {len(planted):,} flipped; cleanlab estimate "
        f"{flags.estimate:,}, flagged {len(found):,}: precision "
        f"{hits / max(1, len(found)):.3f}, recall {hits / max(1, len(planted)):.3f}"
    )
    cleaned = drop_train_reviews(folder, found)
    print(f"cleaned data version: {PreparedData.load(cleaned).data_version}")
    conditions = {"as is": folder, "flagged dropped": cleaned}
    if planted:
        conditions["planted dropped"] = drop_train_reviews(folder, planted)
    overrides = {"epochs": args.epochs} if args.epochs else None
    print("| arch | seed | training data | train reviews | test_acc | test_loss |")
    print("|---|---|---|---:|---:|---:|")
    for arch in args.archs:
        for seed in args.seeds:
            for name, prepared in conditions.items():
                result = train(
                    arch,
                    prepared,
                    preset=args.preset,
                    overrides=overrides,
                    seed=seed,
                    register=False,
                )
                n_train = len(PreparedData.load(prepared).split("train")[0])
                metrics = result.metrics
                print(
                    f"| {arch} | {seed} | {name} | {n_train:,} | {metrics['test_acc']:.4f} | "
                    f"{metrics['test_loss']:.4f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
