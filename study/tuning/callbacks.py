"""Keras callbacks a trial adds to ``study.training.train``: per-epoch pruning, live progress, and a
signal's check after every batch (``SignalCheck``, see ``study.tuning.signals``).

Pruning uses optuna-integration's ``KerasPruningCallback`` (it subclasses Keras 3's
``keras.callbacks.Callback``): after every epoch it reports the monitored validation metric as the
trial's intermediate value at step = the global epoch (train() numbers epochs across both transfer
phases) and raises ``optuna.TrialPruned`` when the pruner says so; train() then removes the partial
run directory. Never at the trial's last epoch: pruning there saves no epoch and throws away a trained
model and its value (a pruned trial cannot be the best), so the last epoch is reported, not judged.
Keras logs no per-epoch macro-F1, so a macro-F1 search prunes on validation accuracy, the per-epoch
metric closest to it (both are maximized); its final value is still macro-F1.
"""
from __future__ import annotations

from typing import Any, Callable

import keras
import optuna
from optuna_integration.keras import KerasPruningCallback

from study.tuning.signals import SIGNAL_GATE

MONITORS: dict[str, str] = {"accuracy": "val_accuracy", "loss": "val_loss", "macro_f1": "val_accuracy"}


def pruning_callback(trial: optuna.trial.BaseTrial, objective: str, phases: int) -> keras.callbacks.Callback:
    """Reports the objective's per-epoch validation metric; the study's pruner decides, except at the last epoch
    of the last of the trial's ``phases`` (one ``fit`` each)."""
    return _PruningCallback(trial, MONITORS[objective], phases)


class _PruningCallback(KerasPruningCallback):
    """optuna-integration's callback, counting the phases it sees begin; the last epoch of the last phase (the
    ``epochs`` its ``fit`` was given, which is where the trial ends unless it stops earlier) is only reported."""

    def __init__(self, trial: optuna.trial.BaseTrial, monitor: str, phases: int) -> None:
        super().__init__(trial, monitor)
        self.phases, self.phase = phases, 0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.phase += 1

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.phase >= self.phases and epoch + 1 >= (self.params or {}).get("epochs", float("inf")):
            score = (logs or {}).get(self._monitor)
            if score is not None:
                self._trial.report(float(score), step=epoch)
            return
        super().on_epoch_end(epoch, logs)


class EpochEvents(keras.callbacks.Callback):
    """Tells the live display which epoch a trial has reached."""

    def __init__(self, number: int, on_epoch: Callable[[int, int, dict[str, Any]], None]) -> None:
        super().__init__()
        self.number = number
        self.on_epoch = on_epoch

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.on_epoch(self.number, epoch + 1, dict(logs or {}))


class SignalCheck(keras.callbacks.Callback):
    """After every batch, raises a signal whose exception Python dropped (see the module's doc)."""

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        SIGNAL_GATE.check()

    def on_test_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        SIGNAL_GATE.check()
