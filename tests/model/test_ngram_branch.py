"""The naive-Bayes n-gram branch: hashing, binary counts, NB ratios, the logit, save/load."""

from __future__ import annotations

import io

import pytest
import torch

from data.text import NEGATION_WORDS, Vocabulary
from models.networks import PAD_ID, build_net
from models.presets import ARCHS, get_preset
from models.scores import score_batch

VOCAB = 50
BUCKETS = 4099  # a prime well above the tiny corpus's n-gram count: collisions are unlikely
TINY = {
    "dense": {"embedding_dim": 8, "hidden_dim": 6},
    "cnn": {"embedding_dim": 8, "channels": (6, 5, 4)},
}


def ngram_net(arch: str = "cnn", order: int = 3, buckets: int = BUCKETS, seed: int = 0):
    torch.manual_seed(seed)
    return build_net(
        arch, VOCAB, ngram_buckets=buckets, ngram_order=order, dropout=0.2, **TINY[arch]
    )


def planted_corpus() -> tuple[torch.Tensor, torch.Tensor]:
    """Word 5 only in positive reviews, word 6 only in negative ones, word 7 in every review."""
    generator = torch.Generator().manual_seed(3)
    rows, labels = [], []
    for i in range(40):
        label = i % 2
        filler = torch.randint(10, VOCAB, (10,), generator=generator)
        planted = torch.tensor([5 if label else 6, 7])
        rows.append(torch.cat([planted, filler, torch.full((4,), PAD_ID)]))
        labels.append(label)
    return torch.stack(rows), torch.tensor(labels)


def unigram_bucket(net, word: int) -> int:
    return int(net.ngram_ids(torch.tensor([[word]]))[0, 0, 0])


def test_naive_bayes_ratios_of_a_planted_corpus_have_the_expected_signs() -> None:
    net = ngram_net()
    ids, labels = planted_corpus()
    ratios = net.init_ngram_weights(ids, labels)
    positive, negative, neutral = (unigram_bucket(net, w) for w in (5, 6, 7))
    assert ratios[positive] > 2.0
    assert ratios[negative] < -2.0
    assert abs(ratios[neutral]) < 0.2
    assert ratios[0] == 0  # the padding bucket carries nothing
    # The weights are the ratios (scale 1), and the planted words decide the branch's logit.
    assert torch.allclose(net.ngram_weight.weight[:, 0], ratios)
    net.eval()
    with torch.no_grad():
        margin = net(ids).diff(dim=-1)[:, 0]
    assert ((margin > 0).long() == labels).all()


def test_scale_multiplies_the_ratios_and_zero_leaves_the_branch_silent() -> None:
    ids, labels = planted_corpus()
    net = ngram_net()
    ratios = net.init_ngram_weights(ids, labels, scale=0.25)
    assert torch.allclose(net.ngram_weight.weight[:, 0], 0.25 * ratios)
    fresh = ngram_net()
    assert torch.count_nonzero(fresh.ngram_weight.weight) == 0  # zero until initialised
    plain = build_net("cnn", VOCAB, dropout=0.2, **TINY["cnn"])
    with pytest.raises(ValueError, match="no n-gram branch"):
        plain.init_ngram_weights(ids, labels)


def test_each_distinct_ngram_counts_once_and_padding_gets_bucket_zero() -> None:
    net = ngram_net(order=3)
    buckets = net.ngram_ids(torch.tensor([[8, 8, 8, 8, 8, PAD_ID, PAD_ID]]))[0]
    # "8", "8 8" and "8 8 8" once each, at the first position; repeats and padding are 0.
    assert (buckets[0] != 0).all()
    assert len(set(buckets[0].tolist())) == 3
    assert torch.count_nonzero(buckets[1:]) == 0
    # An n-gram running into padding is 0: the last real token has only its unigram.
    row = net.ngram_ids(torch.tensor([[11, 12, 13, PAD_ID]]))[0]
    assert row[2, 0] != 0 and row[2, 1] == 0 and row[2, 2] == 0
    assert row[1, 1] != 0 and row[1, 2] == 0
    # Order matters: "11 12" and "12 11" are different n-grams.
    swapped = net.ngram_ids(torch.tensor([[12, 11, 13, PAD_ID]]))[0]
    assert row[0, 1] != swapped[0, 1]


def test_repeating_a_review_leaves_the_branch_score_unchanged() -> None:
    net = ngram_net()
    net.init_ngram_weights(*planted_corpus())
    once = torch.tensor([[5, 7, 12, 13]])
    twice = torch.tensor([[5, 7, 12, 13, 5, 7, 12, 13]])
    # The second copy adds only the n-grams that straddle the join ("13 5", "13 5 7", "12 13 5").
    joins = torch.tensor([[13, 5, 7], [12, 13, 5]])
    straddling = {int(net.ngram_ids(joins)[0, 0, 1]), int(net.ngram_ids(joins)[0, 0, 2])}
    straddling.add(int(net.ngram_ids(joins)[1, 0, 2]))
    weights = net.ngram_weight.weight[:, 0].detach()
    extra = sum(float(weights[b]) for b in straddling)
    with torch.no_grad():
        score_once = net.ngram_scores(once).sum()
        score_twice = net.ngram_scores(twice).sum()
    assert float(score_twice) == pytest.approx(float(score_once) + extra, abs=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("buckets", [0, BUCKETS], ids=["no-branch", "branch"])
def test_shapes_and_the_embedding_path_agree_with_and_without_the_branch(
    arch: str, buckets: int
) -> None:
    net = ngram_net(arch, buckets=buckets)
    if buckets:
        net.init_ngram_weights(*planted_corpus())
    net.eval()
    ids = torch.randint(2, VOCAB, (3, 9))
    ids[1, 6:] = PAD_ID
    embedded = net.embed(ids)
    assert embedded.shape == (3, 9, 8 + (1 if buckets else 0))
    with torch.no_grad():
        logits = net(ids)
        assert logits.shape == (3, 2)
        torch.testing.assert_close(logits, net.forward_from_embeddings(embedded, ids != PAD_ID))
        assert net.latent(ids).shape == (3, net.latent_dim)
        # Trailing padding changes nothing.
        longer = torch.cat([ids, torch.full((3, 7), PAD_ID)], dim=1)
        torch.testing.assert_close(net(longer), logits, atol=1e-5, rtol=0)


def test_the_branch_adds_half_its_score_to_each_logit() -> None:
    net = ngram_net()
    net.init_ngram_weights(*planted_corpus())
    net.eval()
    ids = torch.tensor([[5, 7, 20, 21, PAD_ID]])
    with torch.no_grad():
        score = net.ngram_scores(ids).sum()
        without = net.classify(net.latent(ids))
        torch.testing.assert_close(net(ids), without + torch.stack([-score, score]) / 2)


@pytest.mark.parametrize("arch", ARCHS)
def test_the_analysis_scores_include_the_branch(arch: str) -> None:
    """What training's test pass and the analysis read (`models.scores.score_batch`, through
    `logits_and_latent`) are the logits `net(ids)` serves, branch included, beside the network's
    own latent vector (the branch stays out of the maps and clusters)."""
    net = ngram_net(arch)
    net.init_ngram_weights(*planted_corpus())
    net.eval()
    ids = planted_corpus()[0][:6]
    with torch.no_grad():
        logits, latent = score_batch(net, ids)
        torch.testing.assert_close(logits, net(ids))
        torch.testing.assert_close(latent, net.latent(ids))
        assert not torch.allclose(logits, net.classify(latent))  # the branch is in the logits


@pytest.mark.parametrize("arch", ARCHS)
def test_logit_parts_split_the_served_margin_into_network_and_branch(arch: str) -> None:
    """What the behaviour report's parts score: the network's margin and the branch's, which add
    up to the margin `net(ids)` serves (whatever the padding: the scoring batches cut it), and a
    branch part of 0 for a network without the branch."""
    from models.pyfunc import predict_logit_parts

    net = ngram_net(arch)
    ids, labels = planted_corpus()
    net.fit_ngram_weights(ids, labels, c=1.0)
    net.eval()
    with torch.no_grad():
        served = net(ids).diff(dim=-1)[:, 0]
        branch = net.ngram_scores(ids).sum(1) + net.ngram_bias
    parts = torch.from_numpy(predict_logit_parts(net, ids.numpy(), batch_size=7))
    torch.testing.assert_close(parts.sum(dim=1), served)
    torch.testing.assert_close(parts[:, 1], branch)
    assert (parts[:, 1] > 0).long().eq(labels).all()  # the fitted branch separates the corpus
    with torch.no_grad():
        torch.testing.assert_close(net.branch_logit(ids), branch)  # without the network
    with pytest.raises(ValueError, match="eval mode"):
        predict_logit_parts(net.train(), ids.numpy())  # dropout on, the branch left out
    plain = build_net(arch, VOCAB, dropout=0.2, **TINY[arch]).eval()
    plain_parts = predict_logit_parts(plain, ids.numpy())
    assert (plain_parts[:, 1] == 0).all()
    with torch.no_grad():
        torch.testing.assert_close(
            torch.from_numpy(plain_parts[:, 0]), plain(ids).diff(dim=-1)[:, 0]
        )


def test_branch_weights_survive_a_state_dict_round_trip_through_the_preset() -> None:
    preset = get_preset(
        "cnn", "tuned", vocab_size=VOCAB, embedding_dim=8, channels=[6, 5, 4],
        bigram_buckets=97, ngram_buckets=BUCKETS, ngram_order=3,
    )  # fmt: skip
    torch.manual_seed(0)
    net = build_net("cnn", preset.vocab_size, **preset.net_kwargs())
    net.init_ngram_weights(*planted_corpus())
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    buffer.seek(0)
    torch.manual_seed(1)
    served = build_net("cnn", preset.vocab_size, **preset.net_kwargs())
    served.load_state_dict(torch.load(buffer, weights_only=True))
    assert "ngram_weight.weight" in net.state_dict()
    ids, _ = planted_corpus()
    net.eval()
    served.eval()
    with torch.no_grad():
        torch.testing.assert_close(served(ids), net(ids))


def test_presets_validate_the_branch_and_seed_has_none() -> None:
    for arch in ARCHS:
        assert get_preset(arch, "seed").ngram_buckets == 0
    with pytest.raises(ValueError, match="ngram_buckets"):
        get_preset("cnn", "tuned", ngram_buckets=1)
    with pytest.raises(ValueError, match="ngram_order"):
        get_preset("cnn", "tuned", ngram_order=0)
    with pytest.raises(ValueError):
        build_net("cnn", VOCAB, ngram_buckets=1, **TINY["cnn"])


def test_fitted_branch_separates_the_planted_corpus_and_is_frozen() -> None:
    net = ngram_net()
    ids, labels = planted_corpus()
    fit = net.fit_ngram_weights(ids, labels, c=1.0)
    assert fit["ngram_train_acc"] == 1.0
    assert not net.ngram_weight.weight.requires_grad and not net.ngram_bias.requires_grad
    weights = net.ngram_weight.weight[:, 0]
    assert weights[unigram_bucket(net, 5)] > 0 > weights[unigram_bucket(net, 6)]
    net.eval()
    with torch.no_grad():
        branch = net.ngram_scores(ids).sum(1) + net.ngram_bias
    assert ((branch > 0).long() == labels).all()
    # `scale` multiplies the fitted weights and bias.
    scaled = ngram_net()
    scaled.fit_ngram_weights(ids, labels, c=1.0, scale=2.0)
    torch.testing.assert_close(scaled.ngram_weight.weight, 2 * net.ngram_weight.weight)
    torch.testing.assert_close(scaled.ngram_bias, 2 * net.ngram_bias)


def test_training_mode_leaves_the_fitted_branch_out() -> None:
    net = ngram_net(seed=4)
    ids, labels = planted_corpus()
    net.fit_ngram_weights(ids, labels, c=1.0)
    net.train()
    torch.manual_seed(0)
    with_branch = net(ids)
    net.ngram_weight.weight.data.zero_()
    net.ngram_bias.data.zero_()
    torch.manual_seed(0)
    torch.testing.assert_close(net(ids), with_branch)  # training never sees the branch
    loss = torch.nn.functional.cross_entropy(with_branch, labels)
    loss.backward()
    assert net.ngram_weight.weight.grad is None


NOT = 3  # the negation word's id in the tests below (a vocabulary of <pad>, <oov>, w2, not, ...)


def negation_net(scope: int = 2) -> torch.nn.Module:
    torch.manual_seed(0)
    net = build_net(
        "dense", VOCAB, ngram_buckets=BUCKETS, ngram_order=1, ngram_negation_scope=scope,
        **TINY["dense"],
    )  # fmt: skip
    tokens = [f"w{i}" for i in range(2, VOCAB)]
    tokens[NOT - 2] = "not"
    net.set_negation_words(Vocabulary(("<pad>", "<oov>", *tokens)))
    return net


def test_negation_words_are_looked_up_in_the_vocabulary() -> None:
    net = negation_net()
    ids = dict(zip(NEGATION_WORDS, net.negation_ids.tolist(), strict=True))
    assert ids["not"] == NOT
    assert all(v == -1 for w, v in ids.items() if w != "not")  # absent words match no id


def test_the_scope_after_a_negation_word_hashes_apart() -> None:
    net = negation_net(scope=2)
    # "not 5 6 7": 5 and 6 are in the scope, 7 is past it; "not" itself is never marked.
    marked = net.negation_marked(torch.tensor([[NOT, 5, 6, 7, PAD_ID], [5, 6, 7, PAD_ID, PAD_ID]]))
    assert marked[0].tolist() == [NOT, 5 + VOCAB, 6 + VOCAB, 7, PAD_ID]
    assert marked[1].tolist() == [5, 6, 7, PAD_ID, PAD_ID]  # no negation, nothing moves
    negated = net.ngram_ids(torch.tensor([[NOT, 5]]))[0, 1, 0]
    assert negated != unigram_bucket(net, 5)
    # Without the scope the same review hashes "5" as everywhere else.
    plain = ngram_net("dense", order=1)
    assert plain.ngram_ids(torch.tensor([[NOT, 5]]))[0, 1, 0] == unigram_bucket(plain, 5)


def test_the_branch_learns_praise_and_its_denial_apart() -> None:
    """Word 5 is praise; "not 5" is in the negative reviews. Unigrams alone cannot tell them
    apart; with the negation scope the branch gives 5 and negated 5 opposite weights."""
    generator = torch.Generator().manual_seed(2)
    rows, labels = [], []
    for i in range(60):
        label = i % 2
        filler = torch.randint(10, VOCAB, (8,), generator=generator)
        head = torch.tensor([7, 5] if label else [NOT, 5])  # 7: a neutral word
        rows.append(torch.cat([head, filler]))
        labels.append(label)
    ids, target = torch.stack(rows), torch.tensor(labels)
    net = negation_net(scope=2)
    fit = net.fit_ngram_weights(ids, target, c=1.0)
    assert fit["ngram_train_acc"] == 1.0
    weights = net.ngram_weight.weight[:, 0]
    negated = int(net.ngram_ids(torch.tensor([[NOT, 5]]))[0, 1, 0])
    assert weights[unigram_bucket(net, 5)] > 0 > weights[negated]
    # The ids travel with the weights: a net built from the same settings and loaded serves them.
    served = build_net(
        "dense", VOCAB, ngram_buckets=BUCKETS, ngram_order=1, ngram_negation_scope=2,
        **TINY["dense"],
    )  # fmt: skip
    served.load_state_dict(net.state_dict())
    assert served.negation_ids.tolist() == net.negation_ids.tolist()
    net.eval()
    served.eval()
    with torch.no_grad():
        torch.testing.assert_close(served(ids), net(ids))


def test_the_negation_scope_needs_the_branch_and_its_words() -> None:
    with pytest.raises(ValueError, match="ngram_negation_scope"):
        get_preset("cnn", "tuned", ngram_buckets=0, ngram_negation_scope=2)
    with pytest.raises(ValueError, match="ngram_negation_scope"):
        build_net("dense", VOCAB, ngram_negation_scope=2, **TINY["dense"])
    unset = build_net(
        "dense", VOCAB, ngram_buckets=BUCKETS, ngram_negation_scope=2, **TINY["dense"]
    )
    with pytest.raises(ValueError, match="set_negation_words"):
        unset.fit_ngram_weights(*planted_corpus())
