"""Calibration of stored probabilities: ECE, Brier score, reliability bins and temperature scaling.

Numpy, scipy and scikit-learn only (no TensorFlow), so a report computes all of it from a run's
predictions.npz. What is written by hand and why: scikit-learn has no multi-class expected
calibration error (``sklearn.calibration.calibration_curve`` bins one binary score), so ``ece`` and
``reliability`` bin the top-class confidence themselves; its temperature scaling
(``CalibratedClassifierCV(method="temperature")``, 1.8+) calibrates a fitted estimator, not stored
probabilities, so ``fit_temperature`` minimises the validation NLL with ``scipy.optimize.minimize_scalar``.
The Brier score is scikit-learn's ``brier_score_loss``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.metrics import brier_score_loss

BINS = 15  # equal-width confidence bins, as in Guo et al. (2017), "On calibration of modern neural networks"
EPSILON = 1e-12  # probabilities are clipped here before the log: a stored 0 would be a logit of -inf
LOG_T_BOUNDS = (-5.0, 5.0)  # T between e^-5 (0.007) and e^5 (148): far beyond any sensible temperature


@dataclass(frozen=True)
class Reliability:
    """Per confidence bin (equal width over [0, 1]): mean confidence, accuracy and image count.

    Empty bins have count 0 and NaN confidence and accuracy, so the arrays always have ``bins`` entries.
    """

    edges: np.ndarray  # bins + 1 edges, 0 .. 1
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray

    @property
    def ece(self) -> float:
        """Sum over the filled bins of (images in bin / all images) x |accuracy - mean confidence|."""
        filled = self.count > 0
        weights = self.count[filled] / self.count.sum()
        return float(np.sum(weights * np.abs(self.accuracy[filled] - self.confidence[filled])))


def _normalized(probs: np.ndarray) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
    return probs / probs.sum(axis=1, keepdims=True)  # float32 softmax sums drift from 1 by ~1e-7


def reliability(labels: np.ndarray, probs: np.ndarray, bins: int = BINS) -> Reliability:
    """Images binned by their top-class probability (bin i holds confidences in (edge_i, edge_i+1];
    a confidence of exactly 0 falls in the first bin); per bin the mean confidence and the accuracy."""
    probs = _normalized(probs)
    labels = np.asarray(labels)
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges[1:-1], confidence, side="left"), 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(which, weights=confidence, minlength=bins) / count
        accuracy = np.bincount(which, weights=correct, minlength=bins) / count
    return Reliability(edges, mean_confidence, accuracy, count)


def ece(labels: np.ndarray, probs: np.ndarray, bins: int = BINS) -> float:
    """Expected calibration error: sum over the equal-width confidence bins of (images in bin / all
    images) x |accuracy in bin - mean confidence in bin|; 0 for a perfectly calibrated model."""
    return reliability(labels, probs, bins).ece


def brier(labels: np.ndarray, probs: np.ndarray) -> float:
    """Multi-class Brier score (Brier 1950): the mean over images of the sum over classes of
    (p_class - 1[class is the true one])^2, in [0, 2]; lower is better. Not halved, and not the
    binary top-class variant: scikit-learn's ``brier_score_loss`` with ``scale_by_half=False``."""
    probs = _normalized(probs)
    return float(brier_score_loss(np.asarray(labels), probs, labels=list(range(probs.shape[1])),
                                  scale_by_half=False))


def _logits(probs: np.ndarray) -> np.ndarray:
    """Log-probabilities: the model's logits up to a per-image constant, which softmax ignores."""
    return np.log(np.clip(_normalized(probs), EPSILON, None))


def nll(labels: np.ndarray, probs: np.ndarray) -> float:
    """Mean negative log-likelihood of the true class (the cross-entropy), probabilities clipped at ``EPSILON``."""
    logs = _logits(probs)
    return float(-np.mean(logs[np.arange(len(logs)), np.asarray(labels)]))


def scale(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T): T > 1 softens overconfident probabilities, T < 1 sharpens them. Dividing
    every logit of an image by the same T > 0 keeps their order, so the predicted class never changes."""
    if not temperature > 0:
        raise ValueError(f"a temperature must be positive, got {temperature}")
    return softmax(_logits(probs) / temperature, axis=1)


def fit_temperature(val_labels: np.ndarray, val_probs: np.ndarray) -> float:
    """The T > 0 minimising the validation NLL of ``scale(val_probs, T)`` (Guo et al. 2017), searched
    over log T within ``LOG_T_BOUNDS`` (bounded Brent). Fit it on validation only and apply it to test."""
    logits = _logits(val_probs)
    rows, labels = np.arange(len(logits)), np.asarray(val_labels)

    def loss(log_t: float) -> float:
        return float(-np.mean(log_softmax(logits / np.exp(log_t), axis=1)[rows, labels]))

    found = minimize_scalar(loss, bounds=LOG_T_BOUNDS, method="bounded", options={"xatol": 1e-6})
    return float(np.exp(found.x))


def calibration(val_labels: np.ndarray, val_probs: np.ndarray, labels: np.ndarray, probs: np.ndarray,
                bins: int = BINS) -> dict[str, Any]:
    """One run's calibration on the evaluated split (``labels``, ``probs``), with T fitted on
    validation only: ECE and Brier before and after scaling, T, and the accuracy before and after
    (equal: scaling never changes the predicted class)."""
    temperature = fit_temperature(val_labels, val_probs)
    scaled = scale(probs, temperature)
    labels = np.asarray(labels)
    return {
        "ece": ece(labels, probs, bins),
        "brier": brier(labels, probs),
        "temperature": temperature,
        "ece_scaled": ece(labels, scaled, bins),
        "brier_scaled": brier(labels, scaled),
        "nll": nll(labels, probs),
        "nll_scaled": nll(labels, scaled),
        "accuracy_scaled": float(np.mean(scaled.argmax(axis=1) == labels)),
    }
