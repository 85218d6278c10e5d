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


def test_scoring_in_length_order_gives_every_review_its_own_score() -> None:
    from models.networks import build_net
    from models.pyfunc import predict_proba
    from models.scores import LengthOrder

    data = reviews([3, 30, 1, 12, 7, 0, 25], width=40)
    order = LengthOrder(data.ids.numpy(), batch_size=3)
    batches = list(order)
    assert len(batches) == len(order) == 3
    assert [b.shape[1] for b in batches] == [3, 25, 30]  # lengths 0 1 3 | 7 12 25 | 30, each cut
    rows = order.restore([b[:, :1] for b in batches])[:, 0]  # the first token ids, back in order
    assert rows.tolist() == [2, 2, 2, 2, 2, PAD_ID, 2]
    torch.manual_seed(0)
    net = build_net("cnn", 40, embedding_dim=8, channels=(6, 5, 4)).eval()
    with torch.no_grad():
        expected = net(data.ids).softmax(dim=-1)[:, 1].numpy()
        np.testing.assert_allclose(predict_proba(net, data.ids.numpy(), 3), expected, atol=1e-6)


def test_widths_keep_every_token_even_after_interior_padding() -> None:
    from models.scores import real_widths

    ids = np.array([[5, PAD_ID, 6, PAD_ID], [PAD_ID] * 4, [7, 8, 9, 1]])
    assert real_widths(ids).tolist() == [3, 0, 4]
    assert EncodedReviews(ids, np.zeros(3)).__getitems__([0])[0].tolist() == [[5, PAD_ID, 6]]
