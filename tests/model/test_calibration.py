"""Temperature scaling (models/calibration.py) and the temperature the raw-text model serves."""

from __future__ import annotations

import json
import math
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch

from data.text import Vocabulary, encode_texts
from models.calibration import (
    TEMPERATURE_BOUNDS,
    Calibration,
    apply_temperature,
    apply_temperature_to_logits,
    binary_logits,
    binary_nll,
    fit_calibration,
    fit_temperature,
    logits_from_probs,
    sigmoid,
)
from models.networks import build_net
from models.presets import get_preset
from models.pyfunc import ARTIFACT_CALIBRATION, SentimentModel, model_artifacts
from tests.model.conftest import TINY_OVERRIDES

PLANTED_T = 3.0
REVIEWS = ["A great and moving film.", "Dull, awful plot.", "film plot", "great great great"]


def planted(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """True logits z and labels drawn from sigmoid(z): a calibrated model would output z."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 2.0, n)
    return z, (rng.random(n) < sigmoid(z)).astype(np.int64)


def test_fit_temperature_recovers_a_planted_temperature():
    z, y = planted(20_000)
    # An over-confident model: its logits are the true ones x 3, so dividing by T = 3 undoes it.
    assert fit_temperature(z * PLANTED_T, y) == pytest.approx(PLANTED_T, abs=0.15)
    # An under-confident one (logits / 2) gets T ~ 0.5; a calibrated one T ~ 1.
    assert fit_temperature(z / 2, y) == pytest.approx(0.5, abs=0.03)
    assert fit_temperature(z, y) == pytest.approx(1.0, abs=0.05)


def test_the_fitted_temperature_minimises_the_nll():
    z, y = planted(5_000, seed=1)
    t = fit_temperature(z * PLANTED_T, y)
    best = binary_nll(z * PLANTED_T, y, t)
    for other in (t * 0.9, t * 1.1, 1.0):
        assert binary_nll(z * PLANTED_T, y, other) > best


@pytest.mark.parametrize(
    ("logits", "labels"),
    [
        (np.zeros(0), np.zeros(0)),  # no reviews
        (np.array([2.0, -1.0, 3.0]), np.array([1, 1, 1])),  # one class only
        (np.array([2.0, np.nan, -3.0]), np.array([1, 0, 0])),  # a diverged network
        (np.array([np.inf, -1.0]), np.array([1, 0])),
        (np.zeros(4), np.array([0, 1, 0, 1])),  # constant logits: every T fits equally
    ],
)
def test_temperature_is_one_when_it_cannot_be_fitted(logits: np.ndarray, labels: np.ndarray):
    assert fit_temperature(logits, labels) == 1.0


def test_a_separable_split_stops_at_the_bound():
    # Perfectly separated: the NLL falls forever as T shrinks; the bound holds it.
    t = fit_temperature(np.array([-2.0, -1.0, 1.0, 2.0]), np.array([0, 0, 1, 1]))
    assert t == pytest.approx(TEMPERATURE_BOUNDS[0], rel=1e-3)


def test_fit_temperature_rejects_bad_inputs():
    with pytest.raises(ValueError, match="same length"):
        fit_temperature(np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="0 or 1"):
        fit_temperature(np.zeros(2), np.array([0, 2]))


def test_applying_t_equal_one_is_the_identity():
    p = np.array([0.0, 1e-9, 0.2, 0.5, 0.9, 1.0])
    np.testing.assert_array_equal(apply_temperature(p, 1.0), p)
    z = np.array([-30.0, -1.0, 0.0, 4.0, 40.0])
    np.testing.assert_array_equal(apply_temperature_to_logits(z, 1.0), sigmoid(z))


def test_applying_a_temperature_divides_the_logit():
    p = np.array([0.1, 0.5, 0.8, 0.99])
    logit = np.log(p / (1 - p))
    np.testing.assert_allclose(apply_temperature(p, 2.0), 1 / (1 + np.exp(-logit / 2)))
    # 0 and 1 are clipped, not inf: they move toward 0.5 and keep their side.
    ends = apply_temperature(np.array([0.0, 1.0]), 4.0)
    assert np.isfinite(ends).all() and 0 < ends[0] < 0.5 < ends[1] < 1
    assert np.isfinite(logits_from_probs(np.array([0.0, 1.0]))).all()
    # No label changes: the sign of the logit is kept.
    z = np.array([-5.0, -0.1, 0.1, 5.0])
    assert ((apply_temperature_to_logits(z, 7.0) > 0.5) == (z > 0)).all()
    for bad in (0.0, -1.0, math.nan, math.inf, True):
        with pytest.raises(ValueError, match="temperature"):
            apply_temperature(p, bad)


def test_fit_calibration_records_the_nll_it_saves(tmp_path: Path):
    z, y = planted(4_000, seed=2)
    calibration = fit_calibration(z * PLANTED_T, y)
    assert calibration.split == "val" and calibration.n_reviews == 4_000
    assert calibration.nll_calibrated < calibration.nll
    assert calibration.nll == pytest.approx(binary_nll(z * PLANTED_T, y))
    assert calibration.metrics() == {
        "temperature": calibration.temperature,
        "val_nll": calibration.nll,
        "val_nll_calibrated": calibration.nll_calibrated,
    }
    path = tmp_path / "calibration.json"
    calibration.save(path)
    assert Calibration.load(path) == calibration
    assert Calibration.load(tmp_path / "missing.json").temperature == 1.0
    assert Calibration.load(None).temperature == 1.0
    path.write_text(json.dumps({"temperature": -2.0}))
    with pytest.raises(ValueError, match="temperature"):
        Calibration.load(path)


def tiny_net() -> tuple[torch.nn.Module, Vocabulary]:
    preset = get_preset("cnn", "tuned", **TINY_OVERRIDES)
    torch.manual_seed(0)
    net = build_net("cnn", preset.vocab_size, **preset.net_kwargs()).eval()
    vocab = Vocabulary.build([["dull", "great", "film", "plot", "awful", "moving"]], 500)
    # Random weights give logits near 0; the head is scaled so the largest margin of REVIEWS is
    # 3 (P ~ 0.95): a temperature then visibly changes the probabilities, none saturates.
    margins = binary_logits(net, encode_texts(REVIEWS, vocab, preset.max_len).ids)
    with torch.no_grad():
        for p in net.head.parameters():
            p.mul_(3.0 / np.abs(margins).max())
    return net, vocab


def test_binary_logits_are_the_softmax_margin():
    net, vocab = tiny_net()
    ids = np.random.default_rng(0).integers(0, 8, size=(10, 12))
    with torch.no_grad():
        probs = net(torch.as_tensor(ids)).softmax(-1)[:, 1].numpy()
    margins = binary_logits(net.train(), ids, batch_size=3)
    np.testing.assert_allclose(sigmoid(margins), probs, atol=1e-6)
    assert net.training  # the mode is restored


def save_model(path: Path, calibration: Calibration | None) -> mlflow.pyfunc.PyFuncModel:
    net, vocab = tiny_net()
    preset = get_preset("cnn", "tuned", **TINY_OVERRIDES)
    with model_artifacts(net, preset, vocab, calibration) as artifacts:
        assert (ARTIFACT_CALIBRATION in artifacts) == (calibration is not None)
        mlflow.pyfunc.save_model(
            str(path), python_model=SentimentModel(), artifacts=artifacts, pip_requirements=[]
        )
    return mlflow.pyfunc.load_model(str(path))


def test_the_served_model_applies_its_stored_temperature(tmp_path: Path):
    raw = save_model(tmp_path / "raw", None)  # as logged before calibration: no calibration.json
    scaled = save_model(tmp_path / "scaled", Calibration(temperature=2.5, n_reviews=10))
    assert raw.unwrap_python_model().temperature == 1.0
    model = scaled.unwrap_python_model()
    assert model.temperature == 2.5
    frame = pd.DataFrame({"review": REVIEWS})
    before, after = raw.predict(frame), scaled.predict(frame)
    # The raw model is the network's softmax; the calibrated one divides its logits by 2.5.
    margins = binary_logits(model.net, model.encode(REVIEWS))
    np.testing.assert_allclose(before["prob_positive"], sigmoid(margins), atol=1e-6)
    np.testing.assert_allclose(after["prob_positive"], sigmoid(margins / 2.5), atol=1e-6)
    assert np.abs(margins).max() == pytest.approx(3.0, rel=1e-4)  # T = 2.5 shows
    assert (before["label"] == after["label"]).all()  # the same decisions, softer probabilities
    assert (np.abs(after["prob_positive"] - 0.5) < np.abs(before["prob_positive"] - 0.5)).all()
