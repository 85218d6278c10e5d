"""Training, tracking and the raw-text model, on one tiny configuration trained once per session."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.image import imread
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from analysis.common.artifacts import logged_model
from analysis.errors.predict import predict
from config import get_settings
from data.prepare import PreparedData
from models.calibration import binary_logits, fit_temperature
from models.cli import build_parser, main
from models.networks import build_net
from models.presets import ARCHS, PRESETS, get_preset
from models.pyfunc import SentimentModel
from models.registry import registered_name
from models.scores import SplitScores
from models.tracking import TrackingUnavailableError, check_tracking_server
from models.train import TrainResult, train
from tests.model.conftest import (
    TINY_LIMIT_BATCHES,
    TINY_OVERRIDES,
    TINY_SEED,
    free_port,
    train_tiny,
)

TEST_METRICS = ("test_loss", "test_acc", "test_f1", "test_roc_auc")


@pytest.fixture(scope="module")
def client() -> MlflowClient:
    return MlflowClient(get_settings().mlflow_tracking_uri)


def n_runs(client: MlflowClient) -> int:
    experiment = client.get_experiment_by_name(get_settings().experiment_name)
    if experiment is None:
        return 0
    return len(client.search_runs([experiment.experiment_id], max_results=1000))


# ---------------------------------------------------------------- tracking contents


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHS)
def test_run_tags_and_params(trained: dict[str, TrainResult], client: MlflowClient, arch: str):
    result = trained[arch]
    run = client.get_run(result.run_id)
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == "imdb-sentiment"
    assert run.info.status == "FINISHED"
    data = PreparedData.load(run.data.params["prepared_dir"])
    tags = run.data.tags
    assert tags["arch"] == arch
    assert tags["dataset"] == "synthetic"
    assert tags["data_hash"] == data.data_hash
    assert tags["preset"] == "tuned"
    assert tags["git_commit"] == "unknown" or len(tags["git_commit"]) == 40
    params = run.data.params
    preset = get_preset(arch, "tuned", **TINY_OVERRIDES)
    for key, value in preset.model_dump(exclude={"name"}).items():
        assert params[key] == str(value), key
    assert params["seed"] == str(TINY_SEED)
    assert params["devices"] == "1"
    assert params["dataset"] == "synthetic"
    assert params["limit_batches"] == str(TINY_LIMIT_BATCHES)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHS)
def test_metric_histories(trained: dict[str, TrainResult], client: MlflowClient, arch: str):
    result = trained[arch]
    epochs = TINY_OVERRIDES["epochs"]
    train_loss = client.get_metric_history(result.run_id, "train_loss")
    train_acc = client.get_metric_history(result.run_id, "train_acc")
    # Per batch: one point per optimizer step, at distinct steps.
    assert len(train_loss) == epochs * TINY_LIMIT_BATCHES
    assert len({m.step for m in train_loss}) == len(train_loss)
    assert len(train_acc) == len(train_loss)
    assert all(0 <= m.value <= 1 for m in train_acc)
    # Per epoch.
    for key in ("val_loss", "val_acc"):
        assert len(client.get_metric_history(result.run_id, key)) == epochs, key
    metrics = client.get_run(result.run_id).data.metrics
    for key in TEST_METRICS:
        assert metrics[key] == pytest.approx(result.metrics[key]), key
    for key in ("test_acc", "test_f1", "test_roc_auc"):
        assert 0 <= metrics[key] <= 1
    assert metrics["n_parameters"] == result.n_parameters > 0
    assert (
        metrics["train_seconds"] == pytest.approx(result.train_seconds) and result.train_seconds > 0
    )


@pytest.mark.slow
def test_synthetic_corpus_is_learnable(trained: dict[str, TrainResult]):
    # Sanity check that training does something: a few batches already beat chance on AUC.
    assert max(r.metrics["test_roc_auc"] for r in trained.values()) > 0.6


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHS)
def test_figures_and_artifact_location(
    trained: dict[str, TrainResult], client: MlflowClient, arch: str, training_cwd: Path
):
    result = trained[arch]
    run = client.get_run(result.run_id)
    root = get_settings().mlflow_artifact_root.resolve()
    assert run.info.artifact_uri.startswith(root.as_uri())
    assert not (training_cwd / "mlruns").exists()
    local = Path(mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path=""))
    for name, min_width in (("training_curves.png", 1000), ("confusion_matrix.png", 400)):
        image = imread(local / name)
        assert image.shape[1] >= min_width, name  # big enough to read
        assert image[..., :3].std() > 0.05, name  # not a blank canvas


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHS)
def test_best_checkpoint_and_registration(
    trained: dict[str, TrainResult], client: MlflowClient, arch: str
):
    result = trained[arch]
    checkpoint = Path(result.best_checkpoint)
    assert checkpoint.parent == get_settings().output_dir / "checkpoints" / result.run_id
    assert checkpoint.exists()
    assert result.model_uri.startswith("models:/m-")
    assert result.registered_version is not None
    version = client.get_model_version(registered_name(arch), str(result.registered_version))
    assert version.run_id == result.run_id
    assert version.aliases == []  # promotion is someone else's decision


@pytest.mark.slow
def test_register_model_later(trained: dict[str, TrainResult], client: MlflowClient):
    from models.train import register_model

    result = trained["dense"]
    version = register_model(result.run_id, "dense")
    assert version > result.registered_version
    assert client.get_model_version(registered_name("dense"), str(version)).run_id == result.run_id


# ---------------------------------------------------------------- raw-text model


@pytest.fixture(scope="module")
def cnn_model(trained: dict[str, TrainResult]) -> mlflow.pyfunc.PyFuncModel:
    version = trained["cnn"].registered_version
    return mlflow.pyfunc.load_model(f"models:/{registered_name('cnn')}/{version}")


def checkpoint_net(result: TrainResult) -> torch.nn.Module:
    """The best checkpoint's network, without MLflow."""
    preset = get_preset(result.arch, "tuned", **TINY_OVERRIDES)
    net = build_net(result.arch, preset.vocab_size, **preset.net_kwargs())
    state = torch.load(result.best_checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    net.load_state_dict(
        {k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")}
    )
    return net.eval()


def checkpoint_probs(result: TrainResult, ids: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """P(positive) from the best checkpoint's weights, logits divided by `temperature`."""
    with torch.no_grad():
        logits = checkpoint_net(result)(torch.as_tensor(ids))
        return (logits / temperature).softmax(-1)[:, 1].numpy()


@pytest.mark.slow
def test_pyfunc_matches_checkpoint_and_test_accuracy(
    trained: dict[str, TrainResult], cnn_model: mlflow.pyfunc.PyFuncModel, tiny_prepared: Path
):
    result = trained["cnn"]
    test, ids = PreparedData.load(tiny_prepared).split("test")
    predictions = cnn_model.predict(pd.DataFrame({"review": test["text"]}))
    assert list(predictions.columns) == ["label", "prob_positive"]
    assert set(predictions["label"].unique()) <= {0, 1}
    assert predictions["prob_positive"].between(0, 1).all()
    # Served probabilities are temperature-scaled (calibration.json): the checkpoint's logits / T.
    temperature = cnn_model.unwrap_python_model().temperature
    np.testing.assert_allclose(
        predictions["prob_positive"], checkpoint_probs(result, ids, temperature), atol=1e-5
    )
    # Raw text in, the logged test accuracy out: same vocabulary and standardisation.
    accuracy = float((predictions["label"].to_numpy() == test["label"].to_numpy()).mean())
    assert accuracy == pytest.approx(result.metrics["test_acc"], abs=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHS)
def test_test_pass_scores_are_what_the_analysis_would_compute(
    trained: dict[str, TrainResult], tiny_prepared: Path, arch: str
):
    """Training's test pass keeps each review's P(positive) and latent vector, in the split's
    order, so the analysis need not score the test split again: they are the logged network's."""
    result = trained[arch]
    assert result.test_scores is not None
    scores = SplitScores.load(result.test_scores)
    test, ids = PreparedData.load(tiny_prepared).split("test")
    assert scores.matches(test["review_id"])
    assert not scores.matches(test["review_id"].iloc[::-1])
    net = logged_model(result.model_uri).net
    prob, latent, logit = predict(net, ids, progress=False)
    np.testing.assert_allclose(scores.prob_positive, prob, atol=1e-6)
    np.testing.assert_allclose(scores.logit, logit, atol=1e-5)
    np.testing.assert_allclose(scores.latent, latent, atol=1e-5)
    accuracy = float(((scores.prob_positive >= 0.5) == test["label"].to_numpy()).mean())
    assert accuracy == pytest.approx(result.metrics["test_acc"], abs=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHS)
def test_temperature_is_fitted_on_validation_and_served(
    trained: dict[str, TrainResult], client: MlflowClient, arch: str, tiny_prepared: Path
):
    result = trained[arch]
    run = client.get_run(result.run_id)
    metrics, params = run.data.metrics, run.data.params
    # The logged T is the NLL-optimal one for the best checkpoint's validation logits.
    val, ids = PreparedData.load(tiny_prepared).split("val")
    margins = binary_logits(checkpoint_net(result), ids)
    expected = fit_temperature(margins, val["label"].to_numpy())
    assert metrics["temperature"] == pytest.approx(expected, rel=1e-4)
    assert float(params["temperature"]) == pytest.approx(metrics["temperature"])
    assert metrics["val_nll_calibrated"] <= metrics["val_nll"] + 1e-9
    model = mlflow.pyfunc.load_model(result.model_uri).unwrap_python_model()
    assert model.temperature == pytest.approx(metrics["temperature"])


@pytest.mark.slow
def test_pyfunc_by_runs_uri_and_list_input(
    trained: dict[str, TrainResult], cnn_model: mlflow.pyfunc.PyFuncModel
):
    texts = ["A brilliant, moving film.", "Dull and tedious <br /> from start to end.", ""]
    by_name = cnn_model.predict(pd.DataFrame({"review": texts, "other": [1, 2, 3]}))
    by_run = mlflow.pyfunc.load_model(trained["cnn"].model_uri)
    pd.testing.assert_frame_equal(by_run.predict(pd.DataFrame({"review": texts})), by_name)
    # Unwrapped (as the error analysis uses it), a plain list works too.
    unwrapped = by_run.unwrap_python_model()
    pd.testing.assert_frame_equal(unwrapped.predict(None, texts), by_name)
    assert len(by_name) == 3 and np.isfinite(by_name["prob_positive"]).all()  # "" is scored


@pytest.mark.slow
def test_unwrapped_model_exposes_what_analysis_needs(cnn_model: mlflow.pyfunc.PyFuncModel):
    model = cnn_model.unwrap_python_model()
    assert isinstance(model, SentimentModel)
    assert not model.net.training
    assert next(model.net.parameters()).device.type == "cpu"
    assert model.max_len == TINY_OVERRIDES["max_len"] == model.preset.max_len
    assert model.preset.arch == "cnn"
    ids = model.encode(["The plot was brilliant", ""])
    assert ids.shape == (2, model.max_len) and ids.dtype == np.int64
    assert model.vocab.decode(ids[0]) == ["the", "plot", "was", "brilliant"]
    assert (ids[1] == 0).all()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"text": ["good"]}), "review"),
        (pd.DataFrame({"review": [1, 2]}), "review"),
        (pd.DataFrame({"review": ["fine", None]}), "review"),
    ],
)
def test_pyfunc_rejects_bad_input_clearly(
    cnn_model: mlflow.pyfunc.PyFuncModel, frame: pd.DataFrame, message: str
):
    with pytest.raises(MlflowException, match=message):
        cnn_model.predict(frame)


@pytest.mark.slow
@pytest.mark.parametrize("bad", [[1, 2], ["fine", None], {"review": "x"}, 3.5])
def test_unwrapped_rejects_non_strings(cnn_model: mlflow.pyfunc.PyFuncModel, bad: object):
    with pytest.raises(MlflowException, match="string"):
        cnn_model.unwrap_python_model().predict(None, bad)


# ---------------------------------------------------------------- validation before any work


@pytest.mark.parametrize(
    ("arch", "preset", "overrides", "message"),
    [
        ("lstm", "tuned", {}, "dense, cnn"),
        ("cnn", "huge", {}, ", ".join(PRESETS)),
        ("cnn", "tuned", {"embedding_dim": -3}, "embedding_dim"),
        ("dense", "tuned", {"dropout": 1.5}, "dropout"),
        ("cnn", "tuned", {"kernel_size": 4}, "odd"),
        ("cnn", "tuned", {"learning_rate": 0}, "learning_rate"),
        ("dense", "tuned", {"epochs": "many"}, "epochs"),
        ("dense", "tuned", {"hidden_size": 8}, "hidden_size"),
    ],
)
def test_bad_configuration_rejected_before_any_work(
    tiny_prepared: Path,
    client: MlflowClient,
    arch: str,
    preset: str,
    overrides: dict,
    message: str,
):
    before = n_runs(client)
    with pytest.raises(ValueError, match=message):
        train(arch, tiny_prepared, preset=preset, overrides={**TINY_OVERRIDES, **overrides})
    assert n_runs(client) == before


def test_data_prepared_for_another_preset_rejected(tiny_prepared: Path, client: MlflowClient):
    before = n_runs(client)
    with pytest.raises(ValueError, match="max_len"):
        train("cnn", tiny_prepared, overrides={**TINY_OVERRIDES, "max_len": 128})
    with pytest.raises(ValueError, match="limit_batches"):
        train("cnn", tiny_prepared, overrides=TINY_OVERRIDES, limit_batches=0)
    with pytest.raises(FileNotFoundError, match="no prepared data"):
        train("cnn", tiny_prepared / "missing", overrides=TINY_OVERRIDES)
    assert n_runs(client) == before


def test_unreachable_tracking_server_fails_fast(
    tiny_prepared: Path, monkeypatch: pytest.MonkeyPatch
):
    uri = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    get_settings.cache_clear()
    try:
        start = time.monotonic()
        with pytest.raises(TrackingUnavailableError, match=uri):
            train("cnn", tiny_prepared, overrides=TINY_OVERRIDES)
        assert time.monotonic() - start < 15
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        mlflow.set_tracking_uri(get_settings().mlflow_tracking_uri)


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.send_response(self.status)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(("status", "reachable"), [(200, True), (404, True), (503, False)])
def test_health_probe(status: int, reachable: bool):
    handler = type("Handler", (_Health,), {"status": status})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    uri = f"http://127.0.0.1:{server.server_port}"
    try:
        if reachable:
            check_tracking_server(uri)
        else:
            with pytest.raises(TrackingUnavailableError, match="HTTP 503"):
                check_tracking_server(uri)
    finally:
        server.shutdown()
        server.server_close()
    check_tracking_server("sqlite:///nowhere/mlflow.db")  # no server to probe


# ---------------------------------------------------------------- reproducibility and CLI


@pytest.mark.slow
def test_same_seed_same_model(trained: dict[str, TrainResult], tiny_prepared: Path):
    again = train_tiny(tiny_prepared, "dense", register=False, run_name="dense-repeat")
    first = trained["dense"]
    assert again.run_id != first.run_id and again.registered_version is None
    for key in ("test_loss", "test_roc_auc", "best_val_loss"):
        assert again.metrics[key] == pytest.approx(first.metrics[key], abs=1e-6), key
    a = torch.load(first.best_checkpoint, weights_only=False)["state_dict"]
    b = torch.load(again.best_checkpoint, weights_only=False)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cli_help_and_bad_arguments(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    for option in ("--arch", "--devices", "--strategy", "--accelerator", "--num-nodes", "--limit"):
        assert option in help_text
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--arch", "rnn"])
    with pytest.raises(SystemExit) as exit_info:
        main(["--arch", "cnn", "--dataset", "synthetic", "--set", "embedding_dim=0"])
    assert exit_info.value.code == 2 and "embedding_dim" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_trains_and_prints_result(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    args = ["--arch", "dense", "--dataset", "synthetic", "--seed", str(TINY_SEED)]
    for key, value in TINY_OVERRIDES.items():
        args += ["--set", f"{key}={json.dumps(value)}"]
    args += ["--epochs", "1", "--accelerator", "cpu", "--devices", "1", "--limit-batches", "2"]
    result = main([*args, "--no-register", "--limit", "400"])
    out = capsys.readouterr().out
    printed = json.loads(out[out.rindex('{\n  "arch"') :])
    assert printed["run_id"] == result.run_id
    assert result.registered_version is None
    assert result.epochs_trained == 1
    params = MlflowClient().get_run(result.run_id).data.params
    assert params["limit"] == "400"
    assert params["epochs"] == "1"
    assert int(params["n_test"]) == 400  # `--limit` reviews per split, test scored whole
    # Short epochs are logged at every step by default, so the curves are never empty.
    assert len(MlflowClient().get_metric_history(result.run_id, "train_loss")) == 2


@pytest.mark.slow
def test_both_models_of_one_data_version_carry_the_same_fitted_ngram_branch(
    trained: dict[str, TrainResult],
):
    """The branch depends on the data alone: one fit, shared by the dense model and the CNN."""
    nets = {arch: logged_model(result.model_uri).net for arch, result in trained.items()}
    assert all(net.ngram_weight is not None for net in nets.values())
    dense, cnn = nets["dense"], nets["cnn"]
    assert dense.ngram_weight.weight.abs().sum() > 0  # fitted, not the zeros it starts from
    torch.testing.assert_close(dense.ngram_weight.weight, cnn.ngram_weight.weight)
    torch.testing.assert_close(dense.ngram_bias, cnn.ngram_bias)
    assert (
        trained["dense"].metrics["ngram_train_loss"] == trained["cnn"].metrics["ngram_train_loss"]
    )
