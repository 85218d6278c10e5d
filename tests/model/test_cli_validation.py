"""`python -m models.train` and the flow check seeds, limits and devices before any work.

Before: `--seed -1` and `--seed 5000000000` failed 20 s later inside numpy; `--limit 2`,
`--devices gpu` and `--devices 0` gave raw tracebacks after the data had been prepared. Now each
exits with status 2 and one line naming the value, and no data is prepared.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

import models.cli
from config import get_settings
from flows.pipeline import validate_params
from models.cli import main, parse_devices
from models.tracking import NonFiniteMetricsError
from models.train import train
from tests.model.conftest import TINY_OVERRIDES


@pytest.fixture
def no_preparation(monkeypatch: pytest.MonkeyPatch) -> None:
    def prepare(*args: object, **kwargs: object) -> Path:
        raise AssertionError("data prepared before the arguments were checked")

    monkeypatch.setattr(models.cli, "prepare_dataset", prepare)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--seed", "-1"], "seed"),
        (["--seed", "5000000000"], "seed"),
        (["--seed", str(2**32)], "seed"),
        (["--limit", "2"], "limit"),
        (["--devices", "gpu"], "'gpu'"),
        (["--devices", "0"], "'0'"),
        (["--devices", "-1"], "'-1'"),
        (["--devices", "0,0"], "'0,0'"),
        (["--accelerator", "quantum"], "'quantum'"),
        (["--accelerator", "cpu", "--devices", "0,1"], "process count"),
        (["--strategy", "dpp"], "'dpp'"),
        (["--num-nodes", "0"], "num_nodes"),
        (["--log-every-n-steps", "0"], "log_every_n_steps"),
        (["--limit-batches", "0"], "limit_batches"),
    ],
)
def test_bad_arguments_exit_2_with_one_line_before_any_work(
    args: list[str], named: str, no_preparation: None, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--arch", "cnn", "--dataset", "synthetic", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ") and named in err


@pytest.mark.parametrize(
    ("text", "devices"), [("auto", "auto"), ("2", 2), ("0,1", [0, 1]), ("1,", [1])]
)
def test_devices_accepted(text: str, devices: object) -> None:
    assert parse_devices(text) == devices


def test_valid_seed_bounds_pass_the_cli(no_preparation: None) -> None:
    for seed in ("0", str(2**32 - 1)):  # checked, then data preparation is reached
        with pytest.raises(AssertionError, match="data prepared"):
            main(["--arch", "cnn", "--dataset", "synthetic", "--seed", seed])


@pytest.mark.parametrize("seed", [-1, 2**32, 5_000_000_000])
def test_train_refuses_bad_seed_before_any_run(tiny_prepared: Path, seed: int) -> None:
    client = MlflowClient(get_settings().mlflow_tracking_uri)
    experiment = client.get_experiment_by_name(get_settings().experiment_name)
    before = len(client.search_runs([experiment.experiment_id])) if experiment else 0
    with pytest.raises(ValueError, match="seed"):
        train("cnn", tiny_prepared, overrides=TINY_OVERRIDES, seed=seed)
    experiment = client.get_experiment_by_name(get_settings().experiment_name)
    assert (len(client.search_runs([experiment.experiment_id])) if experiment else 0) == before


@pytest.mark.parametrize("seed", [-1, 2**32, 5_000_000_000])
def test_flow_refuses_bad_seed(seed: int) -> None:
    """The flow's `seed` parameter type carries the bounds (so deployments check them too)."""
    with pytest.raises(ValueError, match="seed"):
        validate_params(seed=seed)
    assert validate_params(seed=2**32 - 1).seed == 2**32 - 1


def test_cli_reports_a_diverged_run_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    def diverged(*args: object, **kwargs: object) -> None:
        raise NonFiniteMetricsError("training diverged: test_loss=nan (run x, marked FAILED)")

    monkeypatch.setattr(models.cli, "prepare_dataset", lambda *a, **k: tmp_path)
    monkeypatch.setattr(models.cli, "train", diverged)
    with pytest.raises(SystemExit) as exit_info:
        main(["--arch", "cnn", "--dataset", "synthetic"])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.strip() == (
        "error: training diverged: test_loss=nan (run x, marked FAILED)"
    )
