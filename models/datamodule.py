"""The LightningDataModule over a prepared data folder (see `data.prepare.PreparedData`).

Batches are fetched whole (`__getitems__`): one tensor index per batch instead of one per review
followed by a collate, which keeps the data loading cost of a step negligible. Evaluation batches
are cut to their longest review: in eval mode the networks ignore padding, so this changes no
score, only the work. With `batching="length"` training batches are drawn by length
(`LengthBuckets`) and cut too, so that most of a batch is real tokens (on full IMDB, padded to 800
tokens, 70% of the positions of a shuffled batch are padding). That is exact for the dense model;
the CNN's BatchNorm counts padded positions in its training statistics, so for it this trains a
different network, and its presets keep shuffled, padded batches ("shuffle").
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from pytorch_lightning import LightningDataModule
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from config import check_choice
from data.prepare import PreparedData
from models.presets import Batching
from models.scores import cut_to_widest, real_widths

SPLITS: tuple[str, ...] = ("train", "val", "test")


class EncodedReviews(Dataset):
    """Encoded reviews (N, L) and their labels (N,) as int64 tensors."""

    def __init__(self, ids: np.ndarray, labels: np.ndarray, trim: bool = True) -> None:
        # Copies only arrays torch cannot share (read-only pandas/np.load buffers, other dtypes).
        self.ids = torch.from_numpy(np.require(ids, np.int64, ["C", "W"]))
        self.labels = torch.from_numpy(np.require(labels, np.int64, ["C", "W"]))
        self._widths: Tensor | None = None
        self.trim = trim  # cut each batch to its longest review

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.ids[index], self.labels[index]

    def __getitems__(self, indices: list[int]) -> tuple[Tensor, Tensor]:
        index = torch.as_tensor(indices)
        ids = self.ids[index]
        if self.trim:
            ids = cut_to_widest(ids, self.widths[index])
        return ids, self.labels[index]

    @property
    def widths(self) -> Tensor:
        """Columns up to each review's last real token (N,), computed once."""
        if self._widths is None:
            self._widths = torch.from_numpy(real_widths(self.ids.numpy()))
        return self._widths


class LengthBuckets(Sampler[list[int]]):
    """Shuffled batches of reviews of similar length: each epoch the reviews are shuffled (seeded),
    cut into pools of `pool_batches` batches, each pool is sorted by length and cut into batches,
    and the batches are shuffled. Every review is in exactly one batch per epoch, as many batches
    as a plain shuffle makes; only the grouping differs."""

    def __init__(self, widths: Tensor, batch_size: int, seed: int, pool_batches: int = 50) -> None:
        self.widths = widths  # each review's length (`models.scores.real_widths`)
        self.batch_size = batch_size
        self.pool = batch_size * pool_batches
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch  # Lightning calls this, so each epoch has its own (seeded) order

    def __len__(self) -> int:
        return -(-len(self.widths) // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.widths), generator=generator)
        batches: list[Tensor] = []
        for start in range(0, len(order), self.pool):
            pool = order[start : start + self.pool]
            pool = pool[self.widths[pool].argsort(stable=True)]
            batches.extend(pool.split(self.batch_size))
        for index in torch.randperm(len(batches), generator=generator).tolist():
            yield batches[index].tolist()


def _whole_batch(batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """`__getitems__` already returns the batch; a module-level function so it pickles."""
    return batch


class IMDBDataModule(LightningDataModule):
    """train/val/test loaders over a prepared folder; training shuffles with a seeded generator,
    or with `batching="length"` draws seeded length buckets (on one process; sharded across
    processes, the batches are shuffled and cut, not bucketed).

    Sharding across processes is done here rather than by Lightning (the Trainer runs with
    `use_distributed_sampler=False`): train and val are split across ranks, but every rank sees
    the whole test split, so the test metrics are exact rather than computed on a padded shard.
    """

    def __init__(
        self,
        prepared_dir: str | Path,
        batch_size: int,
        seed: int = 42,
        num_workers: int = 0,
        batching: Batching = "shuffle",
    ) -> None:
        super().__init__()
        check_choice(batching, Batching, "batching")
        self.batching = batching
        self.prepared_dir = Path(prepared_dir)
        self.batch_size = batch_size
        self.seed = seed
        self.num_workers = num_workers
        self.data: PreparedData | None = None
        self.datasets: dict[str, EncodedReviews] = {}

    def prepare_data(self) -> None:
        if not (self.prepared_dir / "meta.json").exists():
            raise FileNotFoundError(f"no prepared data in {self.prepared_dir}")

    def setup(self, stage: str | None = None) -> None:
        if self.data is None:
            self.data = PreparedData.load(self.prepared_dir)
            for split in SPLITS:
                frame, ids = self.data.split(split)
                trim = split != "train" or self.batching == "length"
                self.datasets[split] = EncodedReviews(ids, frame["label"].to_numpy(), trim)

    def _loader(self, split: str, shuffle: bool, shard: bool) -> DataLoader:
        if not self.datasets:
            self.setup()
        dataset = self.datasets[split]
        trainer = self.trainer
        sampler = None
        if shard and trainer is not None and trainer.world_size > 1:
            # Lightning calls set_epoch on it, so each epoch gets a new (seeded) order.
            sampler = DistributedSampler(
                dataset,
                num_replicas=trainer.world_size,
                rank=trainer.global_rank,
                shuffle=shuffle,
                seed=self.seed,
            )
        if shuffle and sampler is None and self.batching == "length":
            buckets = LengthBuckets(dataset.widths, self.batch_size, self.seed)
            return DataLoader(
                dataset,
                batch_sampler=buckets,
                collate_fn=_whole_batch,
                num_workers=self.num_workers,
            )
        generator = (
            torch.Generator().manual_seed(self.seed) if shuffle and sampler is None else None
        )
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle and sampler is None,
            sampler=sampler,
            generator=generator,
            collate_fn=_whole_batch,
            num_workers=self.num_workers,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True, shard=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False, shard=True)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False, shard=False)
