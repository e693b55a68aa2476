"""One trial = one call of ``study.training.train`` on sampled values; the score is read from validation.

An edge search's objective (``cost`` set: "latency" or "size") also measures what the trained model costs to
run (``study.latency``) and returns (metric, cost) to a multi-objective study: its trials keep every
model (the cost is read from it, and any trial of the Pareto front may be wanted) and none is pruned
(optuna's pruning is single-objective: ``Trial.report`` refuses a multi-objective study).

Errors keep keras-tuner's split by consequence: a ``UserError`` (bad config, model or data) stops the
search with its message; anything else a run raises (``TrialFailed`` for a NaN loss, an
out-of-memory ``ResourceExhaustedError``, ...) fails this trial only, with its message in the
trial's ``error`` attribute; ``optuna.TrialPruned`` prunes it. Test data is never evaluated here.
"""
from __future__ import annotations

import gc
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import keras
import optuna
from optuna.trial import TrialState

from search_spaces import Space, from_optuna, pin, to_config
from study.data import Dataset
from study import config as config_mod
from study.errors import TrialFailed, UserError
from study.events import SearchEvents
from study import latency
from study.runs import MODEL, abandon
from study.tracking import Outcome, Tracking
from study.tracking.callback import callbacks_for, completed, failure
from study.training import RunResult, schedule, train
from study.tuning.callbacks import EpochEvents, SignalCheck, pruning_callback
from study.tuning.kept_models import ModelKeeping
from study.tuning.tracked_trials import trial_key, trial_run
from study.tuning.signals import SIGNAL_GATE
from study.store import records
from study.store.liveness import worker_id


@dataclass
class Objective:
    """Callable by ``study.optimize``; ``evaluate`` also takes a per-trial epoch cap (keras-tuner's Hyperband)."""

    study_name: str
    space: Space
    base: Mapping[str, Any]  # TrainConfig keys the search does not vary
    data: Dataset
    runs_dir: Path
    metric: str = "accuracy"  # a key of result.metrics["val"]: accuracy | loss | macro_f1
    max_epochs: int | None = None
    keep_models: int | None = None  # the best K trials keep their model.keras (None: every trial)
    events: SearchEvents = field(default_factory=SearchEvents)  # the live display hears each trial
    finished: Callable[[int, RunResult], None] | None = None  # told of every trial that trained to its end
    tracking: Tracking = field(default_factory=Tracking.off)  # TensorBoard, MLflow (study.tracking): told, never asked
    cost: str | None = None  # an edge search's second objective (a key of study.store.COSTS): measured per trial

    def __post_init__(self) -> None:
        # A base key that the space also varies is fixed at the base's value (as to_config reads it).
        self.space = pin(self.space, {k: v for k, v in self.base.items() if k in self.space.names})

    def __call__(self, trial: optuna.trial.BaseTrial) -> float | tuple[float, float]:
        return self.evaluate(trial)

    def evaluate(self, trial: optuna.trial.BaseTrial, epoch_cap: int | None = None) -> float | tuple[float, float]:
        records.set_worker(trial, worker_id())  # first, so a killed trial can be told from a live one
        if isinstance(trial, optuna.Trial):  # a FixedTrial (a single evaluation) belongs to no study
            remove_stale_staging(Path(self.runs_dir) / self.study_name, trial.study)
        try:
            with _recorded_failure(trial):  # whatever fails, from the sampled values on, the trial says why
                SIGNAL_GATE.check()  # a signal whose exception Python dropped between trials: start none
                values = from_optuna(self.space, trial)
                config = to_config(self.space.regime, values, self.base,
                                   max_epochs=_tighter(self.max_epochs, epoch_cap))
                self.events.trial_started(trial.number, values)
                self.tracking.run_started(trial_run(trial.number, values, config_mod.to_dict(config)))
                keep = None if self.cost else self.keep_models  # an edge search keeps every model
                keeping = ModelKeeping.of(trial, self.study_name, keep, self.metric)
                result = self._train(trial, config, keeping)
                cost = self._measure(trial, result)
                SIGNAL_GATE.check()  # one dropped after the last batch: the trial it came in fails all the same
            value = self._record(trial, result)
        except BaseException as exc:
            self._tracked_failure(trial, exc)
            raise
        costs = {} if cost is None else {f"cost_{self.cost}": cost}
        self.tracking.run_ended(trial_key(trial.number), completed(result, objective=value, **costs))
        if self.finished is not None:
            self.finished(trial.number, result)
        if keeping:
            for number in keeping.prune(trial.number, value, result.run_dir):
                self.tracking.model_removed(trial_key(number))
        return value if cost is None else (value, cost)

    def run_dir(self, number: int) -> Path:
        return Path(self.runs_dir) / self.study_name / f"trial-{number}"

    def _train(self, trial: optuna.trial.BaseTrial, config: Any, keeping: ModelKeeping | None) -> RunResult:
        # The tracker first: it hears the epoch a pruner stops the trial on.
        pruning = [] if self.cost else [pruning_callback(trial, self.metric, len(schedule(config)))]
        callbacks = [*callbacks_for(self.tracking, trial_key(trial.number)), *pruning,
                     EpochEvents(trial.number, self.events.epoch_ended), SignalCheck()]
        extra = {"study": self.study_name, "trial": trial.number}
        dropped = (lambda metrics: keeping.dropped(trial.number, metrics)) if keeping else None
        try:
            return train(config, self.data, self.run_dir(trial.number), callbacks=callbacks,
                         evaluate_test=False, extra_manifest=extra, model_dropped=dropped)
        finally:
            release_memory()

    def _measure(self, trial: optuna.trial.BaseTrial, result: RunResult) -> float | None:
        """An edge search's cost of the trained model, recorded on the trial with the machine it was measured on."""
        if self.cost is None:
            return None
        measured = latency.measure(Path(result.run_dir) / MODEL)
        records.record_cost(trial, measured.to_dict())
        return measured.value(self.cost)

    def _tracked_failure(self, trial: optuna.trial.BaseTrial, exc: BaseException) -> None:
        """The trackers hear how the trial ended (reading the trial must not hide why it did)."""
        if not self.tracking:
            return
        try:
            ended, params = _tracked_end(trial, exc), trial.params
        except Exception:  # noqa: BLE001  e.g. the store went away: the trial's own error is what matters
            ended, params = failure(exc), {}
        self.tracking.run_ended(trial_key(trial.number), ended, run=trial_run(trial.number, params))

    def _record(self, trial: optuna.trial.BaseTrial, result: RunResult) -> float:
        val, stall = result.metrics["val"], result.metrics["stall"]
        records.record_result(trial, str(result.run_dir), result.epochs, result.seconds,
                              {**{k: float(val[k]) for k in ("accuracy", "loss", "macro_f1")},
                               "majority_rate": val["baseline"]["majority_rate"], "learned": bool(val["learned"])},
                              stall if stall["stalled"] else None)
        return float(val[self.metric])


@contextmanager
def _recorded_failure(trial: optuna.trial.BaseTrial) -> Iterator[None]:
    """A UserError (bad config, model or data: it stops the search) and Ctrl-C are recorded and raised;
    any other exception fails this trial only, as ``TrialFailed``; a pruned trial is no failure."""
    try:
        yield
    except optuna.TrialPruned:
        raise
    except UserError as exc:
        records.record_error(trial, str(exc))
        raise
    except KeyboardInterrupt as exc:  # Ctrl-C, or study.tuning.signals.Interrupted naming its signal
        records.record_error(trial, f"interrupted ({str(exc) or 'Ctrl-C'})")
        raise
    except Exception as exc:
        raise _failed(trial, exc) from exc


def _tracked_end(trial: optuna.trial.BaseTrial, exc: BaseException) -> Outcome:
    """A trial that raised, as its trackers hear it: PRUNED after its last epoch, or FAIL with the
    reason the trial records."""
    if isinstance(exc, optuna.TrialPruned):
        return Outcome("PRUNED")
    reason = records.error(trial)
    return Outcome("FAIL", error=reason) if reason else failure(exc)


def remove_stale_staging(folder: Path, study: optuna.Study) -> list[int]:
    """Remove the staging folders (``.trial-N.partial``) of trials that are no longer running: failed
    by a heartbeat or by a worker that died elsewhere, their writer is gone or will never finish."""
    running = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    removed = []
    for stage in folder.glob(".trial-*.partial"):
        number = stage.name.removeprefix(".trial-").removesuffix(".partial")
        if number.isdigit() and int(number) not in running:
            abandon(stage)
            removed.append(int(number))
    return removed


def _failed(trial: optuna.trial.BaseTrial, exc: Exception) -> TrialFailed:
    """This trial's failure (recorded on the trial) as the one exception type the search catches."""
    message = str(exc) if isinstance(exc, TrialFailed) else f"{type(exc).__name__}: {str(exc).strip()}"
    message = message.splitlines()[0] if message else type(exc).__name__
    records.record_error(trial, message, None if isinstance(exc, TrialFailed) else traceback.format_exc())
    return TrialFailed(message)


def _tighter(a: int | None, b: int | None) -> int | None:
    caps = [c for c in (a, b) if c is not None]
    return min(caps) if caps else None


def release_memory() -> None:
    """Models of earlier trials must not pile up: train() clears its session; make sure of it here."""
    keras.backend.clear_session()
    gc.collect()
