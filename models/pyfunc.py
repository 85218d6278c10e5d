"""The raw-text MLflow model: review strings in, `label` and `prob_positive` out.

The vocabulary, the preset and the weights travel as artifacts, and the standardisation is the
project's own (`data.text.encode_texts`), so a served model scores text exactly as in training.
Error analysis unwraps it (`load_model(uri).unwrap_python_model()`) and uses `.net`, `.vocab`,
`.max_len`, `.preset`, `.temperature` and `.encode(texts)` directly; keep those names.

Served probabilities are temperature-scaled: the logits are divided by the temperature fitted on
the validation split at training time (models/calibration.py), stored as the `calibration`
artifact (`calibration.json`). A model logged without it (before calibration) keeps T = 1. `.net`
stays the raw network: the error analysis explains and scores the uncalibrated logits.

A review longer than `MAX_REVIEW_CHARS` (100,000 characters, seven times the longest IMDB review)
is cut to that many characters before standardisation: only its first `max_len` tokens are scored
anyway, and standardising an unbounded string (a 200 MB request body) cost the server 1.5 GB.
The cap bounds the work per review, not the request: a deployment open to others needs a body
limit in front of the server (e.g. nginx `client_max_body_size`).
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.models.model import ModelInfo
from torch import nn

from data.text import MAX_REVIEW_CHARS, Vocabulary, encode_texts
from models.calibration import Calibration
from models.memory import trimming
from models.networks import build_net
from models.presets import Preset
from models.scores import LengthOrder
from models.tracking import NonFiniteMetricsError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
INPUT_COLUMN = "review"
ARTIFACT_WEIGHTS = "state_dict"
ARTIFACT_PRESET = "preset"
ARTIFACT_VOCAB = "vocab"
ARTIFACT_CALIBRATION = "calibration"
SCORING_BATCH_SIZE = (
    64  # measured: CNN at length 800 scores 2.2x faster in 64s than in 256s (CPU caches)
)
INPUT_EXAMPLE = pd.DataFrame(
    {
        INPUT_COLUMN: [
            "A wonderful film: moving, funny and beautifully shot.",
            "Dull and predictable.<br /><br />I nearly fell asleep.",
        ]
    }
)


def review_texts(model_input: Any) -> list[str]:
    """The review strings of a DataFrame with a `review` column, a Series, or a list/array of str.

    Anything else raises an `MlflowException` that says what was expected, before any tensor work.
    """
    if isinstance(model_input, pd.DataFrame):
        if INPUT_COLUMN not in model_input.columns:
            raise MlflowException.invalid_parameter_value(
                f"input must have a string column {INPUT_COLUMN!r}; "
                f"got columns {list(model_input.columns)}"
            )
        values = model_input[INPUT_COLUMN].tolist()
    elif isinstance(model_input, str):
        values = [model_input]
    elif isinstance(model_input, pd.Series | np.ndarray | Sequence):
        values = list(model_input)
    else:
        raise MlflowException.invalid_parameter_value(
            f"input must be a DataFrame with a string column {INPUT_COLUMN!r} or a list of "
            f"strings; got {type(model_input).__name__}"
        )
    bad = [(i, v) for i, v in enumerate(values) if not isinstance(v, str)]
    if bad:
        i, value = bad[0]
        raise MlflowException.invalid_parameter_value(
            f"input must have a string column {INPUT_COLUMN!r}; {len(bad)} value(s) are not "
            f"strings, the first at row {i}: {value!r} ({type(value).__name__})"
        )
    return values


@torch.inference_mode()
def predict_proba(
    net: nn.Module, ids: np.ndarray, batch_size: int = SCORING_BATCH_SIZE, temperature: float = 1.0
) -> np.ndarray:
    """P(positive) of softmax(logits / `temperature`) for encoded reviews (N, L), in batches;
    `net` must be in eval mode."""
    batches = LengthOrder(ids, batch_size)
    probs = [
        net(torch.as_tensor(batch)).div(temperature).softmax(dim=-1)[:, 1].numpy()
        for batch in trimming(batches)
    ]
    return batches.restore(probs) if probs else np.zeros(0, dtype=np.float32)


@torch.inference_mode()
def predict_logit_parts(
    net: nn.Module, ids: np.ndarray, batch_size: int = SCORING_BATCH_SIZE
) -> np.ndarray:
    """(N, 2) float32: each encoded review's logit margin from the network alone and from its
    n-gram branch alone (`SentimentNet.logit_parts`), in batches; `net` must be in eval mode
    (in training mode dropout would change them and the branch is left out)."""
    if net.training:
        raise ValueError("predict_logit_parts needs the network in eval mode (net.eval())")
    batches = LengthOrder(ids, batch_size)
    parts = [net.logit_parts(torch.as_tensor(batch)).numpy() for batch in trimming(batches)]
    return batches.restore(parts) if parts else np.zeros((0, 2), dtype=np.float32)


def truncate_reviews(texts: Iterable[str], max_chars: int = MAX_REVIEW_CHARS) -> list[str]:
    """Each text cut to its first `max_chars` characters (a no-op for any real review)."""
    return [text[:max_chars] for text in texts]


def predictions_frame(prob_positive: np.ndarray) -> pd.DataFrame:
    """The model's output: label 1 when P(positive) > 0.5 (as the test metrics threshold)."""
    prob = np.asarray(prob_positive, dtype=np.float64)
    return pd.DataFrame({"label": (prob > 0.5).astype(np.int64), "prob_positive": prob})


class SentimentModel(mlflow.pyfunc.PythonModel):
    """Raw review text -> DataFrame(label, prob_positive), torch on CPU."""

    net: nn.Module
    vocab: Vocabulary
    preset: Preset
    max_len: int
    temperature: float = 1.0  # logits are divided by it (calibration.json; absent: 1)

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        artifacts = context.artifacts
        self.preset = Preset.model_validate_json(Path(artifacts[ARTIFACT_PRESET]).read_text())
        self.vocab = Vocabulary.load(Path(artifacts[ARTIFACT_VOCAB]))
        self.max_len = self.preset.max_len
        net = build_net(self.preset.arch, self.preset.vocab_size, **self.preset.net_kwargs())
        state = torch.load(artifacts[ARTIFACT_WEIGHTS], map_location="cpu", weights_only=True)
        net.load_state_dict(state)
        self.net = net.eval()
        self.temperature = Calibration.load(artifacts.get(ARTIFACT_CALIBRATION)).temperature

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Token ids (N, max_len) of raw texts, standardised as in training.

        Each text is first cut to `MAX_REVIEW_CHARS` characters (the memory cap of serving).
        """
        return encode_texts(truncate_reviews(texts), self.vocab, self.max_len).ids

    # Through MLflow the input is always a DataFrame (the column signature converts it); called
    # directly (unwrapped), lists and Series work too. A DataFrame hint also tells MLflow not to
    # validate by type hint.
    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        ids = self.encode(review_texts(model_input))
        return predictions_frame(predict_proba(self.net, ids, temperature=self.temperature))


@contextmanager
def model_artifacts(
    net: nn.Module, preset: Preset, vocab: Vocabulary, calibration: Calibration | None = None
) -> Iterator[dict[str, str]]:
    """The weights (CPU), preset, vocabulary and calibration (when given) as files, for
    `log_model(artifacts=...)`."""
    with tempfile.TemporaryDirectory(prefix="sentiment-model-") as tmp:
        folder = Path(tmp)
        paths = {
            ARTIFACT_WEIGHTS: folder / "state_dict.pt",
            ARTIFACT_PRESET: folder / "preset.json",
            ARTIFACT_VOCAB: folder / "vocab.json",
        }
        state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
        torch.save(state, paths[ARTIFACT_WEIGHTS])
        paths[ARTIFACT_PRESET].write_text(preset.model_dump_json(), encoding="utf-8")
        vocab.save(paths[ARTIFACT_VOCAB])
        if calibration is not None:
            paths[ARTIFACT_CALIBRATION] = folder / "calibration.json"
            calibration.save(paths[ARTIFACT_CALIBRATION])
        yield {name: str(path) for name, path in paths.items()}


def log_sentiment_model(
    net: nn.Module,
    preset: Preset,
    vocab: Vocabulary,
    *,
    registered_model_name: str | None = None,
    name: str = "model",
    calibration: Calibration | None = None,
) -> ModelInfo:
    """Log the raw-text pyfunc to the active run (and register it if a name is given), with the
    temperature of `calibration` (None: no calibration.json, the model serves T = 1)."""
    was_training = net.training
    net.eval()
    try:
        probs = predict_proba(
            net, encode_texts(INPUT_EXAMPLE[INPUT_COLUMN], vocab, preset.max_len).ids
        )
    finally:
        net.train(was_training)
    if not np.isfinite(probs).all():  # a diverged network: never log or register it
        raise NonFiniteMetricsError(
            f"the model predicts {probs.tolist()} for the input example (not finite): "
            "training diverged; the model is not logged"
        )
    with warnings.catch_warnings():
        # The int64 `label` column is deliberate (a class id, never missing).
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        signature = infer_signature(INPUT_EXAMPLE, predictions_frame(probs))
    with model_artifacts(net, preset, vocab, calibration) as artifacts:
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=SentimentModel(),
            artifacts=artifacts,
            # The project's packages ship with the model, so it loads outside this checkout.
            code_paths=[str(PROJECT_ROOT / "models"), str(PROJECT_ROOT / "data")],
            # Explicit requirements: inferring them re-imports the model in a subprocess (slow).
            pip_requirements=_requirements(),
            signature=signature,
            input_example=INPUT_EXAMPLE,
            registered_model_name=registered_model_name,
        )


def _requirements() -> list[str]:
    from importlib.metadata import version

    # Local version labels ("+cpu") are dropped: they name a wheel index, not a version.
    packages = ("mlflow", "torch", "numpy", "pandas", "pydantic")
    return [f"{package}=={version(package).split('+')[0]}" for package in packages]
