"""Flow parameters are checked before any work, and the CLI names the bad value."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import flows.pipeline
from analysis.common.thresholds import DEFAULT_THRESHOLDS, Thresholds
from config import PROJECT_ROOT
from flows.pipeline import (
    PipelineParams,
    build_parser,
    imdb_sentiment,
    parse_epochs,
    validate_params,
)


def test_defaults_are_both_archs_on_imdb_with_the_tuned_preset() -> None:
    params = validate_params()
    assert (params.dataset, params.archs, params.preset) == ("imdb", ["dense", "cnn"], "tuned")
    assert (params.epochs, params.devices, params.thresholds) == ({}, "auto", DEFAULT_THRESHOLDS)


def test_parameters_are_declared_once_by_the_flow_signature() -> None:
    names = list(inspect.signature(imdb_sentiment.fn).parameters)
    assert list(PipelineParams.model_fields) == names
    flags = {action.dest for action in build_parser()._actions} - {"help"}
    assert flags == set(names)


def test_drop_label_issues_is_off_by_default_and_a_switch() -> None:
    assert validate_params().drop_label_issues is False
    raw = vars(build_parser().parse_args(["--drop-label-issues"]))
    assert raw == {"drop_label_issues": True}
    assert validate_params(**raw).drop_label_issues is True


def test_values_are_converted_and_archs_deduplicated() -> None:
    params = validate_params(
        archs=["cnn", "dense", "cnn"],
        devices="2",
        limit="120",
        epochs={"cnn": 3},
        thresholds={"loss_rise": 0.2},
    )
    assert (params.archs, params.devices, params.limit) == (["cnn", "dense"], 2, 120)
    assert params.thresholds == Thresholds(loss_rise=0.2)


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"archs": ["transformer"]}, ["'transformer'", "dense", "cnn"]),
        ({"dataset": "yelp"}, ["'yelp'", "imdb", "synthetic"]),
        ({"preset": "huge"}, ["'huge'", "seed", "tuned"]),
        ({"epochs": {"cnn": 0}}, ["epochs", "cnn"]),
        ({"limit": 1}, ["limit", "1"]),
        ({"devices": "many"}, ["devices", "'many'"]),
        ({"data_path": "/nowhere/aclImdb_v1.tar.gz"}, ["/nowhere/aclImdb_v1.tar.gz"]),
        ({"archs": []}, ["archs"]),
        ({"thresholds": {"loss_rise": -1}}, ["thresholds.loss_rise", "-1"]),
        ({"thresholds": {"n_bootstrap": 10}}, ["n_bootstrap"]),
        ({"bogus": 1}, ["bogus"]),
    ],
)
def test_bad_parameters_name_the_parameter_and_value(raw: dict, named: list[str]) -> None:
    with pytest.raises(ValueError) as error:
        validate_params(**raw)
    for text in named:
        assert text in str(error.value)


def test_epochs_flag_accepts_one_count_or_one_per_arch() -> None:
    assert parse_epochs("3", ["dense", "cnn"]) == {"dense": 3, "cnn": 3}
    assert parse_epochs("dense=2,cnn=5", ["dense", "cnn"]) == {"dense": 2, "cnn": 5}
    assert parse_epochs(None, ["dense"]) == {}
    with pytest.raises(SystemExit, match="--epochs"):
        parse_epochs("dense:2", ["dense"])


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """`python -m flows.pipeline ARGS`, as a user runs it (a fresh process: ~10 s of imports)."""
    return subprocess.run(
        [sys.executable, "-m", "flows.pipeline", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def rejected(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> str:
    """The CLI's error for ARGS, in-process; the flow must not start (no work, no server)."""

    def started(**_: object) -> None:
        raise AssertionError(f"the flow started despite {args}")

    monkeypatch.setattr(flows.pipeline, "imdb_sentiment", started)
    with pytest.raises(SystemExit) as exited:
        flows.pipeline.main(list(args))
    assert exited.value.code == 2
    return capsys.readouterr().err


def test_cli_rejects_an_unknown_arch_before_any_work(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    error = rejected(monkeypatch, capsys, "--archs", "dense,transformer")
    assert "'transformer'" in error and "'dense' or 'cnn'" in error


def test_cli_rejects_bad_thresholds_before_any_work(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "thresholds.loss_rise" in rejected(
        monkeypatch, capsys, "--thresholds", '{"loss_rise": -1}'
    )
    assert "JSON object" in rejected(monkeypatch, capsys, "--thresholds", "loss_rise=0.2")


def test_cli_help_lists_the_flags() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for flag in (
        "--dataset",
        "--data-path",
        "--archs",
        "--preset",
        "--epochs",
        "--limit",
        "--seed",
        "--devices",
        "--no-promote",
        "--allow-regression",
        "--thresholds",
    ):
        assert flag in result.stdout
