"""The backend-neutral input batches: their order, their reproducibility, and that they augment with
the same distribution as the tf.data pipeline they replaced (``benchmarks.tf_data_pipeline``)."""
from __future__ import annotations

import keras
import numpy as np
import pytest
from scipy import stats

from study.config import TrainConfig
from study.data import Split
from study.pipeline import Augmentation, Batches, augment, batch_rng, make_dataset, training_steps

PAPER = Augmentation(rotation=10.0, zoom=0.1, flip=True)
EVERYTHING = Augmentation(rotation=15.0, zoom=0.15, flip=True, shift=0.1, brightness=0.2, contrast=0.3)


def _split(n: int = 50) -> Split:
    rng = np.random.default_rng(0)
    return Split(rng.integers(0, 256, (n, 48, 48, 1), dtype=np.uint8), rng.integers(0, 7, n))


def _face() -> np.ndarray:
    """An asymmetric test card: a bright block off centre on a horizontal ramp."""
    image = np.tile(np.linspace(0.0, 120.0, 48, dtype=np.float32), (48, 1))[..., None]
    image[10:22, 28:40] = 250.0
    return image


def _features(batch: np.ndarray) -> np.ndarray:
    """Per image: the mean pixel, the bright block's centre (row, column) and its area."""
    bright = batch[..., 0] > 200
    rows, cols = np.arange(48)[None, :, None], np.arange(48)[None, None, :]
    area = bright.sum(axis=(1, 2)).clip(min=1)
    return np.stack([batch.mean(axis=(1, 2, 3)), (bright * rows).sum(axis=(1, 2)) / area,
                     (bright * cols).sum(axis=(1, 2)) / area, bright.sum(axis=(1, 2))], axis=1)


def test_training_batches_cover_the_epoch_once_in_a_new_order_each_epoch():
    split = _split()
    batches = Batches(split, 16, training=True, seed=3)
    first = [batches[i][1].argmax(axis=1) for i in range(len(batches))]
    order0 = np.concatenate(batches._order)
    batches.on_epoch_end()
    order1 = np.concatenate(batches._order)
    assert len(batches) == training_steps(50, 16) == 3  # the last 2 rows wait for another epoch
    assert len(set(order0)) == len(order0) == 48 and not np.array_equal(order0, order1)
    np.testing.assert_array_equal(np.concatenate(first), split.y[order0])
    again = Batches(split, 16, training=True, seed=3)
    np.testing.assert_array_equal(np.concatenate(again._order), order0)  # the same seed, the same epochs


def test_evaluation_batches_are_in_order_and_unaugmented():
    split = _split()
    batches = make_dataset(split, 16, training=False, config=TrainConfig(**{"rotation": 30.0}))
    x = np.concatenate([keras.ops.convert_to_numpy(batches[i][0]) for i in range(len(batches))])
    np.testing.assert_array_equal(x, split.x.astype(np.float32))
    assert batches[0][1].shape == (16, 7) and x.dtype == np.float32


def test_augmentation_is_reproducible_per_seed_epoch_and_batch():
    batch = np.stack([_face()] * 8)

    def run(seed, epoch, index):
        return keras.ops.convert_to_numpy(augment(batch, batch_rng(seed, epoch, index), EVERYTHING))

    np.testing.assert_array_equal(run(0, 0, 0), run(0, 0, 0))
    assert not np.allclose(run(0, 0, 0), run(0, 1, 0)) and not np.allclose(run(0, 0, 0), run(0, 0, 1))
    out = run(0, 0, 0)
    assert out.min() >= 0.0 and out.max() <= 255.0 and out.shape == batch.shape


@pytest.mark.parametrize("augmentation", [PAPER, EVERYTHING], ids=["paper", "everything"])
def test_the_augmentation_has_the_distribution_of_the_tf_data_pipeline(augmentation):
    """2,048 augmentations of one test card by each pipeline: each image's mean, the bright block's
    centre and its area have the same distribution (two-sample Kolmogorov-Smirnov), and the mean
    augmented images agree within 8 grey levels at every pixel."""
    if keras.config.backend() != "tensorflow":
        pytest.skip("the reference pipeline is TensorFlow's")
    import tensorflow as tf

    from benchmarks.tf_data_pipeline import augment as reference

    n, batch = 2048, np.stack([_face()] * 256)
    ours = np.concatenate([keras.ops.convert_to_numpy(augment(batch, batch_rng(7, 0, i), augmentation))
                           for i in range(n // 256)])
    theirs = np.concatenate([reference(tf.constant(batch), tf.constant([7, i], tf.int64), augmentation).numpy()
                             for i in range(n // 256)])
    for k, (a, b) in enumerate(zip(_features(ours).T, _features(theirs).T)):
        assert stats.ks_2samp(a, b).pvalue > 1e-3, f"feature {k} differs"
    # per pixel, the two means of 2,048 draws differ by chance by up to ~3.5 standard errors (~6 levels)
    assert np.abs(ours.mean(axis=0) - theirs.mean(axis=0)).max() < 8.0
