"""Hyperparameters are finite and bounded: a typo or an overflow fails before any work.

Before the bounds, `--set learning_rate=Infinity` trained, logged test_loss NaN and registered a
version that could not be loaded (preset.json stored infinity as null); `learning_rate=1e30`
registered a model predicting NaN; `max_len=10000000` ran to 6 GB before it was killed.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from pydantic import ValidationError

import models.cli
from models import presets
from models.cli import main
from models.presets import ARCHS, PRESETS, Preset, get_preset
from models.train import resolve_preset

INF, NAN = math.inf, math.nan


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_is_within_the_bounds_and_round_trips(arch: str, name: str) -> None:
    preset = get_preset(arch, name)
    assert Preset.model_validate_json(preset.model_dump_json()) == preset


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("learning_rate", INF),
        ("learning_rate", 1e30),
        ("learning_rate", NAN),
        ("weight_decay", INF),
        ("weight_decay", 1e9),
        ("dropout", NAN),
        ("word_dropout", -INF),
        ("max_len", 10_000_000),
        ("vocab_size", 10**9),
        ("embedding_dim", 100_000),
        ("hidden_dim", 1_000_000),
        ("channels", [64, 64, 10**7]),
        ("kernel_size", 1_001),
        ("batch_size", 10**7),
        ("epochs", 10**6),
        ("bigram_buckets", 2**40),
        ("position_gain", 0.0),
        ("position_gain", INF),
    ],
)
def test_out_of_range_or_non_finite_values_are_rejected(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as error:
        get_preset("cnn", "tuned", **{field: value})
    assert field in str(error.value)
    with pytest.raises(ValueError, match=field):  # what train() and the CLI report
        resolve_preset("cnn", "tuned", {field: value})


def test_embedding_tables_are_bounded_together() -> None:
    """Each size within its bound, but together an 8 GiB table: refused, naming the product."""
    with pytest.raises(ValidationError, match="embedding parameters"):
        get_preset("dense", "tuned", vocab_size=1_000_000, embedding_dim=1_024, bigram_buckets=0)


def test_bounds_are_documented_in_the_field_descriptions() -> None:
    bounds = {
        "vocab_size": presets.MAX_VOCAB_SIZE,
        "max_len": presets.MAX_LEN,
        "embedding_dim": presets.MAX_EMBEDDING_DIM,
        "hidden_dim": presets.MAX_HIDDEN_DIM,
        "channels": presets.MAX_CHANNELS,
        "kernel_size": presets.MAX_KERNEL_SIZE,
        "bigram_buckets": presets.MAX_BIGRAM_BUCKETS,
        "epochs": presets.MAX_EPOCHS,
        "batch_size": presets.MAX_BATCH_SIZE,
        "learning_rate": presets.MAX_LEARNING_RATE,
        "weight_decay": presets.MAX_WEIGHT_DECAY,
    }
    for name, bound in bounds.items():
        assert f"{bound:,}" in (Preset.model_fields[name].description or ""), name
        too_big = bound * 2 if name != "channels" else [8, 8, bound * 2]
        with pytest.raises(ValidationError, match=name):
            get_preset("cnn", "tuned", **{name: too_big})


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("learning_rate=Infinity", "finite"),
        ("learning_rate=NaN", "finite"),
        ("learning_rate=1e30", "less than or equal to 1"),
        ("max_len=10000000", "max_len"),
    ],
)
def test_cli_refuses_before_preparing_data(
    override: str, named: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    def no_preparation(*args: object, **kwargs: object) -> Path:
        raise AssertionError("data prepared before the hyperparameters were checked")

    monkeypatch.setattr(models.cli, "prepare_dataset", no_preparation)
    with pytest.raises(SystemExit) as exit_info:
        main(["--arch", "cnn", "--dataset", "synthetic", "--set", override])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and named in err and override.split("=")[0] in err
