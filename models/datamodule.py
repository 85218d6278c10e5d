"""The LightningDataModule over a prepared data folder (see `data.prepare.PreparedData`).

Batches are fetched whole (`__getitems__`): one tensor index per batch instead of one per review
followed by a collate, which keeps the data loading cost of a step negligible.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from pytorch_lightning import LightningDataModule
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from data.prepare import PreparedData

SPLITS: tuple[str, ...] = ("train", "val", "test")


class EncodedReviews(Dataset):
    """Encoded reviews (N, L) and their labels (N,) as int64 tensors."""

    def __init__(self, ids: np.ndarray, labels: np.ndarray) -> None:
        # Copies only arrays torch cannot share (read-only pandas/np.load buffers, other dtypes).
        self.ids = torch.from_numpy(np.require(ids, np.int64, ["C", "W"]))
        self.labels = torch.from_numpy(np.require(labels, np.int64, ["C", "W"]))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.ids[index], self.labels[index]

    def __getitems__(self, indices: list[int]) -> tuple[Tensor, Tensor]:
        index = torch.as_tensor(indices)
        return self.ids[index], self.labels[index]


def _whole_batch(batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """`__getitems__` already returns the batch; a module-level function so it pickles."""
    return batch


class IMDBDataModule(LightningDataModule):
    """train/val/test loaders over a prepared folder; training shuffles with a seeded generator.

    Sharding across processes is done here rather than by Lightning (the Trainer runs with
    `use_distributed_sampler=False`): train and val are split across ranks, but every rank sees
    the whole test split, so the test metrics are exact rather than computed on a padded shard.
    """

    def __init__(
        self, prepared_dir: str | Path, batch_size: int, seed: int = 42, num_workers: int = 0
    ) -> None:
        super().__init__()
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
                self.datasets[split] = EncodedReviews(ids, frame["label"].to_numpy())

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
