"""The data module's batches: cut to their longest review, and drawn by length in training when
the preset says so (`batching="length"`); the reference ("shuffle") keeps padded training batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.datamodule import EncodedReviews, IMDBDataModule, LengthBuckets
from models.networks import PAD_ID


def reviews(lengths: list[int], width: int = 30, trim: bool = True) -> EncodedReviews:
    ids = np.full((len(lengths), width), PAD_ID, dtype=np.int64)
    for row, length in enumerate(lengths):
        ids[row, :length] = np.arange(2, 2 + length)
    return EncodedReviews(ids, np.arange(len(lengths)) % 2, trim)


def test_a_batch_is_cut_to_its_longest_review() -> None:
    data = reviews([3, 7, 5, 30, 0])
    ids, labels = data.__getitems__([0, 2])
    assert ids.shape == (2, 5)
    assert ids[0].tolist() == [2, 3, 4, PAD_ID, PAD_ID]
    assert labels.tolist() == [0, 0]
    assert data.__getitems__([3, 1])[0].shape == (2, 30)
    assert data.__getitems__([4])[0].shape == (1, 1)  # an empty review keeps one column
    assert reviews([3, 7], trim=False).__getitems__([0, 1])[0].shape == (2, 30)


def test_length_buckets_cover_every_review_once_in_as_many_batches_as_a_shuffle() -> None:
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 800, (1000,), generator=generator)
    sampler = LengthBuckets(lengths, batch_size=64, seed=5, pool_batches=4)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 16  # ceil(1000 / 64)
    assert sorted(i for batch in batches for i in batch) == list(range(1000))
    assert sum(len(batch) < 64 for batch in batches) == 1
    # Grouped by length: a batch's spread is far below that of a shuffled batch (about 750).
    spread = np.mean([float(lengths[b].max() - lengths[b].min()) for b in batches if len(b) == 64])
    assert spread < 300


def test_length_buckets_are_seeded_and_change_with_the_epoch() -> None:
    lengths = torch.arange(1, 501)
    first = list(LengthBuckets(lengths, 32, seed=1))
    assert first == list(LengthBuckets(lengths, 32, seed=1))
    assert first != list(LengthBuckets(lengths, 32, seed=2))
    later = LengthBuckets(lengths, 32, seed=1)
    later.set_epoch(1)
    assert list(later) != first


@pytest.mark.parametrize("batching", ["shuffle", "length"])
def test_training_batches_follow_the_batching_and_evaluation_batches_are_cut(
    tiny_prepared: Path, batching: str
) -> None:
    data = IMDBDataModule(tiny_prepared, batch_size=16, seed=3, batching=batching)
    data.setup()
    width = data.datasets["train"].ids.shape[1]
    train = list(data.train_dataloader())
    seen = torch.cat([labels for _, labels in train])
    assert len(seen) == len(data.datasets["train"])
    widths = {ids.shape[1] for ids, _ in train}
    if batching == "shuffle":
        assert widths == {width}  # the reference: padded to max_len
    else:
        assert isinstance(data.train_dataloader().batch_sampler, LengthBuckets)
        assert min(widths) < width
    for ids, _ in data.val_dataloader():
        assert ids.shape[1] == int((ids != PAD_ID).sum(dim=1).max())


def test_unknown_batching_is_rejected(tiny_prepared: Path) -> None:
    with pytest.raises(ValueError, match="batching"):
        IMDBDataModule(tiny_prepared, batch_size=16, batching="sorted")  # type: ignore[arg-type]
