"""Every run where people already look: TensorBoard and MLflow, as it trains (``--track NAME``).

An *experiment* is a study (a search's trials and its final runs), a curve, or ``train``'s single
runs; a *run* is one ``train()`` in it, named as its run directory is (``trial-3``, ``final-seed0``,
``scratch-f0.1-seed0``, ...). A tracker hears four things of a run: it started (its parameters and
whole configuration), an epoch ended (the row history.csv gets: phase, both losses, accuracy, the
validation metrics, the learning rate), it ended (COMPLETE, PRUNED or FAIL with its reason, its
results, its run directory), and, for a search trial outside the best ``keep_models``, that its
model was removed. ``TRACKERS`` names the two: ``tensorboard`` (``study.tracking.tensorboard_events``,
event files written without TensorFlow) and ``mlflow`` (``study.tracking.mlflow_runs``, the optional
``mlflow`` package); their libraries load only when a run is tracked.

Tracking never decides anything. ``Tracking`` calls each tracker inside a guard: a tracker that
raises (a full disk, a server gone) is reported in one line naming it and the error, once, and
dropped; training and the search go on. The trackers also say what they already hold of a run
(``logged``), so a resumed study adds only what is missing (``Tracking.replay``) and never a run twice.
"""
from __future__ import annotations

import importlib.util
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

from study.errors import ConfigError

TRACKERS = ("tensorboard", "mlflow")
STATES = ("COMPLETE", "PRUNED", "FAIL")
RUNNING, ENDED = "RUNNING", "ENDED"  # what a tracker holds of a run (``Tracker.logged``), besides nothing
TENSORBOARD_FOLDER = "tensorboard"  # a tracked experiment's event files: <runs dir>/tensorboard/<experiment>/<run>
# The keys a run that is not a search trial is compared by (its whole configuration is logged too).
# A run's results (``Outcome.metrics``): the HParams dashboard's metric columns, as result/<name>.
RESULTS = ("objective", "val_accuracy", "val_loss", "val_macro_f1", "test_accuracy", "test_loss", "test_macro_f1")
SHOWN_KEYS = ("regime", "backbone", "weights", "optimizer", "learning_rate", "frozen_learning_rate", "epochs",
              "frozen_epochs", "batch_size", "l2", "seed", "subset")


class TrackingWarning(UserWarning):
    """A tracker failed and was dropped (what a library caller sees when no ``say`` is given)."""


@dataclass(frozen=True)
class RunInfo:
    """One run of an experiment, as it starts."""

    key: str  # its name in the experiment: its run directory's name
    kind: str  # trial | final | curve | pretrain | train
    params: Mapping[str, Any]  # what runs are compared by: a trial's sampled values, else a few config keys
    config: Mapping[str, Any] = field(default_factory=dict)  # the whole TrainConfig it trains
    number: int | None = None  # the study's trial number (a final run: the trial it retrains)
    started: float = field(default_factory=time.time)


@dataclass(frozen=True)
class Outcome:
    """How a run ended: ``state`` is one of ``STATES``; ``metrics`` are its results (the trial's
    ``objective``, ``val_accuracy``, ``val_loss``, ``val_macro_f1``, ``test_*`` for a run evaluated on test)."""

    state: str
    metrics: Mapping[str, float] = field(default_factory=dict)
    epochs: int | None = None
    error: str | None = None
    run_dir: str | None = None  # a finished run's directory: its files are the run's artifacts
    ended: float = field(default_factory=time.time)


class Tracker(Protocol):
    """What ``Tracking`` calls; any exception it raises drops it (``Tracking`` reports it once)."""

    name: str

    def run_started(self, run: RunInfo) -> None: ...

    def epoch_ended(self, key: str, epoch: int, phase: str | None, values: Mapping[str, float]) -> None: ...

    def run_ended(self, run: RunInfo, outcome: Outcome) -> None: ...

    def model_removed(self, key: str) -> None: ...

    def logged(self, key: str) -> str | None:
        """``ENDED``, ``RUNNING`` (started, never ended: its process died), or None (nothing of it)."""
        ...

    def close(self) -> None: ...


class Tracking:
    """The trackers of one experiment, each behind a guard: the first error of a tracker is said once
    (``say``, else a ``TrackingWarning``) and the tracker is dropped. With no tracker every call is a
    no-op, and ``bool(tracking)`` is False."""

    def __init__(self, trackers: Sequence[Tracker] = (), say: Callable[[str], None] | None = None) -> None:
        self.trackers = list(trackers)
        self.say = say
        self.runs: dict[str, RunInfo] = {}
        self.failed: dict[str, str] = {}  # tracker name -> the error that dropped it

    @classmethod
    def off(cls) -> "Tracking":
        return cls()

    def __bool__(self) -> bool:
        return bool(self.trackers)

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.trackers]

    # ---------------------------------------------------------------------------------- events
    def run_started(self, run: RunInfo) -> None:
        self.runs[run.key] = run
        self._each("run_started", run)

    def epoch_ended(self, key: str, epoch: int, phase: str | None, values: Mapping[str, Any]) -> None:
        if self.trackers and key in self.runs:
            self._each("epoch_ended", key, int(epoch), phase, numbers(values))

    def run_ended(self, key: str, outcome: Outcome, run: RunInfo | None = None) -> None:
        """``run``: the run, when it ended before it could be started (a trial failed by its sampled values)."""
        started = self.runs.pop(key, None)
        if started is None:
            if run is None or not self.trackers:
                return
            started = run
            self._each("run_started", run)
        self._each("run_ended", started, outcome)

    def model_removed(self, key: str) -> None:
        self._each("model_removed", key)

    def replay(self, run: RunInfo, epochs: Iterable[tuple[int, str | None, Mapping[str, Any]]],
               outcome: Outcome) -> list[str]:
        """Give each tracker what it lacks of a run that ran untracked (or whose tracker failed): the
        whole run when it holds nothing of it, the end when its process died mid-run. Returns the
        names of the trackers told."""
        told = []
        rows = list(epochs)
        for tracker in list(self.trackers):
            held = self._guarded(tracker, "logged", run.key)
            if held == ENDED or tracker not in self.trackers:
                continue
            calls: list[tuple[str, tuple]] = [] if held == RUNNING else [("run_started", (run,))]
            calls += [] if held == RUNNING else [("epoch_ended", (run.key, e, p, numbers(v))) for e, p, v in rows]
            calls.append(("run_ended", (run, outcome)))
            for method, args in calls:
                self._guarded(tracker, method, *args)
            if tracker in self.trackers:
                told.append(tracker.name)
        return told

    def close(self) -> None:
        for tracker in list(self.trackers):
            self._guarded(tracker, "close")
        self.trackers = []

    # ---------------------------------------------------------------------------------- guards
    def _each(self, method: str, *args: Any) -> None:
        for tracker in list(self.trackers):
            self._guarded(tracker, method, *args)

    def _guarded(self, tracker: Tracker, method: str, *args: Any) -> Any:
        try:
            return getattr(tracker, method)(*args)
        except Exception as exc:  # noqa: BLE001  tracking never stops training (Ctrl-C still does)
            self._drop(tracker, exc)
            return None

    def _drop(self, tracker: Tracker, exc: Exception) -> None:
        if tracker not in self.trackers:
            return
        self.trackers.remove(tracker)
        self.failed[tracker.name] = describe(exc)
        announce(f"tracking: {tracker.name} failed ({describe(exc)}); training goes on without it", self.say)
        try:
            tracker.close()
        except Exception:  # noqa: BLE001  it failed already: nothing more to say
            pass


def announce(line: str, say: Callable[[str], None] | None) -> None:
    if say is not None:
        say(line)
    else:
        warnings.warn(line, TrackingWarning, stacklevel=3)


def describe(exc: BaseException) -> str:
    """An exception in one line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__


def numbers(values: Mapping[str, Any]) -> dict[str, float]:
    """The numeric entries of an epoch's row or logs (epoch and phase are not values)."""
    out = {}
    for key, value in values.items():
        if key in ("epoch", "phase") or isinstance(value, bool):
            continue
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            continue
    return out


def result_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """A run's evaluated results (``RunResult.metrics``) as flat numbers: accuracy, loss and macro-F1
    of each evaluated split (``val_accuracy``, ``test_macro_f1``, ...)."""
    out = {}
    for split in ("val", "test"):
        for name in ("accuracy", "loss", "macro_f1"):
            value = (metrics.get(split) or {}).get(name)
            if value is not None:
                out[f"{split}_{name}"] = float(value)
    return out


def shown_params(config: Mapping[str, Any]) -> dict[str, Any]:
    """The few configuration keys a run that is not a search trial is compared by."""
    return {key: config[key] for key in SHOWN_KEYS if key in config}


def check_trackers(names: Iterable[str]) -> None:
    """Unknown names, or mlflow without its package, are refused before anything trains."""
    unknown = [n for n in names if n not in TRACKERS]
    if unknown:
        raise ConfigError(f"«track» takes {', '.join(TRACKERS)}, got {', '.join(unknown)}")
    if "mlflow" in names and importlib.util.find_spec("mlflow") is None:
        raise ConfigError("«track» mlflow needs the mlflow package: pip install -e '.[mlflow]' (or pip install mlflow)")


def open_tracking(names: Iterable[str], experiment: str, *, runs_dir: str | Path,
                  say: Callable[[str], None] | None = None, tags: Mapping[str, Any] | None = None,
                  hparams: Sequence[str] = (), shown: Sequence[str] = ()) -> Tracking:
    """The trackers ``names`` for ``experiment``: TensorBoard's event files under
    ``runs_dir/tensorboard/<experiment>/``, MLflow's experiment ``<experiment>`` at
    ``MLFLOW_TRACKING_URI`` (else the local ``./mlruns`` folder). A tracker that cannot start (no
    server there) is said once and left out; ``tags`` describe the experiment (MLflow's tags);
    ``hparams`` names every parameter its runs may have (TensorBoard's HParams columns; without them
    TensorBoard infers its columns from the runs), ``shown`` the four its HParams table shows at first."""
    names = list(dict.fromkeys(names))
    check_trackers(names)
    trackers: list[Tracker] = []
    for name in names:
        try:
            trackers.append(_make(name, experiment, Path(runs_dir), dict(tags or {}), hparams, shown))
        except Exception as exc:  # noqa: BLE001  a tracker that cannot start decides nothing either
            announce(f"tracking: {name} could not start ({describe(exc)}); training goes on without it", say)
    return Tracking(trackers, say)


def _make(name: str, experiment: str, runs_dir: Path, tags: dict[str, Any], hparams: Sequence[str],
          shown: Sequence[str]) -> Tracker:
    if name == "tensorboard":
        from study.tracking.tensorboard_events import TensorBoardTracker  # deferred: tensorboard's protos

        return TensorBoardTracker(runs_dir / TENSORBOARD_FOLDER, experiment, hparams, RESULTS, shown)
    from study.tracking.mlflow_runs import MlflowTracker  # deferred: mlflow (an optional package, ~1 s)

    return MlflowTracker(experiment, tags=tags)
