"""Temperature scaling: one scalar T, fitted on the validation split, dividing the served logits.

A two-logit network's P(positive) = softmax(z)[1] = sigmoid(z1 - z0). Dividing both logits by T
divides that margin by T, so a fitted T > 1 softens over-confident predictions (and T < 1 sharpens
under-confident ones) without changing any label: the sign of the margin stays the same. T is
chosen to minimise the mean negative log-likelihood of sigmoid(margin / T) on the validation split
(Guo et al., 2017); the search runs over log T, bounded to `TEMPERATURE_BOUNDS`, so T stays
positive and a degenerate validation set cannot push it to 0 or infinity.

The fitted value travels with the logged model as `calibration.json` (models/pyfunc.py); a model
logged without it keeps T = 1. The error analysis reuses these functions (one definition).
"""

from __future__ import annotations

import json
import logging
import math
import numbers
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.scores import LengthOrder

log = logging.getLogger(__name__)

TEMPERATURE_BOUNDS = (0.05, 20.0)  # wide: a trained net's fitted T is ~0.5-5
# Probabilities are clipped this far from 0 and 1 before taking logits: float32 probabilities
# cannot tell 1 - p apart below ~6e-8, and the analysis' per-review loss uses the same clip.
PROB_EPS = 1e-7
SCORING_BATCH_SIZE = 256


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)), without overflow for large |z| (float64)."""
    z = np.asarray(logits, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -z))


def logits_from_probs(prob_positive: np.ndarray, eps: float = PROB_EPS) -> np.ndarray:
    """log(p / (1 - p)), with p clipped to [eps, 1 - eps] so that 0 and 1 stay finite."""
    p = np.clip(np.asarray(prob_positive, dtype=np.float64), eps, 1.0 - eps)
    return np.log(p) - np.log1p(-p)


def apply_temperature_to_logits(logits: np.ndarray, temperature: float) -> np.ndarray:
    """P(positive) = sigmoid(margin / T) for binary logits (margins z1 - z0)."""
    check_temperature(temperature)
    return sigmoid(np.asarray(logits, dtype=np.float64) / temperature)


def apply_temperature(prob_positive: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities re-scaled by T through their (clipped) logits; T = 1 returns them unchanged."""
    check_temperature(temperature)
    p = np.asarray(prob_positive, dtype=np.float64)
    if temperature == 1.0:
        return p.copy()  # exactly the identity, not a round trip through clipped logits
    return apply_temperature_to_logits(logits_from_probs(p), temperature)


def check_temperature(temperature: float) -> None:
    valid = isinstance(temperature, numbers.Real) and not isinstance(temperature, bool)
    if not (valid and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"a temperature must be a finite positive number, got {temperature!r}")


def binary_nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood (nats) of the labels under sigmoid(logits / T)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    y = np.asarray(labels, dtype=np.float64)
    # -log sigmoid(z) = log(1 + e^-z); -log(1 - sigmoid(z)) = log(1 + e^z): both via logaddexp.
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


def fit_temperature(
    logits: np.ndarray,
    labels: np.ndarray,
    bounds: tuple[float, float] = TEMPERATURE_BOUNDS,
) -> float:
    """The T in `bounds` minimising the NLL of sigmoid(logits / T); 1.0 when it cannot be fitted.

    `logits` are binary margins (z1 - z0, or log(p / (1 - p))). Not fittable, hence 1.0: no
    reviews, a single class (the NLL then falls forever as T shrinks or grows), or a non-finite
    logit (a diverged network). A T at a bound is returned, with a warning.
    """
    z = np.asarray(logits, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=np.float64).ravel()
    if len(z) != len(y):
        raise ValueError(f"logits ({len(z)}) and labels ({len(y)}) must have the same length")
    if not set(np.unique(y)) <= {0.0, 1.0}:
        raise ValueError("labels must be 0 or 1")
    if len(z) == 0 or len(np.unique(y)) < 2 or not np.isfinite(z).all() or not np.any(z):
        log.warning("temperature not fitted (%d reviews, classes %s): T = 1", len(z), np.unique(y))
        return 1.0
    from scipy.optimize import minimize_scalar  # only training and analysis fit; serving does not

    lo, hi = math.log(bounds[0]), math.log(bounds[1])
    result = minimize_scalar(
        lambda log_t: binary_nll(z, y, math.exp(log_t)),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-6},
    )
    temperature = float(math.exp(result.x))
    if min(result.x - lo, hi - result.x) < 1e-3:
        log.warning("fitted temperature %.3g is at the bound %s", temperature, bounds)
    return temperature


@dataclass(frozen=True)
class Calibration:
    """A fitted temperature and what it did to the NLL of the split it was fitted on."""

    temperature: float = 1.0
    split: str = "val"
    n_reviews: int = 0
    nll: float = math.nan  # before: sigmoid(logits)
    nll_calibrated: float = math.nan  # after: sigmoid(logits / T)

    def metrics(self) -> dict[str, float]:
        """MLflow metrics: `temperature`, `<split>_nll`, `<split>_nll_calibrated`."""
        return {
            "temperature": self.temperature,
            f"{self.split}_nll": self.nll,
            f"{self.split}_nll_calibrated": self.nll_calibrated,
        }

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")

    @classmethod
    def load(cls, path: Path | None) -> Calibration:
        """The calibration stored at `path`; no file (a model logged before calibration): T = 1."""
        if path is None or not Path(path).exists():
            return cls()
        values = json.loads(Path(path).read_text(encoding="utf-8"))
        calibration = cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})
        check_temperature(calibration.temperature)
        return calibration


def fit_calibration(logits: np.ndarray, labels: np.ndarray, split: str = "val") -> Calibration:
    """Fit T on one split's binary logits and labels, with the NLL before and after."""
    z = np.asarray(logits, dtype=np.float64)
    temperature = fit_temperature(z, labels)
    empty = len(z) == 0
    return Calibration(
        temperature=temperature,
        split=split,
        n_reviews=len(z),
        nll=math.nan if empty else binary_nll(z, labels),
        nll_calibrated=math.nan if empty else binary_nll(z, labels, temperature),
    )


@torch.inference_mode()
def binary_logits(
    net: nn.Module, ids: np.ndarray, batch_size: int = SCORING_BATCH_SIZE
) -> np.ndarray:
    """Margins z1 - z0 (float64, N) of encoded reviews (N, L), scored in eval mode in batches on
    the network's device; the network's train/eval mode is restored afterwards."""
    device = next(net.parameters(), torch.empty(0)).device
    was_training = net.training
    net.eval()
    try:
        batches = LengthOrder(ids, batch_size)
        margins = [
            net(torch.as_tensor(batch, device=device)).float().diff(dim=-1)[:, 0].cpu().numpy()
            for batch in batches
        ]
    finally:
        net.train(was_training)
    return batches.restore(margins).astype(np.float64) if margins else np.zeros(0)
