"""tf.data input pipelines from the cached uint8 arrays.

What is shuffled is the vector of row indices, not the images: a shuffle buffer of 20k integers
fills in milliseconds, where one of 20k images stalled the first batch of every epoch. Each batch of
indices is then gathered from one uint8 tensor per split, memoized for the life of the ``Split``,
so the trials of a study neither copy the arrays again nor hold a copy each. Images stay uint8 until
gathered (4x less memory) and reach the model as float32 0..255: scaling lives inside the model.

Augmentation (training batches only) is one vectorized op per batch: the random rotation, zoom and
horizontal flip of each image compose into one affine matrix, and a single
``ImageProjectiveTransformV3`` resamples the batch, where Keras's three preprocessing layers
resampled it three times. Its random numbers are stateless, drawn from a per-batch seed stream that
is seeded by ``seed`` and differs every epoch, so a run is reproducible and each epoch sees new
augmentations. ``benchmarks.input_pipeline`` measures all of this against the plain Keras pipeline.

The batch order comes from ``index_batches``, which the frozen-feature cache
(``study.features``) uses too: a head trained on cached features sees the same batches, in the same
order, as one trained through the frozen backbone.
"""
from __future__ import annotations

import math
import weakref
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from study.config import TrainConfig
from study.data import CLASSES, Split

_TENSORS: weakref.WeakKeyDictionary[Split, tuple[tf.Tensor, tf.Tensor]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Augmentation:
    """The paper's rotation (degrees, +-), zoom (+- fraction) and horizontal flip."""

    rotation: float = 0.0
    zoom: float = 0.0
    flip: bool = False

    @classmethod
    def of(cls, config: TrainConfig | None) -> Augmentation:
        if config is None:
            return cls()
        return cls(float(config.rotation), float(config.zoom), bool(config.flip))

    @property
    def active(self) -> bool:
        return self.rotation > 0 or self.zoom > 0 or self.flip


def make_dataset(
    split: Split,
    batch_size: int,
    *,
    training: bool,
    config: TrainConfig | None = None,
    seed: int = 0,
) -> tf.data.Dataset:
    """Batches of (float32 images 0..255, one-hot labels); shuffled and augmented when training."""
    images, labels = split_tensors(split)
    augmentation = Augmentation.of(config) if training else Augmentation()
    batches = with_batch_seeds(index_batches(len(split.y), batch_size, training=training, seed=seed), seed)

    def load(indices: tf.Tensor, batch_seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x = tf.cast(tf.gather(images, indices), tf.float32)
        if augmentation.active:
            x = augment(x, batch_seed, augmentation)
        return x, tf.one_hot(tf.gather(labels, indices), len(CLASSES))

    return batches.map(load, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def split_tensors(split: Split) -> tuple[tf.Tensor, tf.Tensor]:
    """The split's images and labels as tensors, converted once per ``Split`` object."""
    if split not in _TENSORS:
        _TENSORS[split] = (tf.convert_to_tensor(split.x), tf.convert_to_tensor(split.y))
    return _TENSORS[split]


def index_batches(n: int, batch_size: int, *, training: bool, seed: int) -> tf.data.Dataset:
    """Batches of row indices: every row once per epoch, reshuffled (seeded) each epoch when training."""
    indices = tf.data.Dataset.range(n)
    if training:
        indices = indices.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    return indices.batch(batch_size)


def with_batch_seeds(batches: tf.data.Dataset, seed: int) -> tf.data.Dataset:
    """Pairs each batch with a stateless-RNG seed: the same stream for the same seed, new each epoch."""
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    return tf.data.Dataset.zip((batches, seeds))


def augment(images: tf.Tensor, seed: tf.Tensor, augmentation: Augmentation) -> tf.Tensor:
    """Rotate, zoom and flip each image of a float batch in one resampling pass (reflect fill)."""
    n = tf.shape(images)[0]
    height, width = images.shape[1], images.shape[2]
    angle_seed, zoom_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    limit = augmentation.rotation * math.pi / 180.0
    angle = tf.random.stateless_uniform([n], angle_seed, -limit, limit)
    scale = tf.random.stateless_uniform([n], zoom_seed, 1.0 - augmentation.zoom, 1.0 + augmentation.zoom)
    mirror = tf.ones([n])
    if augmentation.flip:
        mirror = tf.where(tf.random.stateless_uniform([n], flip_seed) < 0.5, -1.0, 1.0)
    transforms = _affine(angle, scale, mirror, height, width)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=tf.constant([height, width]),
        fill_value=tf.constant(0.0), interpolation="BILINEAR", fill_mode="REFLECT",
    )


def _affine(angle: tf.Tensor, scale: tf.Tensor, mirror: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """Per image, the output->input map ``in = c + scale * R(angle) * diag(mirror, 1) * (out - c)``
    about the centre ``c``, as ImageProjectiveTransformV3's 8 coefficients."""
    cos, sin = tf.cos(angle) * scale, tf.sin(angle) * scale
    a0, a1, b0, b1 = cos * mirror, -sin, sin * mirror, cos
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    a2 = cx - a0 * cx - a1 * cy
    b2 = cy - b0 * cx - b1 * cy
    zeros = tf.zeros_like(angle)
    return tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)


def class_weights(y: np.ndarray, mode: str) -> dict[int, float] | None:
    """sklearn's 'balanced' weights (n / (k * count)) for classes present; None for mode 'none'."""
    if mode == "none":
        return None
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(y)
    weights = compute_class_weight("balanced", classes=present, y=y)
    return {int(c): float(w) for c, w in zip(present, weights)}
