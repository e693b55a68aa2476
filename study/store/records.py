"""The store's contract: every attribute a study or trial carries, by name, with typed readers and writers.

optuna keeps what it does not know about in free-form "user attributes" (JSON values under string keys),
on a study and on each trial. Everything fer-study keeps there is named in ``StudyKey`` and ``TrialKey``
and read or written through the functions below; no other module spells an attribute's name or calls
``user_attrs`` / ``set_user_attr`` (``tests/test_architecture.py`` holds them to it), so a rename, or an
attribute read before it is written, is one file's business.

Study attributes:

- what a search searched (``StudySpec.attrs``, checked on every resume): ``regime`` (written last: a
  reader that sees it sees the others), ``backend``, ``objective``, ``direction``, ``data``, ``fingerprint``,
  ``base``, ``max_epochs``, ``keras_backend``;
- what was trained from it: ``final_runs`` (the run directories of ``train --from-study``) and
  ``final_training`` (how the last one was trained); ``top_runs`` (``train --from-study --top K``: the K best
  trials retrained, an ensemble's members; not final runs);
- a data-efficiency curve's (``study.experiments.curve``): ``kind`` ("curve", written last), ``curve`` (its plan),
  ``curve_runs``, ``curve_failures`` (run directory -> why), ``curve_pretrain`` (the pretraining run);
- ``failure:N``: why trial N failed when the trial itself could not be told (``study.store.liveness``).

Trial attributes: ``worker`` (first, so a killed trial can be told from a live one), ``run_dir``, ``epochs``,
``seconds``, ``val`` (accuracy, loss, macro-F1), ``stalled``, ``error`` and ``traceback`` (a failed or
interrupted trial), ``keras_tuner`` (Hyperband's bracket, round and epochs), ``default_config`` (trial 0:
the configuration ``train`` trains; in an edge search, each backbone's first trial), ``cost`` (a
multi-objective trial's measured latency and size, and the machine they were measured on:
``study.latency.Cost``); optuna's own ``retry_history`` is a system attribute.
"""
from __future__ import annotations

from typing import Any, Iterable

import optuna
from optuna.trial import FrozenTrial


class StudyKey:
    """Study attribute names."""

    REGIME = "regime"
    BACKEND = "backend"
    OBJECTIVE = "objective"
    DIRECTION = "direction"
    DATA = "data"
    FINGERPRINT = "fingerprint"
    BASE = "base"
    MAX_EPOCHS = "max_epochs"
    KERAS_BACKEND = "keras_backend"
    FINAL_RUNS = "final_runs"
    FINAL_TRAINING = "final_training"
    TOP_RUNS = "top_runs"
    KIND = "kind"
    CURVE = "curve"
    CURVE_RUNS = "curve_runs"
    CURVE_FAILURES = "curve_failures"
    CURVE_PRETRAIN = "curve_pretrain"


class TrialKey:
    """Trial attribute names (``RETRY_HISTORY`` is optuna's, a system attribute)."""

    WORKER = "worker"
    RUN_DIR = "run_dir"
    EPOCHS = "epochs"
    SECONDS = "seconds"
    VAL = "val"
    STALLED = "stalled"
    ERROR = "error"
    TRACEBACK = "traceback"
    KERAS_TUNER = "keras_tuner"
    DEFAULT_CONFIG = "default_config"
    COST = "cost"
    RETRY_HISTORY = "retry_history"


CURVE_KIND = "curve"  # the ``kind`` of a data-efficiency curve's study
DEFAULT_OBJECTIVE = "accuracy"
TRACEBACK_CHARS = 4000  # the end of a failed trial's traceback that is kept


# ------------------------------------------------------------------------------------ studies
def load(name: str, storage: optuna.storages.BaseStorage) -> optuna.Study:
    """The study ``name`` of an opened storage (one of ``study_names``; ``load_existing`` says which
    there are when a user's name is not among them)."""
    return optuna.load_study(study_name=name, storage=storage)


def search_attrs(study: optuna.Study) -> dict[str, Any]:
    """Every study attribute, as a copy (what a search searched, shown and compared on resume)."""
    return dict(study.user_attrs)


def write_search(study: optuna.Study, attrs: dict[str, Any]) -> None:
    """Record what a new study searches, one attribute per write, ``regime`` last: workers started together
    all load the new study, and one that sees ``regime`` sees all the others."""
    for key, value in [*((k, v) for k, v in attrs.items() if k != StudyKey.REGIME), (StudyKey.REGIME, attrs[StudyKey.REGIME])]:
        study.set_user_attr(key, value)


def regime(study: optuna.Study) -> str | None:
    """The regime a search searched; None for a study that is not a search (a curve)."""
    return study.user_attrs.get(StudyKey.REGIME)


def backend(study: optuna.Study) -> str | None:
    return study.user_attrs.get(StudyKey.BACKEND)


def objective(study: optuna.Study) -> str:
    return study.user_attrs.get(StudyKey.OBJECTIVE, DEFAULT_OBJECTIVE)


def data(study: optuna.Study) -> str | None:
    """The data path the search was given."""
    return study.user_attrs.get(StudyKey.DATA)


def fingerprint(study: optuna.Study) -> str | None:
    """The searched data's fingerprint (``study.data``): other data is refused on resume and for final runs."""
    return study.user_attrs.get(StudyKey.FINGERPRINT)


def base(study: optuna.Study) -> dict[str, Any]:
    """The TrainConfig keys the search did not vary (backbone, weights, subset, ...)."""
    return dict(study.user_attrs.get(StudyKey.BASE, {}))


def max_epochs(study: optuna.Study) -> int | None:
    """The search's cap on each phase's epochs; None when it had none."""
    return study.user_attrs.get(StudyKey.MAX_EPOCHS)


def final_runs(study: optuna.Study) -> list[str]:
    """The run directories ``train --from-study`` trained from the study, oldest first."""
    return list(study.user_attrs.get(StudyKey.FINAL_RUNS, []))


def final_training(study: optuna.Study) -> dict[str, Any]:
    return dict(study.user_attrs.get(StudyKey.FINAL_TRAINING, {}))


def add_final_run(study: optuna.Study, run_dir: str, training: dict[str, Any]) -> None:
    """Record a final run (once: a rerun into the same directory moves it last) and how it was trained."""
    runs = [r for r in final_runs(study) if r != run_dir]
    study.set_user_attr(StudyKey.FINAL_RUNS, [*runs, run_dir])
    study.set_user_attr(StudyKey.FINAL_TRAINING, training)


def top_runs(study: optuna.Study) -> list[str]:
    """The run directories of ``train --from-study --top K`` (K best trials, retrained), oldest first."""
    return list(study.user_attrs.get(StudyKey.TOP_RUNS, []))


def add_top_run(study: optuna.Study, run_dir: str) -> None:
    """Record a retrained top trial's run (once: a rerun into the same directory moves it last)."""
    runs = [r for r in top_runs(study) if r != run_dir]
    study.set_user_attr(StudyKey.TOP_RUNS, [*runs, run_dir])


def is_curve(study: optuna.Study) -> bool:
    return study.user_attrs.get(StudyKey.KIND) == CURVE_KIND


def curve_plan(study: optuna.Study) -> dict[str, Any] | None:
    """A curve's plan (``study.experiments.curve.CurvePlan.attrs``); None before it is written."""
    return study.user_attrs.get(StudyKey.CURVE)


def write_curve_plan(study: optuna.Study, plan: dict[str, Any]) -> None:
    """A new curve's plan, then its ``kind``: a reader that sees the kind sees the plan."""
    study.set_user_attr(StudyKey.CURVE, plan)
    study.set_user_attr(StudyKey.KIND, CURVE_KIND)


def curve_runs(study: optuna.Study) -> list[dict[str, Any]]:
    """A curve's finished runs, as ``CurveRun.to_dict`` wrote them."""
    return list(study.user_attrs.get(StudyKey.CURVE_RUNS, []))


def curve_failures(study: optuna.Study) -> dict[str, str]:
    """A curve's failed runs: run directory -> why."""
    return dict(study.user_attrs.get(StudyKey.CURVE_FAILURES, {}))


def add_curve_run(study: optuna.Study, record: dict[str, Any]) -> None:
    """A finished curve run (replacing an earlier record of its directory); it is no longer a failure."""
    run_dir = record["run_dir"]  # CurveRun.run_dir
    study.set_user_attr(StudyKey.CURVE_RUNS, [*(r for r in curve_runs(study) if r["run_dir"] != run_dir), record])
    failures = curve_failures(study)
    if run_dir in failures:
        study.set_user_attr(StudyKey.CURVE_FAILURES, {k: v for k, v in failures.items() if k != run_dir})


def add_curve_failure(study: optuna.Study, run_dir: str, why: str) -> None:
    study.set_user_attr(StudyKey.CURVE_FAILURES, {**curve_failures(study), run_dir: why})


def curve_pretrain(study: optuna.Study) -> str | None:
    """The run directory of the backbone a curve's transfer runs start from; None without one."""
    return study.user_attrs.get(StudyKey.CURVE_PRETRAIN)


def set_curve_pretrain(study: optuna.Study, run_dir: str) -> None:
    if curve_pretrain(study) != run_dir:
        study.set_user_attr(StudyKey.CURVE_PRETRAIN, run_dir)


def failure_key(number: int) -> str:
    """The study attribute that holds why trial ``number`` failed, when the trial itself could not be
    told: optuna fails a heartbeat-stale trial before any callback runs, and a finished trial's own
    attributes are read-only."""
    return f"failure:{number}"


def study_failure(study: optuna.Study, number: int) -> str:
    return study.user_attrs.get(failure_key(number), "")


def add_study_failure(study: optuna.Study, number: int, why: str) -> None:
    study.set_user_attr(failure_key(number), why)


# ------------------------------------------------------------------------------------- trials
def run_dir(trial: FrozenTrial | optuna.Trial) -> str | None:
    """The run directory a trial trained into; None before it finished (or when it failed)."""
    return trial.user_attrs.get(TrialKey.RUN_DIR) or None


def epochs(trial: FrozenTrial) -> int | None:
    """The epochs a finished trial trained (both phases for transfer); None when it did not say."""
    return trial.user_attrs.get(TrialKey.EPOCHS)


def val_metrics(trial: FrozenTrial) -> dict[str, float]:
    """A complete trial's validation accuracy, loss and macro-F1 (empty when not recorded)."""
    return dict(trial.user_attrs.get(TrialKey.VAL) or {})


def learned(trial: FrozenTrial) -> bool | None:
    """Whether a complete trial's model beat the majority rate on validation (``study.learning``); None when
    the trial did not record it."""
    value = val_metrics(trial).get("learned")
    return None if value is None else bool(value)


def error(trial: FrozenTrial | optuna.Trial) -> str | None:
    """Why a trial failed or was interrupted, as it recorded it; None when it recorded nothing."""
    return trial.user_attrs.get(TrialKey.ERROR)


def worker(trial: FrozenTrial) -> str | None:
    """The worker (host:pid) that ran the trial; None before it started."""
    return trial.user_attrs.get(TrialKey.WORKER)


def retry_history(trial: FrozenTrial) -> list[int]:
    """The trial numbers this trial re-queues (optuna's retry callback), oldest first."""
    return list(trial.system_attrs.get(TrialKey.RETRY_HISTORY, []))


def keras_tuner_budget(trial: FrozenTrial) -> dict[str, Any]:
    """keras-tuner's Hyperband bracket, round and epochs for the trial (empty for other tuners)."""
    return dict(trial.user_attrs.get(TrialKey.KERAS_TUNER, {}))


def is_default_config(trial: FrozenTrial) -> bool:
    """Trial 0 of a search: the configuration ``train`` trains over the same base."""
    return bool(trial.user_attrs.get(TrialKey.DEFAULT_CONFIG))


def default_config_attrs() -> dict[str, Any]:
    """The attributes a search enqueues its default trial with."""
    return {TrialKey.DEFAULT_CONFIG: True}


def default_trial(trials: Iterable[FrozenTrial]) -> FrozenTrial | None:
    return next((t for t in trials if is_default_config(t)), None)


def cost(trial: FrozenTrial) -> dict[str, Any]:
    """A multi-objective trial's measured cost (``study.latency.Cost.to_dict``); empty otherwise."""
    return dict(trial.user_attrs.get(TrialKey.COST) or {})


def record_cost(trial: optuna.Trial, measured: dict[str, Any]) -> None:
    trial.set_user_attr(TrialKey.COST, measured)


def set_worker(trial: optuna.Trial, worker_id: str) -> None:
    trial.set_user_attr(TrialKey.WORKER, worker_id)


def set_keras_tuner_budget(trial: optuna.Trial, budget: dict[str, Any]) -> None:
    trial.set_user_attr(TrialKey.KERAS_TUNER, budget)


def record_result(trial: optuna.Trial, run_dir: str, epochs: int, seconds: float, val: dict[str, float],
                  stalled: dict[str, Any] | None = None) -> None:
    """What a finished trial trained: its run directory, epochs, seconds, validation metrics, and the stall
    guard's verdict when it stopped the run."""
    trial.set_user_attr(TrialKey.RUN_DIR, run_dir)
    trial.set_user_attr(TrialKey.EPOCHS, int(epochs))
    trial.set_user_attr(TrialKey.SECONDS, round(float(seconds), 2))
    trial.set_user_attr(TrialKey.VAL, val)
    if stalled is not None:
        trial.set_user_attr(TrialKey.STALLED, stalled)


def record_error(trial: optuna.Trial, message: str, traceback: str | None = None) -> None:
    """Why a trial failed (and the end of its traceback, when there is one)."""
    trial.set_user_attr(TrialKey.ERROR, message)
    if traceback is not None:
        trial.set_user_attr(TrialKey.TRACEBACK, traceback[-TRACEBACK_CHARS:])


def record_error_in_storage(storage: optuna.storages.BaseStorage, trial_id: int, message: str) -> None:
    """``record_error`` for a trial of another process, by its storage id (``study.store.liveness``)."""
    storage.set_trial_user_attr(trial_id, TrialKey.ERROR, message)
