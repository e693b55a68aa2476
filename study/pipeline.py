"""Input batches from the cached uint8 arrays, the same on every Keras backend (no tf.data).

``Batches`` is a ``keras.utils.PyDataset``: Keras feeds it to ``fit``, ``evaluate`` and ``predict``
under TensorFlow, JAX and PyTorch alike. What is shuffled is the vector of row indices, not the
images; each batch is gathered from the split's own uint8 array (no copy per trial, 4x less memory
than float32) and reaches the model as float32 0..255: scaling lives inside the model.

Augmentation (training batches only) is one resampling per batch: the random rotation, zoom, shift
and horizontal flip of each image compose into one affine matrix, and a single
``keras.ops.image.affine_transform`` resamples the batch (on TensorFlow that is the same
``ImageProjectiveTransformV3`` the pipeline used before; under JAX or PyTorch it runs where their
arrays live, on the GPU there); contrast and brightness are then one multiply-add in ``keras.ops``.
The random numbers of a batch (a few per image) are drawn with NumPy from ``(seed, epoch, batch)``,
so a run is reproducible for a seed, the same draws on every backend, whatever thread gathers the
batch, and each epoch sees new augmentations and a new order.

``benchmarks.input_pipeline`` measures it against the tf.data pipeline it replaced
(``benchmarks.tf_data_pipeline``) and against Keras's plain recipe; ``tests/test_pipeline.py`` checks
that it draws the same distribution of augmentations as that one.

The batch order comes from ``index_batches``, which the frozen-feature cache (``study.features``)
uses too: a head trained on cached features sees the same batches, in the same order, as one trained
through the frozen backbone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np

from study.config import TrainConfig
from study.data import CLASSES, Split


@dataclass(frozen=True)
class Augmentation:
    """The paper's rotation (degrees, +-), zoom (+- fraction) and horizontal flip, and what FER
    practice adds: shift (+- fraction of the size), brightness (+- fraction of 255), contrast
    (+- fraction)."""

    rotation: float = 0.0
    zoom: float = 0.0
    flip: bool = False
    shift: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0

    @classmethod
    def of(cls, config: TrainConfig | None) -> Augmentation:
        if config is None:
            return cls()
        return cls(float(config.rotation), float(config.zoom), bool(config.flip), float(config.shift),
                   float(config.brightness), float(config.contrast))

    @property
    def geometric(self) -> bool:
        return self.rotation > 0 or self.zoom > 0 or self.flip or self.shift > 0

    @property
    def photometric(self) -> bool:
        return self.brightness > 0 or self.contrast > 0

    @property
    def active(self) -> bool:
        return self.geometric or self.photometric


# ----------------------------------------------------------------------------------- batch order
def index_batches(n: int, batch_size: int, *, training: bool, seed: int, epoch: int = 0,
                  weights: np.ndarray | None = None) -> list[np.ndarray]:
    """The row indices of each batch of one epoch: every row once, in order when not training; when
    training, shuffled by ``(seed, epoch)`` and without a last batch smaller than half a batch
    (``training_steps``). ``weights`` (training only; ``sampling_weights``): the epoch's ``n`` rows are drawn
    with replacement, row i with probability ``weights[i]``, instead of each row once.

    A training epoch drops such a batch of the rows its shuffle put last (other rows each epoch):
    BatchNorm normalizes a training batch by that batch's own statistics, and a batch of a few images
    has degenerate ones. On DenseNet169 at 48x48, whose last block sees 1x1 maps (its statistics are
    then over the batch's images alone), the 3-image batch that ended each epoch of 19,523 faces took
    a gradient step orders of magnitude larger than a whole batch's, once an epoch (docs/learning.md,
    "The paper's own model").
    """
    if not training:
        return [np.arange(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(n) if weights is None else rng.choice(n, size=n, replace=True, p=weights)
    return [order[i * batch_size:(i + 1) * batch_size] for i in range(training_steps(n, batch_size))]


def sampling_weights(y: np.ndarray, mode: str) -> np.ndarray | None:
    """Each training row's probability of being drawn (``TrainConfig.sampling``): None for "uniform" (each
    row once an epoch); for "balanced", 1 / (classes present x the row's class count), so every class present
    is drawn equally often on average."""
    if mode == "uniform":
        return None
    counts = np.bincount(y)
    weights = 1.0 / (np.count_nonzero(counts) * counts[y])
    return weights / weights.sum()


def training_steps(n: int, batch_size: int) -> int:
    """Steps of one training epoch over ``n`` rows: the whole batches, and a last partial one only if it
    holds at least half a batch (one batch of all rows when there are fewer than half a batch)."""
    whole, rest = divmod(n, batch_size)
    return max(1, whole + (1 if 2 * rest >= batch_size else 0))


def batch_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The random numbers of one batch: the same for the same (seed, epoch, batch), new for each."""
    return np.random.default_rng([seed, epoch, index, 1])


# ----------------------------------------------------------------------------------- batches
class IndexedBatches(keras.utils.PyDataset):
    """Batches of ``n`` rows in ``index_batches``' order: a new shuffle each epoch when training.
    Subclasses say what a batch of rows is (``batch(rows, rng)``, ``rng`` that batch's random numbers)."""

    def __init__(self, n: int, batch_size: int, *, training: bool, seed: int = 0,
                 weights: np.ndarray | None = None) -> None:
        super().__init__()
        self.n, self.batch_size, self.training, self.seed = n, batch_size, training, seed
        self.weights = weights if training else None
        self.epoch = 0
        self._order = self._indices()

    def _indices(self) -> list[np.ndarray]:
        return index_batches(self.n, self.batch_size, training=self.training, seed=self.seed, epoch=self.epoch,
                             weights=self.weights)

    def __len__(self) -> int:
        return len(self._order)

    def __getitem__(self, index: int):
        return self.batch(self._order[index], batch_rng(self.seed, self.epoch, index))

    def batch(self, rows: np.ndarray, rng: np.random.Generator):
        raise NotImplementedError

    def on_epoch_end(self) -> None:
        if self.training:
            self.epoch += 1
            self._order = self._indices()


class Batches(IndexedBatches):
    """Batches of (float32 images 0..255, one-hot labels) of a split; shuffled and augmented when
    training, a new order and new augmentations each epoch. ``labels=False`` yields images alone."""

    def __init__(self, split: Split, batch_size: int, *, training: bool, augmentation: Augmentation | None = None,
                 seed: int = 0, labels: bool = True, sampling: str = "uniform") -> None:
        self.split, self.labels = split, labels
        self.augmentation = augmentation or Augmentation()
        super().__init__(len(split.y), batch_size, training=training, seed=seed,
                         weights=sampling_weights(split.y, sampling))

    def batch(self, rows: np.ndarray, rng: np.random.Generator):
        x = self.split.x[rows].astype(np.float32)
        if self.augmentation.active:
            x = augment(x, rng, self.augmentation)
        return (x, one_hot(self.split.y[rows])) if self.labels else (x,)

    def spec(self) -> tuple[keras.KerasTensor, keras.KerasTensor]:
        """Symbolic (images, labels) of a batch, for building a model's training state before ``fit``."""
        return (keras.KerasTensor((None, *self.split.x.shape[1:]), "float32"),
                keras.KerasTensor((None, len(CLASSES)), "float32"))


def make_dataset(split: Split, batch_size: int, *, training: bool, config: TrainConfig | None = None,
                 seed: int = 0, sampling: str = "uniform") -> Batches:
    """Batches of (float32 images 0..255, one-hot labels); shuffled (or drawn: ``sampling``) and augmented
    (``config``'s augmentation) when training."""
    augmentation = Augmentation.of(config) if training else Augmentation()
    return Batches(split, batch_size, training=training, augmentation=augmentation, seed=seed, sampling=sampling)


def one_hot(labels: np.ndarray) -> np.ndarray:
    return np.eye(len(CLASSES), dtype=np.float32)[labels]


# ----------------------------------------------------------------------------------- augmentation
@dataclass(frozen=True)
class Draw:
    """One batch's random augmentation: per image an affine map (``affine_transform``'s 8 numbers, output
    to input), a contrast factor and a brightness offset (pixels)."""

    transforms: np.ndarray  # (n, 8) float32
    contrast: np.ndarray  # (n,)
    offset: np.ndarray  # (n,)


def draw(n: int, height: int, width: int, augmentation: Augmentation, rng: np.random.Generator) -> Draw:
    """Per image: an angle, a scale, a mirror, a shift, a contrast factor and a brightness offset, each
    uniform in its +- range (the mirror a fair coin), composed as in ``affine``."""
    limit = augmentation.rotation * math.pi / 180.0
    angle = rng.uniform(-limit, limit, n)
    scale = rng.uniform(1.0 - augmentation.zoom, 1.0 + augmentation.zoom, n)
    mirror = np.where(rng.uniform(size=n) < 0.5, -1.0, 1.0) if augmentation.flip else np.ones(n)
    shift = rng.uniform(-augmentation.shift, augmentation.shift, (2, n))
    contrast = rng.uniform(1.0 - augmentation.contrast, 1.0 + augmentation.contrast, n)
    offset = 255.0 * rng.uniform(-augmentation.brightness, augmentation.brightness, n)
    transforms = affine(angle, scale, mirror, shift[0] * width, shift[1] * height, height, width)
    return Draw(transforms.astype(np.float32), contrast.astype(np.float32), offset.astype(np.float32))


def augment(images, rng: np.random.Generator, augmentation: Augmentation):
    """Rotate, zoom, shift and flip each image of a float batch (N, H, W, C) in one resampling pass
    (reflect fill), then change its contrast and brightness; pixels stay in 0..255. Runs in
    ``keras.ops``, on the backend's device; returns the backend's tensor."""
    n, height, width = images.shape[0], images.shape[1], images.shape[2]
    drawn = draw(n, height, width, augmentation, rng)
    x = keras.ops.convert_to_tensor(images, "float32")
    if augmentation.geometric:
        x = keras.ops.image.affine_transform(x, keras.ops.convert_to_tensor(drawn.transforms), interpolation="bilinear",
                                             fill_mode="reflect", data_format="channels_last")
    if augmentation.photometric:
        factor = keras.ops.reshape(keras.ops.convert_to_tensor(drawn.contrast), (n, 1, 1, 1))
        offset = keras.ops.reshape(keras.ops.convert_to_tensor(drawn.offset), (n, 1, 1, 1))
        mean = keras.ops.mean(x, axis=(1, 2, 3), keepdims=True)
        x = keras.ops.clip((x - mean) * factor + mean + offset, 0.0, 255.0)
    return x


def affine(angle: np.ndarray, scale: np.ndarray, mirror: np.ndarray, dx: np.ndarray, dy: np.ndarray, height: int,
           width: int) -> np.ndarray:
    """Per image, the output->input map ``in = c + d + scale * R(angle) * diag(mirror, 1) * (out - c)``
    about the centre ``c``, shifted by ``d = (dx, dy)`` pixels, as ``affine_transform``'s 8 numbers."""
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
    a0, a1, b0, b1 = cos * mirror, -sin, sin * mirror, cos
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    a2 = cx + dx - a0 * cx - a1 * cy
    b2 = cy + dy - b0 * cx - b1 * cy
    zeros = np.zeros_like(angle)
    return np.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)


def class_weights(y: np.ndarray, mode: str) -> dict[int, float] | None:
    """sklearn's 'balanced' weights (n / (k * count)) for classes present; None for mode 'none'."""
    if mode == "none":
        return None
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(y)
    weights = compute_class_weight("balanced", classes=present, y=y)
    return {int(c): float(w) for c, w in zip(present, weights)}
