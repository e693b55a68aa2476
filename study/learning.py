"""Did a run learn? The baselines every accuracy is read against, and the stall guard.

A classifier that answers the most common class for every face scores the *majority rate* of the
split (0.251 on FER2013: "happy"); one that answers at random in the class shares scores the
*stratified rate* (the sum of the squared shares). ``baseline`` gives both for a split's labels, and
``learned`` says whether an accuracy is above the majority rate by more than chance would allow (a
one-sided binomial test at ``LEARNED_ALPHA``): a model that predicts one class never passes.

``StallGuard`` watches a run's first epochs: when, at the end of each of the first
``config.stall_epochs`` epochs, (nearly) every validation face gets the same answer
(``STALL_ANSWER_SHARE``) and validation accuracy is within ``STALL_MARGIN`` of the majority rate,
the run is not learning. With ``stall_action="stop"`` it ends there (artifacts are still written,
and flagged); with ``"warn"`` it says so and trains on. docs/learning.md explains what stalls a run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import keras
import numpy as np
from keras import ops
from scipy.stats import binomtest

from study.data import CLASSES

LEARNED_ALPHA = 0.01
STALL_ANSWER_SHARE = 0.99  # this share of validation faces, or more, got the same answer
STALL_MARGIN = 0.01  # validation accuracy within this of the majority rate
ANSWER_SHARE = "top_answer_share"  # the metric's name in Keras logs (val_top_answer_share)


@dataclass(frozen=True)
class Baseline:
    """What answering without looking scores on a split: accuracy and macro-F1 (over every class,
    as ``study.evaluation`` computes it) of the majority answer and of stratified random answers."""

    majority_class: str
    majority_rate: float
    stratified_rate: float
    majority_macro_f1: float = 0.0  # F1 2p/(1+p) on the majority class, 0 on the others
    stratified_macro_f1: float = 0.0  # expected: each class's F1 is its share, so 1/classes

    def to_dict(self) -> dict[str, object]:
        return {"majority_class": self.majority_class, "majority_rate": self.majority_rate,
                "stratified_rate": self.stratified_rate, "majority_macro_f1": self.majority_macro_f1,
                "stratified_macro_f1": self.stratified_macro_f1}


def baseline(labels: np.ndarray, classes: tuple[str, ...] = CLASSES) -> Baseline:
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(classes)).astype(np.float64)
    shares = counts / max(counts.sum(), 1.0)
    top = int(shares.argmax())
    p = float(shares[top])
    return Baseline(classes[top], p, float(np.sum(shares**2)), majority_macro_f1=2 * p / (1 + p) / len(classes),
                    stratified_macro_f1=float(shares.sum()) / len(classes))


def learned_pvalue(correct: int, n: int, majority_rate: float) -> float:
    """P(at least ``correct`` right of ``n``) for a classifier no better than the majority rate."""
    if n == 0:
        return 1.0
    return float(binomtest(int(correct), int(n), min(max(majority_rate, 0.0), 1.0), alternative="greater").pvalue)


def top_answer_share(predicted: np.ndarray, num_classes: int = len(CLASSES)) -> float:
    """The share of faces given the most frequent answer (1.0: one answer for every face)."""
    predicted = np.asarray(predicted, dtype=np.int64)
    if not len(predicted):
        return 0.0
    return float(np.bincount(predicted, minlength=num_classes).max() / len(predicted))


@keras.saving.register_keras_serializable(package="fer_study")
class AnswerShare(keras.metrics.Metric):
    """The share of images given the most frequent predicted class, over an epoch."""

    def __init__(self, num_classes: int = len(CLASSES), name: str = ANSWER_SHARE, **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.num_classes = num_classes
        self.counts = self.add_variable(shape=(num_classes,), initializer="zeros", name="counts")

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        predicted = ops.argmax(ops.cast(y_pred, "float32"), axis=-1)
        self.counts.assign_add(ops.sum(ops.one_hot(predicted, self.num_classes), axis=0))

    def result(self):
        return ops.max(self.counts) / ops.maximum(ops.sum(self.counts), 1.0)

    def reset_state(self) -> None:
        self.counts.assign(ops.zeros((self.num_classes,)))

    def get_config(self) -> dict:
        return {**super().get_config(), "num_classes": self.num_classes}


@dataclass
class StallState:
    """What the guard saw: the epochs that looked stalled, and whether (and when) it fired."""

    majority_rate: float
    epochs: int
    action: str
    stalled_epochs: list[int] = field(default_factory=list)
    fired_at: int | None = None

    @property
    def stopped(self) -> bool:
        return self.fired_at is not None and self.action == "stop"

    def to_dict(self) -> dict[str, object]:
        return {"stalled": self.fired_at is not None, "epoch": self.fired_at, "action": self.action,
                "stopped": self.stopped, "guard_epochs": self.epochs, "majority_rate": self.majority_rate}

    def message(self, accuracy: float, share: float) -> str:
        then = ("stopped here; stall_action=warn trains on anyway" if self.action == "stop"
                else "training goes on (stall_action=warn)")
        return (f"NOT LEARNING: after {self.epochs} epoch(s) {share:.1%} of validation faces get one answer and "
                f"validation accuracy is {accuracy:.3f}, the majority-class rate {self.majority_rate:.3f}. "
                f"Typical causes: a learning rate too small for the optimizer (SGD at 0.001 without momentum), "
                f"an L2 factor that dominates the loss; see docs/learning.md. Run {then}.")


class StallGuard(keras.callbacks.Callback):
    """Ends (or flags) a run whose first ``state.epochs`` epochs all look stalled; ``say`` prints."""

    def __init__(self, state: StallState, say: Callable[[str], None] | None = None) -> None:
        super().__init__()
        self.state = state
        self.say = say

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        state, logs = self.state, logs or {}
        number = epoch + 1
        if state.epochs <= 0 or state.fired_at is not None or number > state.epochs:
            return
        accuracy, share = logs.get("val_accuracy"), logs.get(f"val_{ANSWER_SHARE}")
        if accuracy is None or share is None:
            return
        if float(share) >= STALL_ANSWER_SHARE and abs(float(accuracy) - state.majority_rate) <= STALL_MARGIN:
            state.stalled_epochs.append(number)
        if number == state.epochs and len(state.stalled_epochs) == state.epochs:
            state.fired_at = number
            if self.say is not None:
                self.say(state.message(float(accuracy), float(share)))
            if state.action == "stop":
                self.model.stop_training = True
