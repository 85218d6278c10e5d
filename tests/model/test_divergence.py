"""A run whose metrics are not finite ends FAILED in MLflow and is never logged or registered.

Before: a diverged run (test_loss NaN, a model predicting NaN for every review) was logged,
FINISHED and registered like any other, and its version failed or scored NaN later.
"""

from __future__ import annotations

import math
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from torch import Tensor, nn

import models.train
from config import get_settings
from data.text import Vocabulary
from models.networks import build_net
from models.presets import get_preset
from models.pyfunc import log_sentiment_model
from models.registry import registered_name
from models.tracking import NonFiniteMetricsError, configure_tracking, fail_run_if_not_finite
from tests.model.conftest import TINY_OVERRIDES, train_tiny


class NaNOutput(nn.Module):
    """A network gone numerically wrong: every logit NaN, so every loss and gradient too."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, ids: Tensor) -> Tensor:
        return self.net(ids) * math.nan

    def logits_and_latent(self, ids: Tensor) -> tuple[Tensor, Tensor]:  # the test pass's scores
        logits, latent = self.net.logits_and_latent(ids)
        return logits * math.nan, latent


def _client() -> MlflowClient:
    return MlflowClient(get_settings().mlflow_tracking_uri)


def _versions(arch: str) -> list[str]:
    return [v.version for v in _client().search_model_versions(f"name='{registered_name(arch)}'")]


@pytest.mark.slow
def test_diverged_training_fails_its_run_and_registers_nothing(
    tiny_prepared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_build_net = models.train.build_net
    monkeypatch.setattr(
        models.train,
        "build_net",
        lambda *args, **kwargs: NaNOutput(real_build_net(*args, **kwargs)),
    )
    before = _versions("cnn")
    with pytest.raises(NonFiniteMetricsError, match=r"test_loss=nan") as error:
        train_tiny(tiny_prepared, "cnn", register=True, run_name="diverged")
    assert _versions("cnn") == before

    experiment = _client().get_experiment_by_name(get_settings().experiment_name)
    (run,) = _client().search_runs(
        [experiment.experiment_id], filter_string="attributes.run_name = 'diverged'"
    )
    assert run.info.run_id in str(error.value)
    assert run.info.status == "FAILED"
    assert math.isnan(run.data.metrics["test_loss"])  # logged, so the run shows why
    assert "diverged" in run.data.tags["failure"]
    assert not _client().list_artifacts(run.info.run_id, "model")


def test_a_run_with_an_infinite_metric_is_marked_failed() -> None:
    client = _client()
    experiment_id = configure_tracking()
    run_id = client.create_run(experiment_id, run_name="infinite-loss").info.run_id
    client.set_terminated(run_id, "FINISHED")  # as Lightning leaves it after testing
    fail_run_if_not_finite(run_id, {"test_loss": 0.3})  # finite: nothing happens
    assert client.get_run(run_id).info.status == "FINISHED"
    with pytest.raises(NonFiniteMetricsError, match="test_loss=inf"):
        fail_run_if_not_finite(run_id, {"test_loss": math.inf, "test_acc": 0.5})
    assert client.get_run(run_id).info.status == "FAILED"
    with pytest.raises(NonFiniteMetricsError):  # other DDP ranks: raise, leave the run alone
        fail_run_if_not_finite(run_id, {"test_loss": math.nan}, mark_run=False)


def test_a_model_predicting_nan_is_not_logged() -> None:
    preset = get_preset("dense", "tuned", **TINY_OVERRIDES)
    net = NaNOutput(build_net("dense", preset.vocab_size, **preset.net_kwargs()))
    vocab = Vocabulary.build([["a", "wonderful", "film"]], max_size=preset.vocab_size)
    with (
        mlflow.start_run(experiment_id=configure_tracking()) as run,
        pytest.raises(NonFiniteMetricsError, match="not finite"),
    ):
        log_sentiment_model(net, preset, vocab)
    assert not _client().list_artifacts(run.info.run_id, "model")
