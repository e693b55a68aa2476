"""The Keras side of tracking: a callback that hands each epoch to the trackers, and a tracked ``train()``.

``TrackingCallback`` hears history.csv's row of every epoch from ``train()`` (``HistoryRows``: the
phase, both losses, accuracy, validation metrics, learning rate) as it is recorded, before any other
callback of that epoch, so the epoch a pruner stops on is tracked too. Under a plain ``fit`` (no
rows) it tracks Keras's epoch logs instead, without a phase.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import keras

from study import config as config_mod
from study.config import TrainConfig
from study.data import Dataset
from study.events import SILENT, Events
from study.tracking import (
    SHOWN_KEYS,
    Outcome,
    RunInfo,
    Tracking,
    describe,
    open_tracking,
    result_metrics,
    shown_params,
)
from study.training import HistoryRows, RunResult, train


class TrackingCallback(HistoryRows):
    """Every epoch of run ``key`` to ``tracking`` (epochs count from 1, across phases)."""

    def __init__(self, tracking: Tracking, key: str) -> None:
        super().__init__()
        self.tracking, self.key = tracking, key
        self.last: int | None = None  # the last epoch told (from a row)

    def history_row(self, row: dict[str, Any]) -> None:
        self.last = int(row["epoch"])
        self.tracking.epoch_ended(self.key, self.last, row.get("phase"), row)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.last != epoch + 1:  # no row came: a fit outside train()
            self.tracking.epoch_ended(self.key, epoch + 1, None, dict(logs or {}))


def callbacks_for(tracking: Tracking, key: str) -> list[keras.callbacks.Callback]:
    """The callback to add to a tracked run's ``train()`` (none when nothing is tracked)."""
    return [TrackingCallback(tracking, key)] if tracking else []


def failure(exc: BaseException) -> Outcome:
    """A run that raised: FAIL, with why."""
    if isinstance(exc, KeyboardInterrupt):
        return Outcome("FAIL", error=f"interrupted ({str(exc) or 'Ctrl-C'})")
    return Outcome("FAIL", error=describe(exc))


def completed(result: RunResult, **extra: float) -> Outcome:
    return Outcome("COMPLETE", metrics={**extra, **result_metrics(result.metrics)}, epochs=int(result.epochs),
                   run_dir=str(result.run_dir))


def run_info(key: str, kind: str, config: TrainConfig, params: dict[str, Any] | None = None,
             number: int | None = None) -> RunInfo:
    values = config_mod.to_dict(config)
    return RunInfo(key, kind, params if params is not None else shown_params(values), values, number)


def tracked(tracking: Tracking, run: RunInfo, fit: Callable[[list[keras.callbacks.Callback]], RunResult],
            **extra: float) -> RunResult:
    """``fit(callbacks)`` (a ``train()`` call given the tracking callback) with the run's start, epochs
    and end told to ``tracking``; whatever it raises is tracked as the run's failure, and raised."""
    if not tracking:
        return fit([])
    tracking.run_started(run)
    try:
        result = fit(callbacks_for(tracking, run.key))
    except BaseException as exc:
        tracking.run_ended(run.key, failure(exc))
        raise
    tracking.run_ended(run.key, completed(result, **extra))
    return result


def train_tracked(config: TrainConfig, data: Dataset, run_dir: str | Path, track: Sequence[str],
                  events: Events = SILENT, **kwargs: Any) -> RunResult:
    """``train(config, data, run_dir, events=events, **kwargs)`` for the ``train`` command, tracked in the
    experiment ``train`` as its run directory's name (TensorBoard's files beside the run directory:
    ``<its parent>/tensorboard/train/<name>``); a tracker's failure is said through ``events``."""
    run_dir = Path(run_dir)
    tracking = open_tracking(track, "train", runs_dir=run_dir.parent, say=events.say, tags={"fer_study.kind": "train"},
                             hparams=SHOWN_KEYS, shown=("regime", "backbone", "learning_rate", "epochs"))
    try:
        return tracked(tracking, run_info(run_dir.name, "train", config),
                       lambda callbacks: train(config, data, run_dir, callbacks=callbacks, events=events, **kwargs))
    finally:
        tracking.close()
