from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from analysis.common.schema import SAMPLE_COLUMNS
from analysis.errors.predict import build_sample_table, predict
from tests.analysis.helpers import StandInNet, planted_reviews


def test_predict_matches_forward_across_batches_and_restores_mode() -> None:
    samples, ids = planted_reviews(23)
    net = StandInNet(hidden=True)
    net.train()
    prob, latent, logit = predict(net, ids, batch_size=5, progress=False)  # 4 full batches + 3
    assert net.training  # mode restored
    with torch.no_grad():
        expected = torch.softmax(net(torch.as_tensor(ids)), -1)[:, 1].numpy()
        expected_latent = net.latent(torch.as_tensor(ids)).numpy()
        logits = net(torch.as_tensor(ids))
        expected_logit = (logits[:, 1] - logits[:, 0]).numpy()
    np.testing.assert_allclose(prob, expected, rtol=1e-5)
    np.testing.assert_allclose(latent, expected_latent, rtol=1e-5)
    np.testing.assert_allclose(logit, expected_logit, rtol=1e-5, atol=1e-6)


def test_build_sample_table_columns_and_values() -> None:
    samples = pd.DataFrame(
        {
            "review_id": ["a", "b", "c"],
            "text": ["x", "y", ""],
            "label": [1, 0, 1],
            "rating": [9, 2, 8],
            "length": [10, 4, 0],
            "oov_count": [2, 4, 0],
        }
    )
    meta = pd.DataFrame({"subjectivity": [0.5, 0.1, 0.0], "polarity": [0.3, -0.2, 0.0]})
    table = build_sample_table(samples, np.array([0.8, 0.8, 0.5]), meta)
    assert list(table.columns) == list(SAMPLE_COLUMNS)
    assert table["pred"].tolist() == [1, 1, 1]
    np.testing.assert_allclose(table["oov_ratio"], [0.2, 1.0, 0.0])  # length 0 -> 0, not nan
    np.testing.assert_allclose(table["loss"], -np.log([0.8, 0.2, 0.5]))
    np.testing.assert_allclose(table["confidence"], [0.6, 0.6, 0.0])
    assert not table.isna().any().any()


def test_build_sample_table_counts_from_ids_when_columns_missing() -> None:
    samples = pd.DataFrame(
        {"review_id": [1, 2], "text": ["", ""], "label": [0, 1], "rating": [1, 10]}
    )
    ids = np.array([[5, 1, 1, 0], [0, 0, 0, 0]])
    meta = pd.DataFrame({"subjectivity": [0.0, 0.0], "polarity": [0.0, 0.0]})
    table = build_sample_table(samples, np.array([0.1, 0.9]), meta, ids=ids)
    assert table["length"].tolist() == [3, 0]
    assert table["oov_count"].tolist() == [2, 0]
    assert table["review_id"].tolist() == ["1", "2"]
    with pytest.raises(ValueError, match="length"):
        build_sample_table(samples, np.array([0.1, 0.9]), meta)
