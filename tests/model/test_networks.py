"""The two networks and their presets: shapes, padding invariance, the captum path, validation."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from models.networks import (
    OOV_ID,
    PAD_ID,
    POOLINGS,
    POSITION_BINS,
    CNNNet,
    DenseNet,
    SentimentNet,
    bin_weights,
    build_net,
    position_bins,
)
from models.presets import ARCHS, DEFAULT_PRESET, PRESETS, Preset, get_preset

VOCAB = 50
TINY: dict[str, dict[str, Any]] = {
    "dense": {"embedding_dim": 8, "hidden_dim": 6},
    "cnn": {"embedding_dim": 8, "channels": (6, 5, 4)},
}
# Per-token feature width before pooling, for the latent size check.
FEATURES = {"dense": 6, "cnn": 4}
BUCKETS = 97  # word-pair hash buckets of the tiny nets that use them


def tiny_net(
    arch: str, pooling: str = "mean", dropout: float = 0.2, seed: int = 0, **extra: Any
) -> SentimentNet:
    torch.manual_seed(seed)
    net = build_net(arch, VOCAB, pooling=pooling, dropout=dropout, **TINY[arch], **extra)
    with torch.no_grad():  # trained-looking pooling weights, not the mean they start as
        if net.attention_query is not None:
            net.attention_query.normal_(0.0, 3.0)
        if net.position_logits is not None:
            net.position_logits.normal_(0.0, 1.0)
    return net


def random_ids(batch: int, real: int, pads: int, seed: int = 1) -> torch.Tensor:
    """Reviews of `real` non-padding tokens, right-padded with `pads` PAD_IDs."""
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, VOCAB, (batch, real), generator=generator)
    return torch.cat([tokens, torch.full((batch, pads), PAD_ID)], dim=1)


def trained_batchnorm(net: SentimentNet) -> SentimentNet:
    """Give BatchNorm non-trivial running stats (so its shift is non-zero), then switch to eval."""
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(random_ids(8, 12, 5, seed=7))
    return net.eval()


ARCH_POOLING = [(arch, pooling) for arch in ARCHS for pooling in POOLINGS]


@pytest.mark.parametrize(("arch", "pooling"), ARCH_POOLING)
def test_forward_and_latent_shapes(arch: str, pooling: str) -> None:
    net = tiny_net(arch, pooling).eval()
    ids = random_ids(4, 9, 3)
    expected_latent = FEATURES[arch] * (2 if pooling == "meanmax" else 1)
    assert net.latent_dim == expected_latent
    assert net(ids).shape == (4, 2)
    assert net.latent(ids).shape == (4, expected_latent)
    assert isinstance(net.embedding, torch.nn.Embedding)
    assert net.embedding.padding_idx == PAD_ID


def test_build_net_returns_the_named_class() -> None:
    assert isinstance(tiny_net("dense"), DenseNet)
    assert isinstance(tiny_net("cnn"), CNNNet)


@pytest.mark.parametrize("buckets", [0, BUCKETS], ids=["words", "word-pairs"])
@pytest.mark.parametrize(("arch", "pooling"), ARCH_POOLING)
def test_output_is_invariant_to_trailing_padding(arch: str, pooling: str, buckets: int) -> None:
    net = trained_batchnorm(
        bigram_net(arch, pooling, buckets) if buckets else tiny_net(arch, pooling)
    )
    short, long = random_ids(4, 20, 10), random_ids(4, 20, 50)
    with torch.no_grad():
        torch.testing.assert_close(net(short), net(long), atol=1e-5, rtol=0)
        torch.testing.assert_close(net.latent(short), net.latent(long), atol=1e-5, rtol=0)


def test_padding_invariance_holds_for_reviews_of_different_lengths_in_one_batch() -> None:
    net = trained_batchnorm(tiny_net("cnn", "meanmax"))
    alone = random_ids(1, 6, 0, seed=3)
    batch = random_ids(2, 15, 0, seed=4)
    batch[0] = PAD_ID
    batch[0, :6] = alone[0]  # row 0: the 6-token review padded to 15
    with torch.no_grad():
        torch.testing.assert_close(net(batch)[0], net(alone)[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("buckets", [0, BUCKETS], ids=["words", "word-pairs"])
@pytest.mark.parametrize(("arch", "pooling"), ARCH_POOLING)
def test_forward_equals_forward_from_embeddings(arch: str, pooling: str, buckets: int) -> None:
    net = trained_batchnorm(
        bigram_net(arch, pooling, buckets) if buckets else tiny_net(arch, pooling)
    )
    ids = random_ids(3, 7, 4)
    with torch.no_grad():
        via_embeddings = net.forward_from_embeddings(net.embed(ids), ids != PAD_ID)
        # A float mask (as captum passes extra arguments) must give the same result.
        via_float_mask = net.forward_from_embeddings(net.embed(ids), (ids != PAD_ID).float())
        torch.testing.assert_close(net(ids), via_embeddings, atol=0, rtol=0)
        torch.testing.assert_close(net(ids), via_float_mask, atol=1e-6, rtol=0)
        # The analysis scores and embeds in one pass: the head applied to the latent vector.
        torch.testing.assert_close(net(ids), net.classify(net.latent(ids)), atol=0, rtol=0)


@pytest.mark.parametrize("arch", ARCHS)
def test_padded_positions_are_ignored_even_with_nonzero_embeddings(arch: str) -> None:
    # Integrated Gradients interpolates embeddings, so padded rows need not be zero vectors.
    net = trained_batchnorm(tiny_net(arch, "meanmax"))
    ids = random_ids(2, 8, 6)
    mask = ids != PAD_ID
    embedded = net.embedding(ids).detach()
    noisy = embedded + torch.randn_like(embedded) * (~mask).unsqueeze(-1)
    with torch.no_grad():
        torch.testing.assert_close(
            net.forward_from_embeddings(noisy, mask), net(ids), atol=1e-5, rtol=0
        )


@pytest.mark.parametrize(("arch", "pooling"), ARCH_POOLING)
def test_all_padding_row_gives_finite_logits(arch: str, pooling: str) -> None:
    net = trained_batchnorm(tiny_net(arch, pooling))
    ids = random_ids(3, 5, 5)
    ids[1] = PAD_ID  # an empty review
    with torch.no_grad():
        assert torch.isfinite(net(ids)).all()
        assert torch.isfinite(net.latent(ids)).all()
    net.train()
    net(ids).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)


@pytest.mark.parametrize(("arch", "pooling"), ARCH_POOLING)
def test_gradients_reach_the_embedding_but_not_the_padding_row(arch: str, pooling: str) -> None:
    net = tiny_net(arch, pooling).train()
    ids = random_ids(4, 10, 3)
    torch.nn.functional.cross_entropy(net(ids), torch.tensor([0, 1, 0, 1])).backward()
    grad = net.embedding.weight.grad
    assert grad is not None
    used = ids.unique()
    used = used[used != PAD_ID]
    assert grad[used].abs().sum() > 0
    assert torch.count_nonzero(grad[PAD_ID]) == 0


def test_dropout_is_active_in_train_mode_only() -> None:
    net = tiny_net("dense", "mean", dropout=0.5)
    ids = random_ids(4, 10, 2)
    with torch.no_grad():
        net.train()
        assert not torch.equal(net(ids), net(ids))
        net.eval()
        assert torch.equal(net(ids), net(ids))


@pytest.mark.parametrize("arch", ARCHS)
def test_seeded_construction_is_reproducible(arch: str) -> None:
    first, second, other = tiny_net(arch, seed=5), tiny_net(arch, seed=5), tiny_net(arch, seed=6)
    for (name, a), (_, b) in zip(
        first.state_dict().items(), second.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    assert not torch.equal(first.embedding.weight, other.embedding.weight)


def test_build_net_rejects_unknown_architecture_listing_choices() -> None:
    with pytest.raises(ValueError, match=r"'rnn'.*dense, cnn"):
        build_net("rnn", VOCAB)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"embedding_dim": -4}, "embedding_dim"),
        ({"embedding_dim": 0}, "embedding_dim"),
        ({"dropout": 1.5}, "dropout"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
        ({"pooling": "sum"}, r"'sum'.*mean, max, meanmax"),
    ],
)
def test_build_net_rejects_nonsense_common_hyperparameters(
    arch: str, bad: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build_net(arch, VOCAB, **{**TINY[arch], **bad})


@pytest.mark.parametrize(
    ("arch", "bad", "message"),
    [
        ("dense", {"hidden_dim": -28}, "hidden_dim"),
        ("cnn", {"channels": (28, -16, 8)}, r"channels\[1\]"),
        ("cnn", {"channels": (28, 16)}, "3 conv widths"),
        ("cnn", {"kernel_size": 4}, "odd"),
        ("cnn", {"kernel_size": 0}, "kernel_size"),
    ],
)
def test_build_net_rejects_nonsense_sizes(arch: str, bad: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_net(arch, VOCAB, **{**TINY[arch], **bad})


@pytest.mark.parametrize("vocab_size", [0, -10, 1])
def test_build_net_rejects_a_vocabulary_without_room_for_reserved_ids(vocab_size: int) -> None:
    with pytest.raises(ValueError, match="vocab_size"):
        build_net("dense", vocab_size)


# --- presets -------------------------------------------------------------------------------------


def test_default_preset_is_tuned() -> None:
    assert DEFAULT_PRESET == "tuned"
    assert get_preset("cnn").name == "tuned"
    assert set(PRESETS) == {"seed", "tuned"}


@pytest.mark.parametrize("name", PRESETS)
def test_archs_share_the_data_encoding_within_a_preset(name: str) -> None:
    dense, cnn = get_preset("dense", name), get_preset("cnn", name)
    assert (dense.vocab_size, dense.max_len) == (cnn.vocab_size, cnn.max_len)


def test_seed_preset_has_the_reference_sizes() -> None:
    dense, cnn = get_preset("dense", "seed"), get_preset("cnn", "seed")
    assert (dense.vocab_size, dense.max_len, dense.embedding_dim) == (10_000, 250, 16)
    assert dense.hidden_dim == 28
    assert cnn.channels == (28, 16, 8)
    assert (dense.dropout, dense.pooling, dense.learning_rate, dense.batch_size) == (
        0.2,
        "mean",
        1e-3,
        32,
    )


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_builds_its_network(arch: str, name: str) -> None:
    preset = get_preset(arch, name, vocab_size=VOCAB)  # tiny vocabulary keeps this fast
    net = build_net(preset.arch, preset.vocab_size, **preset.net_kwargs())
    assert isinstance(net, DenseNet if arch == "dense" else CNNNet)
    assert net.embedding.num_embeddings == VOCAB
    assert net.embedding.embedding_dim == preset.embedding_dim
    assert net.pooling == preset.pooling
    assert net(random_ids(2, 5, 3)).shape == (2, 2)


def test_net_kwargs_hold_only_the_arch_specific_sizes() -> None:
    assert "channels" not in get_preset("dense").net_kwargs()
    assert "hidden_dim" not in get_preset("cnn").net_kwargs()
    assert get_preset("cnn").net_kwargs()["channels"] == get_preset("cnn").channels


def test_get_preset_rejects_unknown_arch_and_preset_listing_choices() -> None:
    with pytest.raises(ValueError, match=r"'rnn'.*dense, cnn"):
        get_preset("rnn")
    with pytest.raises(ValueError, match=r"'fast'.*seed, tuned"):
        get_preset("dense", "fast")


def test_overrides_are_applied_and_validated() -> None:
    assert get_preset("dense", "seed", epochs=1).epochs == 1
    for bad in (
        {"epochs": 0},
        {"batch_size": -1},
        {"hidden_dim": -28},
        {"channels": (28, 0, 8)},
        {"dropout": 1.5},
        {"learning_rate": 0.0},
        {"weight_decay": -1e-4},
        {"pooling": "sum"},
        {"kernel_size": 4},
        {"max_len": 0},
        {"no_such_field": 3},
    ):
        with pytest.raises(ValueError):
            get_preset("dense", "seed", **bad)


def test_presets_are_frozen() -> None:
    preset = get_preset("cnn")
    with pytest.raises(ValueError):
        preset.epochs = 99  # type: ignore[misc]
    assert isinstance(preset, Preset)


def test_word_dropout_is_off_by_default_and_active_in_train_mode_only() -> None:
    assert tiny_net("cnn").word_dropout == 0.0
    torch.manual_seed(0)
    net = build_net("dense", VOCAB, word_dropout=0.5, **TINY["dense"])
    ids = torch.randint(2, VOCAB, (4, 12))
    ids[:, 9:] = PAD_ID
    net.eval()
    assert torch.equal(net(ids), net(ids))
    seen: list[torch.Tensor] = []
    handle = net.embedding.register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0]))
    net.train()
    net(ids)
    handle.remove()
    dropped = seen[0]
    assert (dropped[:, 9:] == PAD_ID).all()  # padding is never replaced
    assert (dropped[:, :9] == OOV_ID).any() and (dropped[:, :9] != OOV_ID).any()
    with pytest.raises(ValueError, match="dropout"):
        build_net("cnn", VOCAB, word_dropout=1.0, **TINY["cnn"])


# --- hashed bigram embeddings -------------------------------------------------------------------


def bigram_net(arch: str, pooling: str = "mean", buckets: int = BUCKETS) -> SentimentNet:
    """A tiny net whose bigram table is random (it starts at zero), so pairs visibly matter."""
    torch.manual_seed(0)
    net = build_net(arch, VOCAB, pooling=pooling, dropout=0.2, bigram_buckets=buckets, **TINY[arch])
    if net.bigram_embedding is not None:
        with torch.no_grad():
            torch.nn.init.normal_(net.bigram_embedding.weight[1:], std=0.5)
    return net


def test_bigram_ids_hash_each_pair_and_reserve_bucket_zero_for_padding() -> None:
    net = bigram_net("dense")
    ids = torch.tensor([[5, 7, 9, PAD_ID, PAD_ID], [9, 5, 7, 3, PAD_ID]])
    buckets = net.bigram_ids(ids)
    assert buckets.shape == ids.shape
    # Pairs that run into padding, and the last position, map to the padding bucket.
    assert buckets[0, 2:].tolist() == [0, 0, 0]
    assert buckets[1, 3:].tolist() == [0, 0]
    real = buckets[buckets != 0]
    assert ((real >= 1) & (real < BUCKETS)).all()
    # The same pair gets the same bucket wherever it occurs; "5 7" and "7 5" are different pairs.
    assert buckets[0, 0] == buckets[1, 1]  # (5, 7) in both rows
    swapped = net.bigram_ids(torch.tensor([[7, 5]]))[0, 0]
    assert swapped != buckets[0, 0]


def test_bigram_table_starts_at_zero_so_the_net_starts_as_the_word_model() -> None:
    torch.manual_seed(0)
    net = build_net("dense", VOCAB, bigram_buckets=BUCKETS, **TINY["dense"]).eval()
    ids = random_ids(3, 9, 2)
    assert net.bigram_embedding is not None
    assert torch.count_nonzero(net.bigram_embedding.weight) == 0
    torch.testing.assert_close(net.embed(ids), net.embedding(ids), atol=0, rtol=0)


def test_word_pairs_make_the_dense_model_see_word_order() -> None:
    ids = random_ids(2, 12, 3)
    shuffled = ids.clone()
    shuffled[:, :12] = ids[:, torch.randperm(12, generator=torch.Generator().manual_seed(0))]
    words_only = tiny_net("dense").eval()
    with_pairs = bigram_net("dense").eval()
    with torch.no_grad():
        # Mean pooling of per-token features: a pure bag of words ignores the order...
        torch.testing.assert_close(words_only(ids), words_only(shuffled), atol=1e-6, rtol=0)
        # ...the pair embeddings do not.
        assert not torch.allclose(with_pairs(ids), with_pairs(shuffled), atol=1e-4)


@pytest.mark.parametrize("arch", ARCHS)
def test_gradients_reach_used_bigram_buckets_but_not_the_padding_bucket(arch: str) -> None:
    net = bigram_net(arch).train()
    ids = random_ids(4, 10, 3)
    torch.nn.functional.cross_entropy(net(ids), torch.tensor([0, 1, 0, 1])).backward()
    assert net.bigram_embedding is not None
    grad = net.bigram_embedding.weight.grad
    assert grad is not None
    used = net.bigram_ids(ids).unique()
    used = used[used != 0]
    assert grad[used].abs().sum() > 0
    assert torch.count_nonzero(grad[0]) == 0


@pytest.mark.parametrize("buckets", [1, -3, True, 2.5])
def test_bad_bigram_bucket_counts_are_rejected(buckets: object) -> None:
    with pytest.raises(ValueError, match="bigram_buckets"):
        build_net("dense", VOCAB, bigram_buckets=buckets, **TINY["dense"])
    if isinstance(buckets, int) and not isinstance(buckets, bool):
        with pytest.raises(ValueError, match="bigram_buckets"):
            get_preset("dense", bigram_buckets=buckets)


def test_dense_training_is_invariant_to_trailing_padding() -> None:
    """A dense training step sees the same loss and gradients whether a batch is padded to its
    longest review or far beyond, so `batching="length"` (batches cut to their longest review)
    trains the same network. (Not so the CNN: BatchNorm counts padded positions in training.)"""
    ids = random_ids(6, 15, 0, seed=3)
    ids[:3, 9:] = PAD_ID  # reviews of two lengths in one batch
    labels = torch.tensor([0, 1, 0, 1, 1, 0])
    grads = []
    for pads in (0, 40):
        net = tiny_net("dense", dropout=0.0).train()
        padded = torch.cat([ids, torch.full((6, pads), PAD_ID)], dim=1)
        torch.nn.functional.cross_entropy(net(padded), labels).backward()
        grads.append(
            {name: p.grad.clone() for name, p in net.named_parameters() if p.grad is not None}
        )
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_attention_pooling_starts_as_the_mean_and_learns_to_weigh_tokens(arch: str) -> None:
    torch.manual_seed(0)
    attention = trained_batchnorm(build_net(arch, VOCAB, pooling="attention", **TINY[arch]))
    mean = build_net(arch, VOCAB, pooling="mean", **TINY[arch]).eval()
    mean.load_state_dict(
        {k: v for k, v in attention.state_dict().items() if k != "attention_query"}
    )
    ids = random_ids(4, 12, 3)
    with torch.no_grad():
        torch.testing.assert_close(attention(ids), mean(ids))  # a zero query: every token alike
        attention.attention_query.fill_(10.0)
        assert not torch.allclose(attention.latent(ids), mean.latent(ids), rtol=1e-2, atol=0)
    attention.train()
    attention(ids)[:, 1].sum().backward()
    assert attention.attention_query.grad is not None
    assert attention.attention_query.grad.abs().sum() > 0


def test_position_bins_split_each_review_by_its_own_length() -> None:
    mask = torch.tensor([[1, 1, 1, 1, 0, 0, 0, 0], [1] * 8, [1, 0, 0, 0, 0, 0, 0, 0]])
    assert position_bins(mask, 4).tolist() == [
        [0, 1, 2, 3, 0, 0, 0, 0],  # first and last real token in the first and last bin
        [0, 0, 1, 1, 2, 2, 3, 3],
        [0, 0, 0, 0, 0, 0, 0, 0],  # a one-token review sits at its start
    ]


@pytest.mark.parametrize("arch", ARCHS)
def test_position_pooling_starts_as_the_mean_and_learns_where_words_count(arch: str) -> None:
    torch.manual_seed(0)
    position = trained_batchnorm(build_net(arch, VOCAB, pooling="position", **TINY[arch]))
    mean = build_net(arch, VOCAB, pooling="mean", **TINY[arch]).eval()
    mean.load_state_dict({k: v for k, v in position.state_dict().items() if k != "position_logits"})
    ids = random_ids(4, 16, 3)
    assert position.position_logits is not None
    with torch.no_grad():
        torch.testing.assert_close(position(ids), mean(ids))  # zero log-weights: every bin alike
        # All the weight on the last bin: the latent is the mean over the review's last eighth.
        position.position_logits.copy_(torch.tensor([-30.0] * (POSITION_BINS - 1) + [0.0]))
        features, covered = position.encode_tokens(position.embed(ids), ids != PAD_ID)
        last = covered.cumsum(dim=1) > covered.sum(dim=1, keepdim=True) * (1 - 1 / POSITION_BINS)
        expected = (features * (covered * last).unsqueeze(-1)).sum(1) / (covered * last).sum(
            1, True
        )
        torch.testing.assert_close(position.latent(ids), expected)
        # Changing a word outside the last eighth then moves nothing.
        edited = ids.clone()
        edited[:, 0] = (edited[:, 0] % (VOCAB - 2)) + 2
        torch.testing.assert_close(position(edited), position(ids))
    position.position_logits.data.zero_()
    position.train()
    position(ids)[:, 1].sum().backward()
    assert position.position_logits.grad is not None
    assert position.position_logits.grad.abs().sum() > 0


def test_position_gain_is_the_networks_and_scales_the_learned_log_weights() -> None:
    logits = torch.tensor([0.0, 0.1, -0.2])
    torch.testing.assert_close(bin_weights(logits, 1.0), torch.exp(logits))
    torch.testing.assert_close(bin_weights(logits, 10.0), torch.exp(10.0 * logits))
    ids = random_ids(3, 14, 4)
    latents = []
    for gain in (1.0, 10.0):
        net = trained_batchnorm(tiny_net("cnn", "position", position_gain=gain))
        assert net.position_gain == gain
        with torch.no_grad():
            latents.append(net.latent(ids))
    # The same weights (same seed) pool differently under another gain.
    assert not torch.allclose(latents[0], latents[1])
    preset = get_preset("cnn", "tuned", vocab_size=VOCAB, position_gain=3.0)
    built = build_net(preset.arch, preset.vocab_size, **preset.net_kwargs())
    assert built.position_gain == 3.0
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="position_gain"):
            build_net("dense", VOCAB, pooling="position", position_gain=bad)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_full_edges_keep_the_padding_invariance(pooling: str) -> None:
    net = trained_batchnorm(tiny_net("cnn", pooling, bigram_buckets=BUCKETS, edges="full"))
    short, long = random_ids(4, 20, 0), random_ids(4, 20, 50)  # no padding at all, then plenty
    alone = random_ids(1, 6, 0, seed=3)
    batch = random_ids(2, 15, 0, seed=4)
    batch[0] = PAD_ID
    batch[0, :6] = alone[0]
    with torch.no_grad():
        torch.testing.assert_close(net(short), net(long), atol=1e-5, rtol=0)
        torch.testing.assert_close(net.latent(short), net.latent(long), atol=1e-5, rtol=0)
        torch.testing.assert_close(net(batch)[0], net(alone)[0], atol=1e-5, rtol=0)
        via_embeddings = net.forward_from_embeddings(net.embed(short), short != PAD_ID)
        torch.testing.assert_close(net(short), via_embeddings, atol=0, rtol=0)
        empty = torch.full((2, 5), PAD_ID)
        assert torch.isfinite(net(empty)).all()
        torch.testing.assert_close(net.latent(empty), torch.zeros(2, net.latent_dim))


def counting_cnn(edges: str) -> SentimentNet:
    """A CNN that adds up its input: one channel, every conv weight 1, BatchNorm the identity,
    word 2 embedded as 1 and every other word as 0; its mean-pooled latent measures how many
    pooled positions the word 2 reaches."""
    net = build_net("cnn", VOCAB, embedding_dim=1, channels=(1, 1, 1), edges=edges, dropout=0.0)
    with torch.no_grad():
        net.embedding.weight.zero_()
        net.embedding.weight[2] = 1.0
        for conv in net.convs:
            conv.weight.fill_(1.0)
    return net.eval()


def test_full_edges_let_a_word_at_either_end_count_as_much_as_one_in_the_middle() -> None:
    def latent_with_word_at(net: SentimentNet, position: int) -> float:
        ids = torch.full((1, 9), 3)
        ids[0, position] = 2
        with torch.no_grad():
            return float(net.latent(torch.cat([ids, torch.full((1, 4), PAD_ID)], dim=1)))

    full, same = counting_cnn("full"), counting_cnn("same")
    middle = latent_with_word_at(full, 4)
    # 3 x 3 x 3 paths from the word to the pooled positions, over 9 + 2 x 3 covered positions.
    assert middle == pytest.approx(27 / 15, rel=1e-4)
    for end in (0, 8):
        assert latent_with_word_at(full, end) == pytest.approx(middle, rel=1e-6)
        # "same" drops the paths that leave the review: the last word counts about half as much.
        assert latent_with_word_at(same, end) < 0.6 * latent_with_word_at(same, 4)


def test_conv_edges_are_a_preset_choice_passed_to_the_cnn_only() -> None:
    assert get_preset("cnn", "seed").conv_edges == "same"  # the reference
    assert "edges" not in get_preset("dense").net_kwargs()
    preset = get_preset("cnn", "seed", vocab_size=VOCAB, conv_edges="full")
    net = build_net("cnn", preset.vocab_size, **preset.net_kwargs())
    assert isinstance(net, CNNNet) and net.edges == "full"
    with pytest.raises(ValueError, match="conv_edges"):
        get_preset("cnn", conv_edges="valid")
    with pytest.raises(ValueError, match=r"'valid'.*same, full"):
        build_net("cnn", VOCAB, edges="valid", **TINY["cnn"])
