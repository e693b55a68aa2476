"""tf.data input pipelines from the cached uint8 arrays.

Images stay uint8 until a batch is formed (4x less memory to shuffle), augmentation runs on whole
batches inside tf.data (parallel to the training step, training batches only), and every batch is
prefetched. Pixels reach the model as float32 0..255: scaling lives inside the model.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf
import keras

from study.config import TrainConfig
from study.data import CLASSES, Split


def augmenter(config: TrainConfig, seed: int) -> keras.Sequential | None:
    """The paper's rotation / horizontal flip / zoom, with the config's strengths; None if all off."""
    layers: list[keras.layers.Layer] = []
    if config.rotation > 0:
        layers.append(keras.layers.RandomRotation(config.rotation / 360.0, fill_mode="reflect", seed=seed))
    if config.flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed + 1))
    if config.zoom > 0:
        layers.append(keras.layers.RandomZoom((-config.zoom, config.zoom), fill_mode="reflect", seed=seed + 2))
    return keras.Sequential(layers, name="augment") if layers else None


def make_dataset(
    split: Split,
    batch_size: int,
    *,
    training: bool,
    config: TrainConfig | None = None,
    seed: int = 0,
) -> tf.data.Dataset:
    """Batches of (float32 images 0..255, one-hot labels); shuffled and augmented when training."""
    ds = tf.data.Dataset.from_tensor_slices((split.x, split.y))
    if training:
        ds = ds.shuffle(len(split.y), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    ds = ds.map(_to_model_input, num_parallel_calls=tf.data.AUTOTUNE)
    augment = augmenter(config, seed) if (training and config is not None) else None
    if augment is not None:
        ds = ds.map(lambda x, y: (augment(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def _to_model_input(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    return tf.cast(x, tf.float32), tf.one_hot(y, len(CLASSES))


def class_weights(y: np.ndarray, mode: str) -> dict[int, float] | None:
    """sklearn's 'balanced' weights (n / (k * count)) for classes present; None for mode 'none'."""
    if mode == "none":
        return None
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(y)
    weights = compute_class_weight("balanced", classes=present, y=y)
    return {int(c): float(w) for c, w in zip(present, weights)}
