from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import analysis.errors.text_metadata as metadata
from analysis.common.schema import confidence_from_prob, per_sample_loss
from analysis.errors.text_metadata import text_metadata


def test_textblob_polarity_signs_offline() -> None:
    texts = pd.Series(["a wonderful great film", "an awful terrible film"], index=[10, 20])
    meta = text_metadata(texts, progress=False)
    assert list(meta.columns) == ["subjectivity", "polarity"]
    assert list(meta.index) == [10, 20]
    assert meta.loc[10, "polarity"] > 0 > meta.loc[20, "polarity"]
    assert (meta["subjectivity"] > 0).all()


def test_empty_and_missing_text_give_zero_not_nan() -> None:
    texts = pd.Series(["", "   ", None, "<br /><br />", float("nan")])
    meta = text_metadata(texts, progress=False)
    assert not meta.isna().any().any()
    assert (meta.to_numpy() == 0.0).all()


def test_two_processes_match_one(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    words = ["good", "bad", "film", "boring", "superb", "plot", "not", "very"]
    texts = pd.Series([" ".join(rng.choice(words, size=12)) for _ in range(600)])
    monkeypatch.setattr(metadata, "_MIN_PARALLEL", 0)  # force the joblib path on a small input
    parallel = text_metadata(texts, n_jobs=2, progress=False)
    serial = text_metadata(texts, n_jobs=1, progress=False)
    pd.testing.assert_frame_equal(parallel, serial)
    assert parallel["polarity"].std() > 0  # the texts really differ


def test_loss_and_confidence() -> None:
    prob = np.array([0.5, 0.9, 0.9, 1.0, 0.0])
    label = np.array([1, 1, 0, 0, 0])
    loss = per_sample_loss(prob, label)
    assert loss[0] == pytest.approx(math.log(2))
    assert loss[1] == pytest.approx(-math.log(0.9))
    assert loss[2] == pytest.approx(-math.log(0.1))
    assert np.isfinite(loss[3]) and loss[3] > 10  # confidently wrong: large but finite
    assert loss[4] == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(confidence_from_prob(prob), [0.0, 0.8, 0.8, 1.0, 1.0])
