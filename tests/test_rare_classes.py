"""The rare classes (issue 29): class-balanced sampling and the focal loss, both off by default (the paper)."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from study.config import TrainConfig, default_source
from study.errors import ConfigError
from study.pipeline import index_batches, make_dataset, sampling_weights
from study.training import train, training_loss
from tests.test_training import FAST, tiny_dataset

SKEWED = np.repeat(np.arange(7), [300, 20, 300, 900, 400, 400, 250])  # disgust (1) rare, happy (3) common


def drawn(weights: np.ndarray | None, epoch: int = 0, seed: int = 0) -> np.ndarray:
    return np.concatenate(index_batches(len(SKEWED), 64, training=True, seed=seed, epoch=epoch, weights=weights))


def test_balanced_sampling_draws_every_class_about_equally_often():
    rows = drawn(sampling_weights(SKEWED, "balanced"))
    shares = np.bincount(SKEWED[rows], minlength=7) / len(rows)
    assert len(rows) == len(SKEWED) - len(SKEWED) % 64  # an epoch of as many faces (whole batches), as uniform
    assert np.allclose(shares, 1 / 7, atol=0.03), shares  # disgust: 0.8% of the faces, about 1/7 of the draws
    assert np.allclose(sampling_weights(SKEWED, "balanced").sum(), 1.0)


def test_uniform_sampling_is_each_face_once_and_balanced_draws_are_seeded_per_epoch():
    assert sampling_weights(SKEWED, "uniform") is None
    once = drawn(None)
    assert len(set(once.tolist())) == len(once)  # a permutation: no face twice
    weights = sampling_weights(SKEWED, "balanced")
    assert np.array_equal(drawn(weights), drawn(weights))  # the same (seed, epoch), the same draw
    assert not np.array_equal(drawn(weights), drawn(weights, epoch=1))
    assert len(set(drawn(weights).tolist())) < len(drawn(weights))  # with replacement: disgust faces repeat


def test_a_balanced_training_epoch_yields_balanced_labels_and_validation_is_untouched():
    data = tiny_dataset(n=140)
    train_ds = make_dataset(data.train, 14, training=True, sampling="balanced")
    val_ds = make_dataset(data.val, 14, training=False, sampling="balanced")
    assert val_ds.weights is None  # validation reads every face once, in order
    labels = np.concatenate([train_ds[i][1] for i in range(len(train_ds))]).argmax(axis=1)
    assert len(labels) == 140 and np.bincount(labels, minlength=7).min() > 0


def test_the_focal_loss_is_cross_entropy_weighted_by_one_minus_p_to_the_gamma():
    assert isinstance(training_loss(TrainConfig()), keras.losses.CategoricalCrossentropy)
    focal = training_loss(TrainConfig(focal_gamma=2.0))
    target = np.eye(7, dtype=np.float32)[[0, 3]]
    probs = np.full((2, 7), 0.05, np.float32)
    probs[0, 0], probs[1, 3] = 0.7, 0.7
    p = 0.7
    assert float(focal(target, probs)) == pytest.approx((1 - p) ** 2 * -np.log(p), rel=1e-4)


def test_the_keys_are_checked_and_labelled_off_as_not_in_the_paper():
    with pytest.raises(ConfigError, match="sampling must be one of uniform, balanced"):
        TrainConfig(sampling="oversample")
    with pytest.raises(ConfigError, match="focal_gamma must be in"):
        TrainConfig(focal_gamma=-1.0)
    assert default_source("sampling") == default_source("focal_gamma") == "off (not in the paper)"


def test_training_with_both_uses_the_focal_objective(tmp_path):
    """Without L2 the objective (loss) is the focal loss, below the plain cross-entropy the run reports."""
    config = TrainConfig(regime="scratch", epochs=1, focal_gamma=2.0, sampling="balanced", l2=0.0, stall_epochs=0,
                         **FAST)
    history = train(config, tiny_dataset(), tmp_path / "run").history
    assert (history["loss"] < history["cross_entropy"]).all()
