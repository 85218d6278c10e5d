"""Benchmark the training stack on IMDB: Lightning + MLflow against a plain PyTorch loop and TF-IDF.

For each architecture (with its preset), `models.train.train` is timed end to end (fit wall time
/ epochs, MLflow logging included), then a plain PyTorch loop trains the same network, from the
same seed, on the same batches (the same data module), with the same optimizer, for the same
number of epochs, validation included. The ratio of the two is the framework overhead (target:
<= 1.15). A TF-IDF (1-2 grams) + logistic regression baseline is trained on the same split.
With `--repeats N` both loops run N times, alternating, and the table reports the median seconds
per epoch (one timing of a short run varies by more than 15% on a small shared machine).

    IMDB_ARCHIVE=../shared/data/aclImdb_v1.tar.gz \
        .venv/bin/python benchmarks/train_benchmark.py --archs dense cnn --preset tuned
    .venv/bin/python benchmarks/train_benchmark.py --archs cnn --repeats 3     # steadier timings
    .venv/bin/python benchmarks/train_benchmark.py --limit 2000 --epochs 1   # a quick check

Review text never enters the repository: parsed and prepared data are cached outside it (in the
temporary folder, unless IMDB_SENTIMENT_CACHE_DIR says otherwise). Runs are tracked in the
experiment `imdb-sentiment-benchmark` (not the pipeline's), and never registered.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from torch import nn
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.context_checks import context_figures, logged_points  # noqa: E402
from config import PROJECT_ROOT, get_settings  # noqa: E402
from data.prepare import PreparedData, prepare_dataset  # noqa: E402
from data.text import standardize  # noqa: E402
from models.datamodule import IMDBDataModule  # noqa: E402
from models.module import adamw  # noqa: E402
from models.networks import build_net  # noqa: E402
from models.presets import ARCHS, BATCHINGS, DEFAULT_PRESET, PRESETS, Preset, get_preset  # noqa: E402
from models.train import init_ngram_branch, train  # noqa: E402

MAX_OVERHEAD = 1.15
DEFAULT_ARCHIVE = PROJECT_ROOT.parent / "shared" / "data" / "aclImdb_v1.tar.gz"


@dataclass
class Row:
    model: str
    epochs: int | None
    test_acc: float
    test_loss: float | None
    seconds_per_epoch: float | None
    plain_seconds_per_epoch: float | None = None
    plain_test_acc: float | None = None
    seconds: float | None = None  # total training time (the baseline)
    seed: int | None = None
    logged_points: int | None = None  # per-batch train_loss points in MLflow
    branch_seconds: float | None = None  # fitting the n-gram branch, before the epochs

    @property
    def overhead(self) -> float | None:
        if self.seconds_per_epoch is None or not self.plain_seconds_per_epoch:
            return None
        return self.seconds_per_epoch / self.plain_seconds_per_epoch


@torch.inference_mode()
def evaluate(net: nn.Module, loader: DataLoader) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over a whole loader."""
    net.eval()
    loss, correct, count = 0.0, 0, 0
    for ids, labels in loader:
        logits = net(ids)
        loss += F.cross_entropy(logits, labels, reduction="sum").item()
        correct += (logits.argmax(dim=-1) == labels).sum().item()
        count += len(labels)
    return loss / count, correct / count


def plain_pytorch(
    arch: str, preset: Preset, prepared_dir: Path, epochs: int, seed: int
) -> tuple[float, float]:
    """Seconds per epoch (train + validation) and test accuracy of a hand-written loop."""
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)  # as the Trainer's setting
    data = IMDBDataModule(prepared_dir, preset.batch_size, seed=seed, batching=preset.batching)
    data.setup()
    net = build_net(arch, preset.vocab_size, **preset.net_kwargs())
    init_ngram_branch(net, preset, data)  # as `train` does: naive-Bayes ratios of the train split
    optimizer = adamw(net, preset.learning_rate, preset.weight_decay)  # the module's optimizer
    train_loader, val_loader = data.train_dataloader(), data.val_dataloader()
    total = max(1, epochs * len(train_loader))
    decay = 0.0 if preset.lr_schedule == "constant" else 1.0  # as SentimentClassifier does
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: max(0.0, 1.0 - decay * step / total)
    )
    start = time.perf_counter()
    for _ in range(epochs):
        net.train()
        for ids, labels in train_loader:
            optimizer.zero_grad()
            F.cross_entropy(net(ids), labels).backward()
            optimizer.step()
            schedule.step()
        evaluate(net, val_loader)
    seconds = (time.perf_counter() - start) / epochs
    _, test_acc = evaluate(net, data.test_dataloader())
    return seconds, test_acc


def tfidf_baseline(prepared_dir: Path) -> Row:
    """TF-IDF of 1-2 grams (project standardisation) + logistic regression, trained on train."""
    data = PreparedData.load(prepared_dir)
    train_frame, _ = data.split("train")
    test_frame, _ = data.split("test")
    start = time.perf_counter()
    vectorizer = TfidfVectorizer(
        preprocessor=standardize, ngram_range=(1, 2), min_df=2, sublinear_tf=True
    )
    features = vectorizer.fit_transform(train_frame["text"])
    classifier = LogisticRegression(C=4.0, max_iter=1000, solver="liblinear")
    classifier.fit(features, train_frame["label"])
    predictions = classifier.predict(vectorizer.transform(test_frame["text"]))
    seconds = time.perf_counter() - start
    accuracy = float(np.mean(predictions == test_frame["label"].to_numpy()))
    return Row("tfidf-1-2gram+logreg", None, accuracy, None, None, seconds=seconds)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(rows: list[Row]) -> str:
    header = (
        f"{'model':<22}{'epochs':>7}{'test_acc':>10}{'test_loss':>11}"
        f"{'PL+MLflow s/ep':>16}{'plain s/ep':>12}{'ratio':>8}{'plain acc':>11}{'total s':>10}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row.model:<22}{_fmt(row.epochs, 'd'):>7}{row.test_acc:>10.4f}{_fmt(row.test_loss, '.4f'):>11}"
            f"{_fmt(row.seconds_per_epoch, '.2f'):>16}{_fmt(row.plain_seconds_per_epoch, '.2f'):>12}"
            f"{_fmt(row.overhead, '.3f'):>8}{_fmt(row.plain_test_acc, '.4f'):>11}"
            f"{_fmt(row.seconds, '.1f'):>10}"
        )
    return "\n".join(lines)


def run_arch(
    arch: str,
    preset: Preset,
    args: argparse.Namespace,
    prepared_dir: Path,
    overrides: dict,
    seed: int,
) -> tuple[Row, str]:
    """Train `arch` (Lightning + MLflow, and the plain loop unless --no-plain) with `seed`; its
    row and the logged model's URI."""
    lightning_seconds, plain_seconds = [], []
    plain_acc = None
    for _ in range(args.repeats):
        result = train(
            arch,
            prepared_dir,
            preset=args.preset,
            overrides=overrides,
            seed=seed,
            register=False,
            run_name=f"benchmark-{arch}-{args.preset}-seed{seed}",
            extra_tags={"benchmark": "train_benchmark"},
            extra_params={"limit": args.limit},
        )
        epochs = result.epochs_trained  # early stopping may end sooner: compare like for like
        lightning_seconds.append(result.train_seconds / epochs)
        if not args.no_plain:
            seconds, plain_acc = plain_pytorch(arch, preset, prepared_dir, epochs, seed)
            plain_seconds.append(seconds)
    if args.repeats > 1:
        print(f"{arch} s/epoch, Lightning + MLflow: {lightning_seconds}; plain: {plain_seconds}")
    row = Row(
        model=f"{arch} ({args.preset})",
        epochs=epochs,
        test_acc=result.metrics["test_acc"],
        test_loss=result.metrics["test_loss"],
        seconds_per_epoch=statistics.median(lightning_seconds),
        plain_seconds_per_epoch=statistics.median(plain_seconds) if plain_seconds else None,
        plain_test_acc=plain_acc,
        seconds=result.train_seconds,
        seed=seed,
        logged_points=logged_points(result.run_id),
        branch_seconds=result.metrics.get("ngram_fit_seconds"),
    )
    print(json.dumps(asdict(row)), flush=True)
    return row, result.model_uri


def _spread(values: list[float]) -> str:
    return (
        f"{statistics.mean(values):.4f} (min {min(values):.4f}, max {max(values):.4f}, "
        f"sd {statistics.stdev(values):.4f})"
    )


def seed_summary(rows: list[Row], context: list[dict[str, float]]) -> str:
    """Mean and spread over the seeds of each model's test accuracy, and of the context figures."""
    lines = []
    for model in dict.fromkeys(r.model for r in rows if r.seed is not None):
        mine = [r for r in rows if r.model == model]
        lines.append(
            f"{model}: test acc {_spread([r.test_acc for r in mine])}; s/epoch "
            f"{statistics.mean(r.seconds_per_epoch or 0.0 for r in mine):.1f}; epochs "
            f"{[r.epochs for r in mine]}; fit s {[round(r.seconds or 0.0) for r in mine]}; "
            f"branch fit s {[round(r.branch_seconds or 0.0) for r in mine]}; logged points "
            f"{[r.logged_points for r in mine]}"
        )
    by_seed = {r.seed: {} for r in rows}
    for r in rows:
        by_seed[r.seed][r.model.split()[0]] = r.test_acc
    wins = [v["cnn"] > v["dense"] for v in by_seed.values() if {"cnn", "dense"} <= set(v)]
    if wins:
        lines.append(f"CNN above dense on {sum(wins)} of {len(wins)} seeds")
    if len(context) > 1:
        for key in [k for k in context[0] if k != "seed"]:
            lines.append(f"{key}: {_spread([c[key] for c in context])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", nargs="+", choices=ARCHS, default=list(ARCHS))
    parser.add_argument("--preset", choices=PRESETS, default=DEFAULT_PRESET)
    parser.add_argument("--epochs", type=int, help="override the presets' epochs")
    parser.add_argument(
        "--batching", choices=BATCHINGS, help="override the presets' training batches"
    )
    parser.add_argument("--limit", type=int, help="reviews per split (class-balanced)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        help="train every model once per seed (overrides --seed) and report the mean and spread; "
        "the data split stays that of --seed",
    )
    parser.add_argument(
        "--no-plain", action="store_true", help="skip the plain PyTorch loop (no overhead ratio)"
    )
    parser.add_argument(
        "--context",
        action="store_true",
        help="with dense and cnn: behavioural pass rates and the CNN's loss on the dense model's "
        "50 highest-loss test reviews, per seed",
    )
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument(
        "--archive", type=Path, help="default: $IMDB_ARCHIVE, else " + str(DEFAULT_ARCHIVE)
    )
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="time each loop this many times, alternating, and report the medians (one epoch's "
        "time varies by more than 15%% from run to run on a small shared machine)",
    )
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")

    os.environ.setdefault("IMDB_SENTIMENT_EXPERIMENT", "imdb-sentiment-benchmark")
    os.environ.setdefault(
        "IMDB_SENTIMENT_CACHE_DIR", str(Path(tempfile.gettempdir()) / "imdb-sentiment-cache")
    )
    get_settings.cache_clear()
    archive = args.archive or get_settings().imdb_archive or DEFAULT_ARCHIVE
    overrides: dict[str, object] = {"epochs": args.epochs} if args.epochs else {}
    if args.batching:
        overrides["batching"] = args.batching
    presets = {arch: get_preset(arch, args.preset, **overrides) for arch in args.archs}
    encoding = presets[args.archs[0]]  # vocab_size/max_len are shared within a preset
    prepared_dir = prepare_dataset(
        "imdb",
        archive,
        vocab_size=encoding.vocab_size,
        max_len=encoding.max_len,
        limit=args.limit,
        seed=args.seed,
    )

    if args.threads:
        torch.set_num_threads(args.threads)
    seeds = args.seeds or [args.seed]
    rows: list[Row] = []
    context: list[dict[str, float]] = []
    for seed in seeds:
        uris: dict[str, str] = {}
        for arch, preset in presets.items():
            row, uris[arch] = run_arch(arch, preset, args, prepared_dir, overrides, seed)
            rows.append(row)
        if args.context and {"dense", "cnn"} <= set(uris):
            figures = {"seed": seed, **context_figures(uris["dense"], uris["cnn"], prepared_dir)}
            print(json.dumps(figures), flush=True)
            context.append(figures)
    rows.append(tfidf_baseline(prepared_dir))

    print()
    print(table(rows))
    if len(seeds) > 1:
        print()
        print(seed_summary(rows, context))
    over = [r.model for r in rows if r.overhead is not None and r.overhead > MAX_OVERHEAD]
    if over:
        print(f"\nLightning + MLflow overhead above {MAX_OVERHEAD}x for: {', '.join(over)}")
    if args.json:
        payload = {
            "rows": [{**asdict(r), "overhead": r.overhead} for r in rows],
            "context": context,
        }
        args.json.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return rows


if __name__ == "__main__":
    main()
