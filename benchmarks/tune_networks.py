"""Throwaway tuning harness for the network presets (not part of the pipeline).

Encodes the real IMDB archive with the project's data layer (10% val split from train, grouped
by movie, seed 42), trains one configuration with AdamW, keeps the epoch with the lowest
validation loss and reports its val/test accuracy and the seconds per epoch. Runs on one thread on
purpose: the machine is shared. Encoded arrays are cached under --cache, one folder per split
(outside the repo: review text never enters the repository).

    .venv/bin/python benchmarks/tune_networks.py --arch cnn --vocab 20000 --max-len 800 \
        --embedding 32 --channels 64 64 64 --pooling meanmax --dropout 0.5 --batch 64 --wd 1e-2 --epochs 4
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.behaviour.components import run_component_suite  # noqa: E402
from data.imdb import read_imdb  # noqa: E402
from data.prepare import assign_validation  # noqa: E402
from data.text import Vocabulary, tokenize  # noqa: E402
from models import networks  # noqa: E402
from models.datamodule import LengthBuckets  # noqa: E402
from models.networks import CONV_EDGES, OOV_ID, PAD_ID, build_net  # noqa: E402
from models.pyfunc import predict_logit_parts  # noqa: E402
from models.scores import LengthOrder, cut_to_widest, real_widths  # noqa: E402

ARCHIVE = Path("/work/shared/data/aclImdb_v1.tar.gz")


def load_tokens(cache: Path, val_fraction: float = 0.1) -> dict:
    path = cache / "tokens.pkl"
    if not path.exists():
        frame = assign_validation(read_imdb(ARCHIVE).reset_index(drop=True), val_fraction, 42)
        payload = {
            "split": frame["split"].to_numpy(),
            "label": frame["label"].to_numpy(),
            "movie": frame["movie"].to_numpy(),
            "tokens": [tokenize(text) for text in frame["text"]],
        }
        path.write_bytes(pickle.dumps(payload))
    return pickle.loads(path.read_bytes())


def training_tokens(data: dict) -> list[list[str]]:
    """The token lists of the training split (validation and test left out) of `load_tokens`."""
    return [t for t, s in zip(data["tokens"], data["split"], strict=True) if s == "train"]


def training_vocabulary(cache: Path, vocab_size: int, val_fraction: float = 0.1) -> Vocabulary:
    """The vocabulary `encoded` builds (training split only, every word counted)."""
    return Vocabulary.build(training_tokens(load_tokens(cache, val_fraction)), vocab_size)


def encoded(
    cache: Path, vocab_size: int, max_len: int, val_fraction: float = 0.1, min_movies: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    suffix = f"_m{min_movies}" if min_movies > 1 else ""
    path = cache / f"enc_{vocab_size}_{max_len}{suffix}.npz"
    if not path.exists():
        data = load_tokens(cache, val_fraction)
        is_train = data["split"] == "train"
        train = training_tokens(data)
        if min_movies > 1:  # keep only words used in reviews of at least `min_movies` movies
            seen: dict[str, set] = {}
            for tokens, movie in zip(train, data["movie"][is_train], strict=True):
                for token in set(tokens):
                    seen.setdefault(token, set()).add(movie)
            train = [[t for t in tokens if len(seen[t]) >= min_movies] for tokens in train]
        vocab = Vocabulary.build(train, vocab_size)
        ids = np.stack([vocab.encode(t, max_len) for t in data["tokens"]])
        np.savez(path, ids=ids, split=data["split"], label=data["label"])
    arrays = np.load(path, allow_pickle=True)
    return arrays["ids"], arrays["split"], arrays["label"]


def teacher_probs(cache: Path, folds: int = 5) -> np.ndarray:
    """Out-of-fold P(positive) of a TF-IDF 1-2 gram + logistic-regression teacher, per review.

    Training reviews get the prediction of a teacher fitted on the other folds (folds grouped by
    movie, so titles and names cannot leak); val/test rows are NaN (never used).
    """
    path = cache / f"teacher_oof{folds}.npy"
    if not path.exists():
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import GroupKFold

        data = load_tokens(cache)
        train_rows = np.flatnonzero(data["split"] == "train")
        docs = [data["tokens"][i] for i in train_rows]
        labels = data["label"][train_rows]
        groups = [
            m if m is not None else f"row{i}"
            for i, m in zip(train_rows, data["movie"][train_rows], strict=True)
        ]
        probs = np.full(len(data["label"]), np.nan)
        for fit_idx, held_idx in GroupKFold(folds).split(docs, labels, groups):
            vectorizer = TfidfVectorizer(
                analyzer=lambda tokens: (
                    tokens + [a + " " + b for a, b in zip(tokens, tokens[1:], strict=False)]
                ),
                min_df=2,
                sublinear_tf=True,
            )
            features = vectorizer.fit_transform([docs[i] for i in fit_idx])
            model = LogisticRegression(C=4.0, max_iter=1000, solver="liblinear")
            model.fit(features, labels[fit_idx])
            held = vectorizer.transform([docs[i] for i in held_idx])
            probs[train_rows[held_idx]] = model.predict_proba(held)[:, 1]
            print(
                "teacher fold acc",
                np.mean((probs[train_rows[held_idx]] > 0.5) == labels[held_idx]),
                flush=True,
            )
        np.save(path, probs)
    return np.load(path)


def word2vec_matrix(cache: Path, vocab_size: int, dim: int, epochs: int) -> np.ndarray:
    """Skip-gram word2vec trained on the training split's text only; rows follow the project
    vocabulary, unit-normalised; padding is zero, words word2vec lacks are random.

    Needs gensim (`pip install gensim`), which is not a project dependency: it did not help.
    """
    path = cache / f"w2v_{vocab_size}_{dim}_{epochs}.npy"
    if not path.exists():
        from gensim.models import Word2Vec

        data = load_tokens(cache)
        train = training_tokens(data)
        vocab = Vocabulary.build(train, vocab_size)
        start = time.perf_counter()
        model = Word2Vec(
            train,
            vector_size=dim,
            window=5,
            min_count=2,
            sg=1,
            negative=5,
            epochs=epochs,
            workers=1,
            seed=42,
        )
        print(f"word2vec {time.perf_counter() - start:.0f}s", flush=True)
        rng = np.random.default_rng(0)
        matrix = rng.normal(size=(vocab_size, dim)).astype(np.float32)
        for index, token in enumerate(vocab.tokens):
            if token in model.wv:
                matrix[index] = model.wv[token]
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
        matrix[PAD_ID] = 0.0
        np.save(path, matrix)
    return np.load(path)


NORMS = ("batch", "masked", "layer", "none")


def masked_batch_norm(norm: nn.BatchNorm1d, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`norm` on (B, C, L) with batch statistics over the real positions (mask (B, 1, L)) only."""
    if not norm.training:
        return norm(x)
    count = mask.sum().clamp(min=2.0)
    mean = (x * mask).sum(dim=(0, 2)) / count
    var = ((x - mean[:, None]).square() * mask).sum(dim=(0, 2)) / count
    with torch.no_grad():
        norm.running_mean.lerp_(mean, norm.momentum)
        norm.running_var.lerp_(var * count / (count - 1), norm.momentum)
    scale = torch.rsqrt(var + norm.eps) * norm.weight
    return (x - mean[:, None]) * scale[:, None] + norm.bias[:, None]


def swap_norms(net: nn.Module, kind: str) -> None:
    """Give the CNN's conv blocks another normalisation (`NORMS`), in this process only."""
    if kind == "layer":
        net.norms = nn.ModuleList(nn.LayerNorm(w) for w in net.channels)
    elif kind == "none":
        net.norms = nn.ModuleList(nn.Identity() for _ in net.channels)
        for conv in net.convs:
            conv.bias = nn.Parameter(torch.zeros(conv.out_channels))

    def encode_tokens(embedded: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x, channel_mask = embedded.transpose(1, 2), mask.unsqueeze(1)
        for conv, norm in zip(net.convs, net.norms, strict=True):
            x = conv(x)
            if kind == "masked":
                x = masked_batch_norm(norm, x, channel_mask)
            else:
                x = norm(x.transpose(1, 2)).transpose(1, 2)
            x = torch.relu(x) * channel_mask
        return x.transpose(1, 2)

    net.encode_tokens = encode_tokens


def crop_windows(
    ids: torch.Tensor, share: float, shortest: float, longest: float, generator: torch.Generator
) -> torch.Tensor:
    """`ids` (B, L) with each row, with probability `share`, cut to a random window of
    `shortest`..`longest` of its real tokens (fewer if it has fewer), moved to the row's start."""
    widths = (ids != PAD_ID).sum(dim=1)
    rows, length = ids.shape
    chosen = torch.rand(rows, generator=generator) < share
    span = torch.randint(int(shortest), int(longest) + 1, (rows,), generator=generator)
    span = torch.minimum(span, widths).clamp(min=1)
    start = (torch.rand(rows, generator=generator) * (widths - span + 1)).long()
    position = torch.arange(length)
    source = (start[:, None] + position).clamp(max=length - 1)
    cropped = ids.gather(1, source).masked_fill(position >= span[:, None], PAD_ID)
    return torch.where(chosen[:, None], cropped, ids)


def branch_scores(net: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """The fitted n-gram branch's logit (its scale included) per review."""
    with torch.no_grad():
        return torch.cat([net.branch_logit(ids[i : i + 500]) for i in range(0, len(ids), 500)])


def grouped_fold(cache: Path, split: np.ndarray, fold: int, folds: int) -> np.ndarray:
    """`split` with the training reviews (validation included) re-split: fold `fold` of `folds`,
    grouped by movie, becomes "val", the rest "train"; the test split stays as it is."""
    from sklearn.model_selection import GroupKFold

    rows = np.flatnonzero(split != "test")
    movies = load_tokens(cache)["movie"][rows]
    _, held = list(GroupKFold(folds).split(rows, groups=movies))[fold]
    split = split.copy()
    split[rows] = "train"
    split[rows[held]] = "val"
    return split


def oof_branch_scores(cache: Path, args: argparse.Namespace, train: tuple) -> torch.Tensor:
    """Out-of-fold branch logits (scale 1) of the training reviews, folds grouped by movie."""
    path = cache / (
        f"oof_{args.vocab}_{args.max_len}_{args.ngram_buckets}_{args.ngram_order}_"
        f"{args.ngram_c:g}_{args.stack_folds}.npy"
    )
    if not path.exists():
        from sklearn.model_selection import GroupKFold

        data = load_tokens(cache)
        movies = data["movie"][data["split"] == "train"]
        ids, labels = train
        oof = torch.zeros(len(ids))
        folds = GroupKFold(args.stack_folds).split(ids.numpy(), labels.numpy(), movies)
        for fit_rows, held_rows in folds:
            start = time.perf_counter()
            fold_net = build_net(
                "dense", args.vocab, embedding_dim=1, hidden_dim=1,
                ngram_buckets=args.ngram_buckets, ngram_order=args.ngram_order,
            )  # fmt: skip
            fit_rows, held_rows = torch.from_numpy(fit_rows), torch.from_numpy(held_rows)
            fold_net.fit_ngram_weights(ids[fit_rows], labels[fit_rows], c=args.ngram_c)
            oof[held_rows] = branch_scores(fold_net, ids[held_rows]).float()
            acc = ((oof[held_rows] > 0).long() == labels[held_rows]).float().mean().item()
            print(f"oof fold acc {acc:.4f} {time.perf_counter() - start:.0f}s", flush=True)
        np.save(path, oof.numpy())
    return torch.from_numpy(np.load(path))


def behaviour_by_component(
    net: nn.Module, vocab: Vocabulary, max_len: int
) -> dict[str, dict[str, float]]:
    """Pass rate of every behavioural check, and of each kind of contrast case (passed, right way),
    for the network's logit alone, the n-gram branch's alone and their sum
    (`analysis.behaviour.components`): which part of the model a context check's failures come
    from. Scored at temperature 1 (the harness fits none)."""
    net.eval()

    def logit_parts(texts: list[str]) -> np.ndarray:
        return predict_logit_parts(
            net, np.stack([vocab.encode(tokenize(t), max_len) for t in texts])
        )

    out: dict[str, dict[str, float]] = {}
    for part, report in run_component_suite(logit_parts).reports.items():
        for key, rate in (report.pass_rates | report.kind_rates("contrast")).items():
            out.setdefault(key, {})["combined" if part == "model" else part] = round(rate, 3)
    return out


@torch.no_grad()
def evaluate(net: nn.Module, ids: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    net.eval()
    batches = LengthOrder(ids.numpy(), 500)  # batches of similar length, as the pipeline scores
    logits = torch.from_numpy(batches.restore([net(torch.as_tensor(b)).numpy() for b in batches]))
    loss = nn.functional.cross_entropy(logits, labels).item()
    return loss, (logits.argmax(1) == labels).float().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", choices=("dense", "cnn"), required=True)
    parser.add_argument("--vocab", type=int, default=10_000)
    parser.add_argument("--max-len", type=int, default=250)
    parser.add_argument("--embedding", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=28)
    parser.add_argument("--channels", type=int, nargs=3, default=(28, 16, 8))
    parser.add_argument("--kernel", type=int, default=3)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--pooling", default="mean")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--patience", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--wd", type=float, default=0.0)
    # Per-step learning-rate schedule over the planned `--epochs`: "linear" decays lr -> 0 after a
    # linear warm-up over `--warmup` of the steps; "onecycle" is OneCycleLR(max_lr=lr, pct_start).
    parser.add_argument("--schedule", choices=("none", "linear", "onecycle"), default="none")
    parser.add_argument("--warmup", type=float, default=0.0)
    # Word dropout: during training, replace each real token by the out-of-vocabulary id with
    # this probability.
    parser.add_argument("--word-dropout", type=float, default=0.0)
    # Round 13: window crops. In training, each review is replaced with probability P by a random
    # window of MIN..MAX of its tokens (its label kept), so the network also sees short texts.
    parser.add_argument("--crop", type=float, nargs=3, metavar=("P", "MIN", "MAX"))
    # CNN only: dilation of each conv block (experiment: rebuilds the convs after build_net).
    parser.add_argument("--dilations", type=int, nargs=3, default=(1, 1, 1))
    # CNN only: the positions its conv blocks cover (models.networks.ConvEdges; round 10).
    parser.add_argument("--edges", choices=CONV_EDGES, default="same")
    parser.add_argument("--position-gain", type=float, default=networks.POSITION_GAIN)
    # Weight averaging, evaluated beside the raw weights: an exponential moving average of the
    # weights per decay given, and an equal average of every step from the start of --swa-from.
    parser.add_argument("--ema", type=float, nargs="*", default=())
    parser.add_argument("--swa-from", type=int, default=0)
    # Vocabulary only from words found in the reviews of at least this many training movies.
    parser.add_argument("--min-movies", type=int, default=1)
    # Adversarial training (FGM on the embeddings): add the loss at embeddings moved by this L2
    # norm (per review) along the loss gradient.
    parser.add_argument("--adversarial", type=float, default=0.0)
    # Distillation: weight of the cross-entropy to an out-of-fold TF-IDF teacher's probabilities.
    parser.add_argument("--distill", type=float, default=0.0)
    # Initialise the embedding with in-domain skip-gram word2vec (training text only), rows scaled
    # to this L2 norm (0: off); --w2v-epochs passes over the text.
    parser.add_argument("--w2v-norm", type=float, default=0.0)
    parser.add_argument("--w2v-epochs", type=int, default=5)
    # Hashed bigram embeddings added to each token's embedding (0: off).
    parser.add_argument("--bigram-buckets", type=int, default=0)
    # The naive-Bayes n-gram branch: hashed 1..order-gram buckets (0: off). With --ngram-c it is
    # fitted first (NBSVM, liblinear's C) and frozen, and the rest trains alone (the preset's way);
    # without it, its weights start at --nb-scale x the NB log-count ratios and train jointly,
    # their learning rate --ngram-lr x --lr (round 6: worse).
    parser.add_argument("--ngram-buckets", type=int, default=0)
    parser.add_argument("--ngram-order", type=int, default=3)
    parser.add_argument("--ngram-negation-scope", type=int, default=0)
    parser.add_argument("--ngram-c", type=float, default=0.0)
    parser.add_argument("--nb-scale", type=float, default=1.0)
    parser.add_argument("--ngram-lr", type=float, default=1.0)
    parser.add_argument("--ngram-scale", type=float, default=1.0)
    # Stacking (round 7): the network trains with --ngram-scale x the branch's out-of-fold logit
    # (folds grouped by movie) added to its own, so it learns what the branch misses.
    parser.add_argument("--stack-folds", type=int, default=0)
    parser.add_argument(
        "--shuffle", action="store_true", help="plain shuffled batches (rounds 1-6)"
    )
    # Round 7: the CNN's norm. "batch": the network's BatchNorm1d (statistics over every position,
    # padding included); "masked": BatchNorm statistics over real tokens only; "layer": per-token
    # LayerNorm; "none": conv bias, no norm.
    parser.add_argument("--norm", choices=NORMS, default="batch")
    parser.add_argument("--pool-batches", type=int, default=50, help="LengthBuckets' pool size")
    # Save the last epoch's validation margins (logit difference) of the network without its
    # n-gram branch, of the branch alone, and the labels, to this .npz (to weigh the two).
    parser.add_argument("--dump", type=Path)
    # After training: behavioural pass rates of the network alone, the branch alone and the sum.
    parser.add_argument("--behaviour", action="store_true")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--test", action="store_true", help="also score the test split per epoch")
    # Share of the official training reviews held out for validation (the pipeline's default 0.1).
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument(
        "--fold", type=int, nargs=2, metavar=("K", "N"),
        help="validate on fold K of N over all training reviews, grouped by movie (with --dump, "
        "the held-out logits of N runs give branch weights chosen on 25,000 reviews)",
    )  # fmt: skip
    parser.add_argument("--cache", type=Path, default=Path("/tmp/tune"))
    parser.add_argument("--log", type=Path, default=Path("/tmp/tune/results.jsonl"))
    args = parser.parse_args()
    if args.edges == "full" and tuple(args.dilations) != (1, 1, 1):
        parser.error("--edges full covers each block's reach without dilation")
    if args.crop and (args.stack_folds or args.distill):
        parser.error("--crop: the offset and the teacher score the whole review, not its window")
    if args.behaviour and args.min_movies > 1:
        parser.error("--behaviour encodes the checks with the full training vocabulary")
    torch.set_num_threads(1)  # shared 2-core machine
    args.cache.mkdir(parents=True, exist_ok=True)

    # One folder per split: arrays cached before the split was grouped by movie are never reused.
    cache = args.cache / f"grouped-val{args.val_fraction:g}"
    cache.mkdir(parents=True, exist_ok=True)
    ids, split, label = encoded(cache, args.vocab, args.max_len, args.val_fraction, args.min_movies)
    if args.fold:
        split = grouped_fold(cache, split, *args.fold)
    parts = {
        name: (torch.from_numpy(ids[split == name]), torch.from_numpy(label[split == name]))
        for name in ("train", "val", "test")
    }
    torch.manual_seed(args.seed)
    if args.arch == "dense":
        kwargs = {"hidden_dim": args.hidden}
    else:
        kwargs = {"channels": tuple(args.channels), "kernel_size": args.kernel, "edges": args.edges}
    net = build_net(
        args.arch,
        args.vocab,
        embedding_dim=args.embedding,
        dropout=args.dropout,
        pooling=args.pooling,
        bigram_buckets=args.bigram_buckets,
        ngram_buckets=args.ngram_buckets,
        ngram_order=args.ngram_order,
        position_gain=args.position_gain,
        ngram_negation_scope=args.ngram_negation_scope,
        **kwargs,
    )
    # The training vocabulary, built once if the negation scope or --behaviour needs it.
    vocab: Vocabulary | None = None
    if args.ngram_negation_scope:
        vocab = training_vocabulary(cache, args.vocab, args.val_fraction)
        net.set_negation_words(vocab)
    if args.ngram_buckets:
        start = time.perf_counter()
        if args.ngram_c:
            fit = net.fit_ngram_weights(*parts["train"], c=args.ngram_c, scale=args.ngram_scale)
            print("branch fit", fit, end=" ")
        else:
            net.init_ngram_weights(*parts["train"], scale=args.nb_scale)
        print(f"{time.perf_counter() - start:.1f}s", flush=True)
        if args.ngram_c:
            # The branch alone: the rest of the (untrained) network adds a constant.
            print("branch + untrained net, val", evaluate(net, *parts["val"]), flush=True)
    if args.w2v_norm:
        matrix = word2vec_matrix(cache, args.vocab, args.embedding, args.w2v_epochs)
        with torch.no_grad():
            net.embedding.weight.copy_(torch.from_numpy(matrix) * args.w2v_norm)
    if args.arch == "cnn" and args.norm != "batch":
        swap_norms(net, args.norm)
    if args.arch == "cnn" and tuple(args.dilations) != (1, 1, 1):
        for i, (conv, dilation) in enumerate(zip(net.convs, args.dilations, strict=True)):
            net.convs[i] = nn.Conv1d(
                conv.in_channels,
                conv.out_channels,
                conv.kernel_size[0],
                padding="same",
                dilation=dilation,
                bias=False,
            )
    ngram_params = [] if net.ngram_weight is None else [net.ngram_weight.weight, net.ngram_bias]
    other_params = [p for p in net.parameters() if all(p is not q for q in ngram_params)]
    groups = [{"params": other_params}]
    if ngram_params:
        groups.append({"params": ngram_params, "lr": args.lr * args.ngram_lr})
    optimizer = torch.optim.AdamW(groups, lr=args.lr, weight_decay=args.wd)
    train_ids, train_labels = parts["train"]
    train_widths = torch.from_numpy(real_widths(train_ids.numpy()))
    offset = None
    if args.stack_folds:
        offset = args.ngram_scale * oof_branch_scores(cache, args, parts["train"])
    if args.distill:
        teacher = torch.from_numpy(teacher_probs(cache)[split == "train"]).float()
        assert not torch.isnan(teacher).any()
    total_steps = args.epochs * -(-len(train_ids) // args.batch)
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    if args.schedule == "linear":
        warm = max(1, round(args.warmup * total_steps))

        def factor(step: int) -> float:
            if step < warm and args.warmup > 0:
                return (step + 1) / warm
            return max(0.0, (total_steps - step) / max(1, total_steps - warm))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    elif args.schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=args.lr, total_steps=total_steps, pct_start=args.warmup or 0.3
        )
    averages = {
        f"ema{decay:g}": AveragedModel(
            net, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True
        )
        for decay in args.ema
    }
    if args.swa_from:
        averages["swa"] = AveragedModel(net, use_buffers=True)
    best: dict | None = None
    history, epoch_seconds = [], []
    generator = torch.Generator().manual_seed(args.seed)
    for epoch in range(1, args.epochs + 1):
        net.train()
        active = {n: a for n, a in averages.items() if n != "swa" or epoch >= args.swa_from}
        start = time.perf_counter()
        if args.shuffle:  # the order of rounds 1-6: plain shuffled batches padded to max_len
            order = torch.randperm(len(train_ids), generator=generator)
            batches = [
                order[first : first + args.batch] for first in range(0, len(order), args.batch)
            ]
        else:  # the pipeline's: batches of similar length (models.datamodule.LengthBuckets)
            buckets = LengthBuckets(train_widths, args.batch, args.seed, args.pool_batches)
            buckets.set_epoch(epoch)
            batches = [torch.tensor(batch) for batch in buckets]
        for batch in batches:
            optimizer.zero_grad()
            inputs = train_ids[batch]
            if not args.shuffle:
                inputs = cut_to_widest(inputs, train_widths[batch])
            if args.crop:
                inputs = crop_windows(inputs, *args.crop, generator)
                inputs = cut_to_widest(inputs, torch.from_numpy(real_widths(inputs.numpy())))
            if args.word_dropout > 0:
                drop = (torch.rand(inputs.shape, generator=generator) < args.word_dropout) & (
                    inputs != PAD_ID
                )
                inputs = inputs.masked_fill(drop, OOV_ID)
            mask = inputs != PAD_ID
            embedded = net.embed(inputs)
            logits = net.forward_from_embeddings(embedded, mask)
            if offset is not None:
                logits = logits + torch.stack([-offset[batch], offset[batch]], 1) / 2
            loss = nn.functional.cross_entropy(logits, train_labels[batch])
            if args.distill:
                soft = torch.stack([1 - teacher[batch], teacher[batch]], dim=1)
                soft_loss = -(soft * logits.log_softmax(1)).sum(1).mean()
                loss = (1 - args.distill) * loss + args.distill * soft_loss
            if args.adversarial:
                (grad,) = torch.autograd.grad(loss, embedded, retain_graph=True)
                norm = grad.flatten(1).norm(dim=1).clamp(min=1e-12)[:, None, None]
                shifted = embedded + args.adversarial * grad / norm
                adv_logits = net.forward_from_embeddings(shifted, mask)
                loss = loss + nn.functional.cross_entropy(adv_logits, train_labels[batch])
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            for average in active.values():
                average.update_parameters(net)
        epoch_seconds.append(time.perf_counter() - start)
        val_loss, val_acc = evaluate(net, *parts["val"])
        row = {"epoch": epoch, "val_loss": val_loss, "val_acc": val_acc}
        if args.test:  # off by default: tuning reads validation only, the benchmark reads test
            row["test_acc"] = evaluate(net, *parts["test"])[1]
        for name, average in active.items():
            avg_val_loss, avg_val_acc = evaluate(average.module, *parts["val"])
            row[name] = {"val_loss": avg_val_loss, "val_acc": avg_val_acc}
            if args.test:
                row[name]["test_acc"] = evaluate(average.module, *parts["test"])[1]
        history.append(row)
        print(json.dumps(row), f"{epoch_seconds[-1]:.0f}s", flush=True)
        if best is None or val_loss < best["val_loss"]:
            best = row
        elif epoch - best["epoch"] >= args.patience:
            break
    if args.dump:  # the network's and the branch's margins on validation, apart
        val_ids, val_labels = parts["val"]
        margins = predict_logit_parts(net.eval(), val_ids.numpy(), batch_size=500)
        np.savez(args.dump, conv=margins[:, 0], branch=margins[:, 1], label=val_labels.numpy())
    behaviour = None
    if args.behaviour:
        if vocab is None:
            vocab = training_vocabulary(cache, args.vocab, args.val_fraction)
        behaviour = behaviour_by_component(net, vocab, args.max_len)
        print("behaviour", json.dumps(behaviour), flush=True)
    result = {
        "behaviour": behaviour,
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "best": best,
        "epochs_run": len(history),
        "sec_per_epoch": round(float(np.mean(epoch_seconds)), 1),
        "params": sum(p.numel() for p in net.parameters()),
        # What position pooling learned: each relative-position bin's weight, first to last.
        "position_weights": None
        if getattr(net, "position_logits", None) is None
        else [
            round(w, 3)
            for w in networks.bin_weights(net.position_logits.detach(), net.position_gain).tolist()
        ],
        "history": history,
    }
    with args.log.open("a") as out:
        out.write(json.dumps(result) + "\n")
    print("BEST", json.dumps(best), result["sec_per_epoch"], "s/epoch")


if __name__ == "__main__":
    main()
