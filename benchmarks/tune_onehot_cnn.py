"""Tuning experiment (not part of the pipeline): a CNN whose first convolution reads one-hot words.

Johnson & Zhang's seq-CNN has no embedding bottleneck: its first layer convolves one-hot word
vectors, `maps` feature maps over `kernel` words. That is computed here as such a convolution is:
each word looks up its `kernel` slices of `maps` weights (a vocab x kernel * maps table) and the
slices are summed with shifts. Then ReLU, optionally `--extra` Conv1d blocks (with biases, no
BatchNorm, so nothing depends on padding and batches of similar length train the same network),
masked pooling, dropout and a linear head. The table trains with SparseAdam at its own learning
rate, the rest with AdamW; both decay linearly to 0.

It validates on fold K of 5 over all training reviews, grouped by movie, as `tune_networks.py
--fold K 5` does, and compares against that run's dump (`--reference`): the network's held-out
logit alone and added to the same fold's n-gram branch logit at weights 1, 2, 3. The test split
is never read. One thread; arrays come from tune_networks' cache.

    .venv/bin/python -m benchmarks.tune_networks --arch cnn ... --fold 0 5 --dump /tmp/tune/dumps/cnn_f0.npz
    .venv/bin/python -m benchmarks.tune_onehot_cnn --fold 0 --extra 2 --reference /tmp/tune/dumps/cnn_f0.npz
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from benchmarks.tune_networks import encoded, grouped_fold
from models.datamodule import LengthBuckets
from models.networks import OOV_ID, PAD_ID, masked_pool
from models.scores import LengthOrder, cut_to_widest, real_widths


class OneHotCNN(nn.Module):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__()
        self.kernel, self.maps, self.word_dropout = args.kernel, args.maps, args.word_dropout
        self.table = nn.Embedding(args.vocab, args.kernel * args.maps, PAD_ID, sparse=True)
        nn.init.uniform_(self.table.weight, -args.init, args.init)
        with torch.no_grad():
            self.table.weight[PAD_ID].zero_()
        self.bias = nn.Parameter(torch.zeros(args.maps))
        widths = [args.maps] + [args.extra_width] * args.extra
        self.convs = nn.ModuleList(
            nn.Conv1d(w_in, w_out, 3, padding="same")
            for w_in, w_out in zip(widths[:-1], widths[1:], strict=True)
        )
        self.pooling = args.pooling
        self.dropout = nn.Dropout(args.dropout)
        self.head = nn.Linear(widths[-1] * (2 if args.pooling == "meanmax" else 1), 2)

    def forward(self, ids: Tensor) -> Tensor:
        mask = ids != PAD_ID
        if self.training and self.word_dropout:
            ids = ids.masked_fill((torch.rand(ids.shape) < self.word_dropout) & mask, OOV_ID)
        batch, length = ids.shape
        slices = self.table(ids).view(batch, length, self.kernel, self.maps)
        x = self.bias.expand(batch, length, self.maps)
        for j in range(self.kernel):  # position t reads slice j of the word at t + j - kernel // 2
            offset, part = j - self.kernel // 2, slices[:, :, j]
            if offset > 0:
                part = nn.functional.pad(part[:, offset:], (0, 0, 0, offset))
            elif offset < 0:
                part = nn.functional.pad(part[:, :offset], (0, 0, -offset, 0))
            x = x + part
        x = (torch.relu(x) * mask.unsqueeze(-1)).transpose(1, 2)
        for conv in self.convs:
            x = torch.relu(conv(x)) * mask.unsqueeze(1)
        return self.head(self.dropout(masked_pool(x.transpose(1, 2), mask, self.pooling)))


WEIGHTS = (1, 2, 3)  # the n-gram branch's weights the network's logit is scored with


def accuracy(margin: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean((margin > 0) == (labels == 1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=int, default=256)
    parser.add_argument("--kernel", type=int, default=3)
    parser.add_argument("--extra", type=int, default=0, help="Conv1d blocks after the first")
    parser.add_argument("--extra-width", type=int, default=64)
    parser.add_argument("--pooling", choices=("mean", "max", "meanmax"), default="mean")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=2e-3, help="AdamW, all but the table")
    parser.add_argument("--table-lr", type=float, default=1e-2, help="SparseAdam, the table")
    parser.add_argument("--dropout", type=float, default=0.5)
    parser.add_argument("--word-dropout", type=float, default=0.0)
    parser.add_argument("--init", type=float, default=0.01, help="uniform half-width, the table")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--vocab", type=int, default=20_000)
    parser.add_argument("--max-len", type=int, default=800)
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--reference", type=Path, required=True, help="tune_networks --dump")
    parser.add_argument("--dump", type=Path, help="save this network's held-out logits here")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/tune/grouped-val0.1"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)

    ids, split, label = encoded(args.cache, args.vocab, args.max_len)
    split = grouped_fold(args.cache, split, args.fold, 5)
    train_ids, train_labels = torch.from_numpy(ids[split == "train"]), label[split == "train"]
    val_ids, val_labels = ids[split == "val"], label[split == "val"]
    reference = np.load(args.reference)
    if not np.array_equal(reference["label"], val_labels):
        raise SystemExit(f"{args.reference} holds another fold's reviews")
    baseline = {"reference_net": accuracy(reference["conv"], val_labels)} | {
        f"reference_w{w}": accuracy(reference["conv"] + w * reference["branch"], val_labels)
        for w in WEIGHTS
    }

    net = OneHotCNN(args)
    rest = [p for name, p in net.named_parameters() if not name.startswith("table")]
    optimizers = {
        torch.optim.AdamW(rest, lr=args.lr, weight_decay=0.01): args.lr,
        torch.optim.SparseAdam([net.table.weight], lr=args.table_lr): args.table_lr,
    }
    widths = torch.from_numpy(real_widths(train_ids.numpy()))
    targets = torch.from_numpy(train_labels).long()
    total, step = args.epochs * -(-len(train_ids) // args.batch), 0
    for epoch in range(1, args.epochs + 1):
        net.train()
        buckets = LengthBuckets(widths, args.batch, args.seed, 50)
        buckets.set_epoch(epoch)
        start = time.perf_counter()
        for batch in map(torch.tensor, buckets):
            for optimizer, peak in optimizers.items():
                optimizer.param_groups[0]["lr"] = peak * max(0.0, 1 - step / total)
                optimizer.zero_grad()
            logits = net(cut_to_widest(train_ids[batch], widths[batch]))
            nn.functional.cross_entropy(logits, targets[batch]).backward()
            for optimizer in optimizers:
                optimizer.step()
            step += 1
        seconds = time.perf_counter() - start
        net.eval()
        with torch.no_grad():
            order = LengthOrder(val_ids, 500)
            logits = order.restore([net(torch.as_tensor(b)).numpy() for b in order])
        margin = logits[:, 1] - logits[:, 0]
        row = {"epoch": epoch, "seconds": round(seconds), "net": accuracy(margin, val_labels)}
        for weight in WEIGHTS:
            row[f"branch_w{weight}"] = accuracy(margin + weight * reference["branch"], val_labels)
        print(json.dumps({**row, **baseline}), flush=True)
    if args.dump:
        np.savez(args.dump, conv=margin, branch=reference["branch"], label=val_labels)


if __name__ == "__main__":
    main()
