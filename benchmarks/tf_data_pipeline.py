"""Today's tf.data input pipeline, kept as the reference the backend-neutral one is measured against.

Until issue 27 ``study.pipeline`` batched the cached uint8 arrays with tf.data and augmented each batch with
one ``ImageProjectiveTransformV3`` (TensorFlow only). ``benchmarks.input_pipeline`` times the
backend-neutral pipeline against this one ("no slower on TensorFlow's CPU by more than 10%") and
``tests/test_pipeline.py`` checks that the two draw the same distribution of augmentations. Nothing in
``study/`` imports it.
"""
from __future__ import annotations

import math
import weakref

import tensorflow as tf

from study.config import TrainConfig
from study.data import CLASSES, Split
from study.pipeline import Augmentation, training_steps

_TENSORS: weakref.WeakKeyDictionary[Split, tuple[tf.Tensor, tf.Tensor]] = weakref.WeakKeyDictionary()


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
    """Batches of row indices: every row once per epoch; when training, reshuffled (seeded) each epoch,
    and without a last batch smaller than half a batch (``training_steps``).

    A training epoch drops such a batch of the rows its shuffle put last (other rows each epoch):
    BatchNorm normalizes a training batch by that batch's own statistics, and a batch of a few images
    has degenerate ones. On DenseNet169 at 48x48, whose last block sees 1x1 maps (its statistics are
    then over the batch's images alone), the 3-image batch that ended each epoch of 19,523 faces took
    a gradient step orders of magnitude larger than a whole batch's, once an epoch (docs/learning.md,
    "The paper's own model").
    """
    indices = tf.data.Dataset.range(n)
    if not training:
        return indices.batch(batch_size)
    indices = indices.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    return indices.batch(batch_size).take(training_steps(n, batch_size))


def with_batch_seeds(batches: tf.data.Dataset, seed: int) -> tf.data.Dataset:
    """Pairs each batch with a stateless-RNG seed: the same stream for the same seed, new each epoch."""
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    return tf.data.Dataset.zip((batches, seeds))


def augment(images: tf.Tensor, seed: tf.Tensor, augmentation: Augmentation) -> tf.Tensor:
    """Rotate, zoom, shift and flip each image of a float batch in one resampling pass (reflect fill),
    then change its contrast and brightness; pixels stay in 0..255."""
    n = tf.shape(images)[0]
    height, width = images.shape[1], images.shape[2]
    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 6))
    if augmentation.geometric:
        limit = augmentation.rotation * math.pi / 180.0
        angle = tf.random.stateless_uniform([n], seeds[0], -limit, limit)
        scale = tf.random.stateless_uniform([n], seeds[1], 1.0 - augmentation.zoom, 1.0 + augmentation.zoom)
        mirror = tf.ones([n])
        if augmentation.flip:
            mirror = tf.where(tf.random.stateless_uniform([n], seeds[2]) < 0.5, -1.0, 1.0)
        shift = tf.random.stateless_uniform([2, n], seeds[3], -augmentation.shift, augmentation.shift)
        transforms = _affine(angle, scale, mirror, shift[0] * width, shift[1] * height, height, width)
        images = tf.raw_ops.ImageProjectiveTransformV3(
            images=images, transforms=transforms, output_shape=tf.constant([height, width]),
            fill_value=tf.constant(0.0), interpolation="BILINEAR", fill_mode="REFLECT",
        )
    if augmentation.photometric:
        images = _photometric(images, seeds[4], seeds[5], augmentation)
    return images


def _photometric(images: tf.Tensor, contrast_seed: tf.Tensor, brightness_seed: tf.Tensor,
                 augmentation: Augmentation) -> tf.Tensor:
    n = tf.shape(images)[0]
    factor = tf.random.stateless_uniform([n, 1, 1, 1], contrast_seed, 1.0 - augmentation.contrast,
                                         1.0 + augmentation.contrast)
    offset = 255.0 * tf.random.stateless_uniform([n, 1, 1, 1], brightness_seed, -augmentation.brightness,
                                                 augmentation.brightness)
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    return tf.clip_by_value((images - mean) * factor + mean + offset, 0.0, 255.0)


def _affine(angle: tf.Tensor, scale: tf.Tensor, mirror: tf.Tensor, dx: tf.Tensor, dy: tf.Tensor, height: int,
            width: int) -> tf.Tensor:
    """Per image, the output->input map ``in = c + d + scale * R(angle) * diag(mirror, 1) * (out - c)``
    about the centre ``c``, shifted by ``d = (dx, dy)`` pixels, as ImageProjectiveTransformV3's 8
    coefficients."""
    cos, sin = tf.cos(angle) * scale, tf.sin(angle) * scale
    a0, a1, b0, b1 = cos * mirror, -sin, sin * mirror, cos
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    a2 = cx + dx - a0 * cx - a1 * cy
    b2 = cy + dy - b0 * cx - b1 * cy
    zeros = tf.zeros_like(angle)
    return tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
