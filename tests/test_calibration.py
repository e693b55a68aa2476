"""Calibration against cases worked by hand: ECE, Brier, and temperature scaling fitted on validation only."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax

from study.calibration import brier, calibration, ece, fit_temperature, nll, reliability, scale


def _rows(*rows: list[float]) -> np.ndarray:
    return np.array(rows, dtype=float)


# Five images, three classes. Two at confidence 0.9, one right and one wrong; three at confidence 0.55, all right.
HAND_PROBS = _rows([0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.55, 0.25, 0.2], [0.2, 0.55, 0.25], [0.25, 0.2, 0.55])
HAND_LABELS = np.array([0, 1, 0, 1, 2])


def test_ece_on_a_hand_worked_case() -> None:
    # 15 bins of width 1/15: 0.9 falls in (0.8667, 0.9333], 0.55 in (0.5333, 0.6].
    #   bin of 0.9:  2 images, accuracy 1/2, confidence 0.9  -> |0.5 - 0.9| = 0.40, weight 2/5
    #   bin of 0.55: 3 images, accuracy 3/3, confidence 0.55 -> |1.0 - 0.55| = 0.45, weight 3/5
    # ECE = 2/5 * 0.40 + 3/5 * 0.45 = 0.16 + 0.27 = 0.43
    assert ece(HAND_LABELS, HAND_PROBS) == pytest.approx(0.43)
    # One bin: |accuracy 4/5 - mean confidence (2 * 0.9 + 3 * 0.55) / 5 = 0.69| = 0.11
    assert ece(HAND_LABELS, HAND_PROBS, bins=1) == pytest.approx(0.11)
    bins = reliability(HAND_LABELS, HAND_PROBS)
    assert len(bins.count) == 15 and bins.count.sum() == 5
    assert bins.count[13] == 2 and bins.count[8] == 3  # (13/15, 14/15] and (8/15, 9/15]
    assert (bins.accuracy[13], bins.confidence[13]) == (pytest.approx(0.5), pytest.approx(0.9))
    assert np.isnan(bins.accuracy[0]) and bins.count[0] == 0  # empty bins: no value, no weight


def test_a_calibrated_model_has_zero_ece_and_a_perfect_one_zero_brier() -> None:
    labels = np.array([0, 0, 0, 1])  # confidence 0.75 everywhere, right on 3 of 4 images
    probs = np.tile([0.75, 0.25], (4, 1))
    assert ece(labels, probs) == pytest.approx(0.0)
    assert brier(labels, np.eye(2)[labels]) == 0.0


def test_brier_on_a_hand_worked_case() -> None:
    # Multi-class Brier, summed over classes, averaged over images:
    #   [0.7, 0.2, 0.1], true 0: 0.3^2 + 0.2^2 + 0.1^2 = 0.14
    #   [0.5, 0.5, 0.0], true 2: 0.5^2 + 0.5^2 + 1.0^2 = 1.50      -> mean 0.82
    assert brier(np.array([0, 2]), _rows([0.7, 0.2, 0.1], [0.5, 0.5, 0.0])) == pytest.approx(0.82)


def overconfident(n: int, seed: int, sharpen: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(z), reported as softmax(sharpen * z): overconfident by a temperature of ``sharpen``."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.0, (n, 7)) + 1.5 * np.eye(7)[rng.integers(0, 7, n)]
    true = softmax(z, axis=1)
    labels = np.array([rng.choice(7, p=p) for p in true])
    return labels, softmax(sharpen * z, axis=1)


def test_temperature_scaling_keeps_every_prediction_and_lowers_nll_of_an_overconfident_model() -> None:
    val_labels, val_probs = overconfident(3000, seed=1)
    test_labels, test_probs = overconfident(3000, seed=2)
    temperature = fit_temperature(val_labels, val_probs)
    assert temperature == pytest.approx(3.0, rel=0.1)  # the sharpening it undoes
    scaled = scale(test_probs, temperature)
    assert np.array_equal(scaled.argmax(axis=1), test_probs.argmax(axis=1))
    assert np.allclose(scaled.sum(axis=1), 1.0)
    assert nll(test_labels, scaled) < nll(test_labels, test_probs) - 0.1
    assert ece(test_labels, scaled) < 0.5 * ece(test_labels, test_probs)
    assert np.allclose(scale(test_probs, 1.0), test_probs)
    with pytest.raises(ValueError, match="positive"):
        scale(test_probs, 0.0)


def test_the_temperature_is_fitted_on_validation_only() -> None:
    val_labels, val_probs = overconfident(1000, seed=3)
    test_labels, test_probs = overconfident(1000, seed=4)
    numbers = calibration(val_labels, val_probs, test_labels, test_probs)
    assert numbers["temperature"] == fit_temperature(val_labels, val_probs)
    other_test = calibration(val_labels, val_probs, test_labels, softmax(np.log(test_probs) / 3.0, axis=1))
    assert other_test["temperature"] == numbers["temperature"]  # the test predictions never move T
    other_val = calibration(val_labels, softmax(np.log(val_probs) / 3.0, axis=1), test_labels, test_probs)
    assert other_val["temperature"] != pytest.approx(numbers["temperature"], rel=0.1)
    assert numbers["accuracy_scaled"] == np.mean(test_probs.argmax(axis=1) == test_labels)
    assert numbers["ece"] == ece(test_labels, test_probs) and numbers["ece_scaled"] < numbers["ece"]
    assert numbers["brier"] == brier(test_labels, test_probs)
