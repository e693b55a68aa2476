"""Test-time augmentation: the views, their mean, and a run that evaluates with them and says so."""
from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from study.config import TrainConfig, default_source
from study.errors import ConfigError
from study.tta import predict_views, view_count, views


def _faces(n: int = 3) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 48, 48, 1)).astype(np.uint8)


def test_flip_is_the_face_and_its_mirror():
    x = _faces()
    same, mirror = views(x, "flip")
    assert np.array_equal(same, x) and np.array_equal(mirror[:, :, ::-1], x)
    assert [v.shape for v in views(x, "none")] == [x.shape] and view_count("none") == 1


def test_ten_crops_are_the_corners_and_centre_of_a_larger_face_and_their_mirrors():
    x = np.zeros((2, 48, 48, 1), np.uint8)
    x[:, :24, :24] = 255  # the top-left quarter lit
    crops = views(x, "crops")
    assert len(crops) == view_count("crops") == 10
    assert all(c.shape == x.shape and c.dtype == np.uint8 for c in crops)
    top_left, top_right, centre = crops[0], crops[1], crops[4]
    # zoomed in: the lit quarter covers more than a quarter of the top-left crop, less of the top-right one
    assert (top_left > 127).mean() > 0.25 > (top_right > 127).mean()
    assert np.array_equal(crops[5], top_left[:, :, ::-1]) and np.array_equal(crops[9], centre[:, :, ::-1])
    with pytest.raises(ValueError, match="unknown test-time augmentation"):
        views(x, "rotate")


def test_the_prediction_is_the_mean_over_the_views_batch_by_batch():
    x = _faces(5)
    seen: list[int] = []

    def predict(batch: np.ndarray) -> np.ndarray:  # "probabilities" that tell a face from its mirror
        seen.append(len(batch))
        left = batch[:, :, :24].reshape(len(batch), -1).mean(axis=1)
        return np.stack([left, 255 - left], axis=1).astype(np.float32)

    probs = predict_views(predict, x, "flip", batch_size=2)
    expected = np.mean([predict(v) for v in views(x, "flip")], axis=0)
    assert probs.shape == (5, 2) and np.allclose(probs, expected)
    assert seen[:6] == [2, 2, 2, 2, 1, 1]  # three batches of faces, two views each


def test_tta_is_a_config_key_off_by_default_and_checked():
    assert TrainConfig().tta == "none" and default_source("tta") == "off (not in the paper)"
    assert TrainConfig(tta="crops").tta == "crops"
    with pytest.raises(ConfigError, match="tta must be one of none, flip, crops"):
        TrainConfig(tta="ten")


def test_a_run_with_flip_tta_records_it_and_its_predictions_are_the_mean_of_face_and_mirror(tmp_path):
    from tests.test_training import FAST, tiny_dataset
    from study.training import train

    data = tiny_dataset()
    run_dir = tmp_path / "run"
    result = train(TrainConfig(regime="scratch", epochs=1, tta="flip", **FAST), data, run_dir, evaluate_test=True)
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["val"]["tta"] == saved["test"]["tta"] == "flip" and result.metrics["test"]["tta"] == "flip"
    model = keras.models.load_model(run_dir / "model.keras")
    x = data.test.x.astype(np.float32)
    expected = (model.predict(x, verbose=0) + model.predict(x[:, :, ::-1].copy(), verbose=0)) / 2
    stored = np.load(run_dir / "predictions.npz")["test_probs"]
    assert np.allclose(stored, expected, atol=1e-5)
    plain = train(TrainConfig(regime="scratch", epochs=1, **FAST), data, tmp_path / "plain")
    assert plain.metrics["val"]["tta"] == "none"
