"""Why a run does or does not learn: a probe that reads the model every few steps.

``LearningProbe`` is a Keras callback. Every ``every`` training steps (and once before the first)
it measures, on fixed probe batches (training images without augmentation; validation images):

* the data term (cross-entropy) against the penalty (the sum of the regularization losses, what
  ``l2`` adds to Keras's ``loss``);
* the gradient norm of the data term for each layer group (the backbone's bottom, middle and top
  blocks, each Dense layer of the head), and of the penalty for the head's Dense layers: which of
  the two moves the head;
* the share of dead ReLUs in each hidden Dense layer of the head (units that output 0 for every
  probe image);
* the predictions' entropy (mean, divided by log 7: 1 is the uniform guess), the share of the
  most-predicted class, and the probe's validation accuracy beside its majority-class rate.

Gradients are taken as training takes them (``training=True``: dropout on, BatchNorm on the batch's
statistics); the BatchNorm moving statistics that call would update are restored afterwards, so
the probe leaves the run it watches untouched. ``benchmarks.learning`` drives it; docs/learning.md
shows what it measured.
"""
from __future__ import annotations

import math
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import keras
import numpy as np

from study import backend
from study.data import CLASSES, Split
from study.model import BACKBONE_LAYER, all_layers, backbone_blocks

PROBE_TRAIN = 256
PROBE_VAL = 1024
CHUNK = 128  # images per eager call: a DenseNet169 call on all 1,024 held ~10 GB
SMALL_BATCH = 3  # the last batch of an epoch of the real faces' 19,523 training faces at 64 a batch, before it was dropped
HEAD_DENSE = ("head_dense1", "head_dense2", "head_dense3")


@dataclass(frozen=True)
class ProbeBatches:
    """The fixed images the probe reads: the first ``n`` of train (un-augmented) and of validation."""

    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray

    @classmethod
    def of(cls, train: Split, val: Split, n_train: int = PROBE_TRAIN, n_val: int = PROBE_VAL) -> ProbeBatches:
        return cls(train.x[:n_train].astype(np.float32), train.y[:n_train], val.x[:n_val].astype(np.float32),
                   val.y[:n_val])

    @property
    def majority_rate(self) -> float:
        return float(np.bincount(self.val_y, minlength=len(CLASSES)).max() / len(self.val_y))


class LearningProbe(keras.callbacks.Callback):
    """Measures the model every ``every`` steps into ``rows`` (one dict per measurement)."""

    def __init__(self, batches: ProbeBatches, every: int = 50) -> None:
        super().__init__()
        self.batches = batches
        self.every = every
        self.rows: list[dict[str, Any]] = []
        self.step = 0
        self.started = time.perf_counter()

    def on_train_begin(self, logs: dict | None = None) -> None:
        if not self.rows:
            self.rows.append(self.measure())

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.step += 1
        if self.step % self.every == 0:
            self.rows.append(self.measure())

    def measure(self) -> dict[str, Any]:
        model = self.model
        row: dict[str, Any] = {"step": self.step, "seconds": round(time.perf_counter() - self.started, 1)}
        with warnings.catch_warnings():  # Keras notes that a bare tensor stands in for its one named input
            warnings.filterwarnings("ignore", message="The structure of `inputs`")
            row.update(_objective_terms(model, self.batches))
            row.update(_gradient_norms(model, self.batches))
            row.update(_head_and_predictions(model, self.batches))
            row.update(_batch_statistics_accuracy(model, self.batches))
            row.update(_backbone_scale(model, self.batches))
        return row


@contextmanager
def statistics_kept(model: keras.Model) -> Iterator[None]:
    """The block may call ``model`` in training mode: the BatchNorm statistics it moves are put back."""
    saved = [keras.ops.convert_to_numpy(v) for v in model.non_trainable_variables]
    try:
        yield
    finally:
        for variable, value in zip(model.non_trainable_variables, saved):
            variable.assign(value)


def _objective_terms(model: keras.Model, batches: ProbeBatches) -> dict[str, float]:
    probs = model(batches.train_x, training=False)
    data = float(_data_term(batches.train_y)(probs, []))
    penalty = float(sum(float(loss) for loss in model.losses)) if model.losses else 0.0
    return {"data_term": data, "penalty": penalty}


def layer_groups(model: keras.Model) -> dict[str, list[keras.Variable]]:
    """Trainable weights by group: the backbone's bottom, middle and top thirds of its blocks, then
    each Dense layer of the head (kernels and biases)."""
    groups: dict[str, list[keras.Variable]] = {}
    try:
        blocks = backbone_blocks(model.get_layer(BACKBONE_LAYER))
    except ValueError:
        blocks = []
    thirds = np.array_split(np.arange(len(blocks)), 3) if blocks else []
    for name, members in zip(("backbone_bottom", "backbone_middle", "backbone_top"), thirds):
        weights = [w for i in members for layer in blocks[i] for w in layer.trainable_weights]
        if weights:
            groups[name] = weights
    for name in (*HEAD_DENSE, "head_output"):
        try:
            weights = list(model.get_layer(name).trainable_weights)
        except ValueError:
            continue
        if weights:
            groups[name] = weights
    return groups


def _data_term(labels: np.ndarray) -> Callable:
    """The mean cross-entropy of a model's output against ``labels``, as an objective of ``backend``."""
    targets = np.eye(len(CLASSES), dtype=np.float32)[labels]
    return lambda outputs, losses: keras.ops.mean(keras.losses.categorical_crossentropy(targets, outputs))


def _penalty(outputs, losses):
    return keras.ops.sum(keras.ops.stack([keras.ops.cast(loss, "float32") for loss in losses]))


def _gradient_norms(model: keras.Model, batches: ProbeBatches) -> dict[str, float]:
    """Data-term gradient norm per group, and the penalty's for the head's Dense kernels."""
    groups = layer_groups(model)
    variables = [w for ws in groups.values() for w in ws]
    if not variables:
        return {}
    objectives = {"data": _data_term(batches.train_y), **({"penalty": _penalty} if model.losses else {})}
    with statistics_kept(model):
        grads = backend.variable_gradients(model, batches.train_x, objectives, variables, training=True)
    norms: dict[str, float] = {}
    start = 0
    for name, weights in groups.items():
        span = slice(start, start + len(weights))
        start += len(weights)
        norms[f"grad_{name}"] = _norm(grads["data"][span])
        if "penalty" in grads and name.startswith("head_dense"):
            norms[f"penalty_grad_{name}"] = _norm(grads["penalty"][span])
    return norms


def _norm(arrays: list[np.ndarray | None]) -> float:
    """The global norm of the arrays present (the square root of all their squares' sum)."""
    present = [np.asarray(a, np.float64) for a in arrays if a is not None]
    return float(math.sqrt(sum(float(np.sum(a * a)) for a in present))) if present else 0.0


def _head_and_predictions(model: keras.Model, batches: ProbeBatches) -> dict[str, float]:
    names = [n for n in HEAD_DENSE if _has_layer(model, n)]
    outputs = [model.get_layer(n).output for n in names] + [model.output]
    reader = keras.Model(model.inputs, outputs)
    chunks = [reader(batches.val_x[i:i + CHUNK], training=False) for i in range(0, len(batches.val_y), CHUNK)]
    chunks = [c if isinstance(c, (list, tuple)) else [c] for c in chunks]  # a head without hidden layers
    values = [np.concatenate([np.asarray(c[k]) for c in chunks]) for k in range(len(chunks[0]))]
    activations, probs = values[:-1], values[-1].astype(np.float64)
    row = {f"dead_{n}": float(np.mean(np.all(np.asarray(a) <= 0.0, axis=0))) for n, a in zip(names, activations)}
    entropy = -np.sum(probs * np.log(np.clip(probs, 1e-12, 1.0)), axis=1) / math.log(len(CLASSES))
    predicted = probs.argmax(axis=1)
    row["entropy"] = float(entropy.mean())
    row["top_class_share"] = float(np.bincount(predicted, minlength=len(CLASSES)).max() / len(predicted))
    row["val_accuracy"] = float(np.mean(predicted == batches.val_y))
    row["majority_rate"] = batches.majority_rate
    return row


def _batch_statistics_accuracy(model: keras.Model, batches: ProbeBatches, batch_size: int = 64) -> dict[str, float]:
    """Validation accuracy with BatchNorm normalizing each batch of ``batch_size`` faces by that batch's
    own statistics (as in training) and dropout off: the model as it would answer if its moving
    statistics matched its weights. Far above ``val_accuracy`` (BatchNorm on its moving statistics,
    as evaluation reads the model), the moving statistics lag the weights.

    Dropout is switched off by setting its rate to 0 for the call; the BatchNorm statistics the
    training-mode call moves are restored afterwards.
    """
    dropouts = [layer for layer in all_layers(model) if isinstance(layer, keras.layers.Dropout)]
    norms = [layer for layer in all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    if not norms:
        return {}
    rates = [layer.rate for layer in dropouts]
    with statistics_kept(model):
        try:
            for layer in dropouts:
                layer.rate = 0.0
            predicted = np.concatenate([
                np.asarray(model(batches.val_x[i:i + batch_size], training=True)).argmax(axis=1)
                for i in range(0, len(batches.val_y), batch_size)
            ])
        finally:
            for layer, rate in zip(dropouts, rates):
                layer.rate = rate
    return {"val_accuracy_batch_statistics": float(np.mean(predicted == batches.val_y))}


def _backbone_scale(model: keras.Model, batches: ProbeBatches, few: int = SMALL_BATCH) -> dict[str, float]:
    """The norm of the backbone's kernels (BatchNorm makes a convolution's output blind to its kernel's
    scale, so a kernel that grows takes ever smaller steps), and the data term's gradient norm over the
    backbone on a batch of ``few`` training faces: what a last, short batch of an epoch would step by
    (a batch's BatchNorm statistics over a few images are degenerate where the maps are 1x1)."""
    try:
        backbone = model.get_layer(BACKBONE_LAYER)
    except ValueError:
        return {}
    kernels = [w for w in backbone.trainable_weights if w.path.endswith("kernel")]
    if not kernels:
        return {}
    with statistics_kept(model):
        grads = backend.variable_gradients(model, batches.train_x[:few], {"data": _data_term(batches.train_y[:few])},
                                           kernels, training=True)
    return {"backbone_kernel_norm": _norm([keras.ops.convert_to_numpy(k) for k in kernels]),
            "grad_backbone_small_batch": _norm(grads["data"])}


def _has_layer(model: keras.Model, name: str) -> bool:
    try:
        model.get_layer(name)
        return True
    except ValueError:
        return False
