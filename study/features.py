"""The frozen-feature cache: transfer phase 1 trains the head on backbone outputs computed once.

In phase 1 the backbone is frozen and its BatchNorm layers normalize with their moving statistics,
so its output for an image never changes: pushing every image through it every epoch (and again in
every trial of a search) recomputes the same numbers. Here the backbone runs once over the training
and validation splits, up to the head's global average pooling, and phase 1 fits the head alone on
those features. Without augmentation this is exact: the head sees the same values, in the same
batches (``pipeline.index_batches``), with the same dropout draws, as through the backbone.

With augmentation a cached feature can only stand for a fixed augmented image. ``frozen_augmentation``
decides: "live" (the default, the paper's schedule) keeps phase 1 on the backbone with a new
augmentation every epoch; "none" trains phase 1 on the un-augmented images, exactly and from one
computation shared by every trial of a study (augmentation still applies when fine-tuning); "views"
caches ``frozen_feature_views`` (K) augmented views of every training image and each epoch draws
one per image, so the head sees K distinct augmentations instead of a new one each epoch. The
trade-off is measured in ``benchmarks.frozen_features`` and discussed in docs/performance.md.

A cache entry is keyed by what decides the numbers: backbone and image size, a digest of the
backbone's actual weights (however they were loaded), digests of the train and validation arrays,
the views (with the augmentation and seed when they are augmented), the precision, the Keras backend and the versions. It
is kept in-process (so the trials of a study share it) and under ``$FER_STUDY_CACHE/features`` (so
other workers and resumed searches do too); deleting that folder is always safe.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from study.config import TrainConfig
from study.data import CLASSES, Dataset, Split, cache_dir
from study.model import HEAD_LAYERS, backbone_of, head_layers_of, predict
from study.pipeline import Augmentation, Batches, IndexedBatches, one_hot, sampling_weights

FEATURE_LAYER = HEAD_LAYERS[0]  # the head's global average pooling: features are (N, channels)
EXTRACT_BATCH = 256  # fixed: it decides which view seed meets which image
_FORMAT = 1
_MEMO_BYTES = 2 * 2**30  # in-process memo bound; the disk cache has no bound (delete it at will)
_MEMO: OrderedDict[str, FrozenFeatures] = OrderedDict()
_DIGESTS: weakref.WeakKeyDictionary[Split, str] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, eq=False)
class FrozenFeatures:
    """Backbone features of one run's data: ``train`` (views, N, C) and ``val`` (N_val, C), float32."""

    train: np.ndarray
    val: np.ndarray
    key: str
    source: str  # "memory" | "disk" | "computed"
    seconds: float  # spent getting them in this run

    @property
    def views(self) -> int:
        return int(self.train.shape[0])

    def describe(self) -> dict[str, object]:
        """What the run manifest records about the cache."""
        return {"key": self.key, "source": self.source, "views": self.views, "seconds": round(self.seconds, 3)}


def cached_views(config: TrainConfig) -> int:
    """How many views of each training image phase 1 trains on from cached features; 0 means it
    goes through the backbone (live augmentation, or the cache switched off)."""
    if config.regime != "transfer" or not config.feature_cache:
        return 0
    if not frozen_augmentation(config).active:
        return 1  # deterministic input: one exact view
    return config.frozen_feature_views if config.frozen_augmentation == "views" else 0


def frozen_augmentation(config: TrainConfig) -> Augmentation:
    """The augmentation phase 1 applies: the config's, unless ``frozen_augmentation`` is "none"."""
    return Augmentation() if config.frozen_augmentation == "none" else Augmentation.of(config)


def features_dir() -> Path:
    return cache_dir() / "features"


def frozen_features(model: keras.Model, config: TrainConfig, data: Dataset, views: int) -> FrozenFeatures:
    """The features of ``model``'s frozen backbone: from the memo, else from disk, else computed."""
    started = time.perf_counter()
    key = feature_key(model, config, data, views)
    found = _MEMO.get(key)
    source = "memory"
    if found is None:
        found, source = _read(key), "disk"
    if found is None:
        found, source = _compute(model, config, data, views), "computed"
        _write(key, found)
    _remember(key, found)
    return FrozenFeatures(found.train, found.val, key, source, time.perf_counter() - started)


def feature_key(model: keras.Model, config: TrainConfig, data: Dataset, views: int) -> str:
    """A digest of everything that decides the cached numbers (see the module docstring)."""
    augmentation = frozen_augmentation(config)
    parts = {
        "format": _FORMAT,
        "backbone": config.backbone,
        "input_shape": list(model.input_shape[1:]),
        "backbone_input_shape": list(backbone_of(model).input_shape[1:]),
        "weights": _weights_digest(backbone_of(model)),
        "train": split_digest(data.train),
        "val": split_digest(data.val),
        "views": views,
        "augmentation": [*dataclasses.astuple(augmentation), config.seed] if augmentation.active else None,
        "precision": config.precision,
        "versions": [keras.config.backend(), _backend_version(), keras.__version__],
    }
    return hashlib.blake2b(json.dumps(parts, sort_keys=True).encode(), digest_size=16).hexdigest()


def split_digest(split: Split) -> str:
    """Content digest of a split's arrays, computed once per ``Split`` object."""
    if split not in _DIGESTS:
        h = hashlib.blake2b(digest_size=16)
        for array in (split.x, split.y):
            h.update(str((array.dtype, array.shape)).encode())
            h.update(np.ascontiguousarray(array).data)
        _DIGESTS[split] = h.hexdigest()
    return _DIGESTS[split]


def _weights_digest(backbone: keras.Model) -> str:
    h = hashlib.blake2b(digest_size=16)
    for variable in backbone.weights:
        h.update(np.ascontiguousarray(keras.ops.convert_to_numpy(variable)).data)
    return h.hexdigest()


# ------------------------------------------------------------------------------------ computing
def _compute(model: keras.Model, config: TrainConfig, data: Dataset, views: int) -> FrozenFeatures:
    extractor = keras.Model(model.inputs, model.get_layer(FEATURE_LAYER).output, name="frozen_features")
    augmentation = frozen_augmentation(config)  # inactive in the exact case
    train = np.stack([_extract(extractor, data.train, augmentation, config.seed + 1000 * v) for v in range(views)])
    val = _extract(extractor, data.val, Augmentation(), 0)
    return FrozenFeatures(train, val, "", "computed", 0.0)


def _extract(extractor: keras.Model, split: Split, augmentation: Augmentation, seed: int) -> np.ndarray:
    batches = Batches(split, EXTRACT_BATCH, training=False, augmentation=augmentation, seed=seed, labels=False)
    return predict(extractor, batches)


# ------------------------------------------------------------------------------------ training
def head_model(model: keras.Model, features: FrozenFeatures) -> keras.Model:
    """The model's own head layers (shared, not copied) on a features input: training it trains them."""
    inputs = keras.Input(features.val.shape[1:], dtype="float32", name="features")
    x = inputs
    for name in head_layers_of(model)[1:]:
        x = model.get_layer(name)(x)
    return keras.Model(inputs, x, name=f"{model.name}_head")


class FeatureBatches(IndexedBatches):
    """(features, one-hot) batches in ``make_dataset``'s order (the same ``index_batches``); training
    draws one of the cached views per image, anew each epoch."""

    def __init__(self, features: FrozenFeatures, split: Split, batch_size: int, *, training: bool,
                 seed: int = 0, sampling: str = "uniform") -> None:
        self.x = features.train if training else features.val[None]
        self.split = split
        super().__init__(len(split.y), batch_size, training=training, seed=seed,
                         weights=sampling_weights(split.y, sampling))

    def batch(self, rows: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        views = len(self.x)
        view = rng.integers(0, views, len(rows)) if views > 1 else 0
        return self.x[view, rows], one_hot(self.split.y[rows])

    def spec(self) -> tuple[keras.KerasTensor, keras.KerasTensor]:
        return (keras.KerasTensor((None, self.x.shape[-1]), "float32"),
                keras.KerasTensor((None, len(CLASSES)), "float32"))


def feature_dataset(features: FrozenFeatures, split: Split, batch_size: int, *, training: bool,
                    seed: int = 0, sampling: str = "uniform") -> FeatureBatches:
    """(features, one-hot) batches in ``make_dataset``'s order; training draws one view per image."""
    return FeatureBatches(features, split, batch_size, training=training, seed=seed, sampling=sampling)


def _backend_version() -> str:
    """The version of the library under Keras (TensorFlow, JAX or PyTorch): its numbers may differ."""
    import importlib

    name = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(keras.config.backend())
    return getattr(importlib.import_module(name), "__version__", "") if name else ""


# ------------------------------------------------------------------------------------ storing
def _remember(key: str, features: FrozenFeatures) -> None:
    """Most recently used last; the oldest go once the memo outgrows ``_MEMO_BYTES`` (never the newest)."""
    _MEMO[key] = features
    _MEMO.move_to_end(key)
    while len(_MEMO) > 1 and sum(f.train.nbytes + f.val.nbytes for f in _MEMO.values()) > _MEMO_BYTES:
        _MEMO.popitem(last=False)


def forget() -> None:
    """Empty the in-process memo (the disk cache stays)."""
    _MEMO.clear()


def _path(key: str) -> Path:
    return features_dir() / f"{key}.npz"


def _read(key: str) -> FrozenFeatures | None:
    """An unreadable file is treated as absent (and rewritten): the cache is never the truth."""
    try:
        with np.load(_path(key)) as stored:
            return FrozenFeatures(stored["train"], stored["val"], key, "disk", 0.0)
    except (OSError, KeyError, ValueError):
        return None


def _write(key: str, features: FrozenFeatures) -> None:
    """Atomic (temporary file, then rename), so a concurrent worker never reads half a file."""
    folder = features_dir()
    folder.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".npz", dir=folder)
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(out, train=features.train, val=features.val)
        os.replace(tmp, _path(key))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
