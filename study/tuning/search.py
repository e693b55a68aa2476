"""A search from a request to a filled study: validate, open the store, load data, resume, run a backend.

Re-running the same search resumes it: COMPLETE and PRUNED trials count toward ``trials``, a trial
left RUNNING by a dead process is marked FAIL first (never counted), and only the remaining trials
run. Settings that would change what the trials mean (regime, objective, data, base config, epoch
cap) must match the study's, else the search is refused.

Several processes may run the same search into one store at once: the optuna backend shares the
study's ``trials`` among them (``optuna_backend``), with heartbeats so that a killed worker's trial
is failed and re-queued. SIGTERM ends a search as Ctrl-C does: the running trial is marked FAIL.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import optuna

from search_spaces import Space, defaults_over, pin, space_for, with_backbones
from study import backend as keras_backend
from study.data import Dataset, load_dataset
from study.events import SILENT, Events
from study.store import StudySpec, count_finished, open_storage, records, storage_errors
from study.store.liveness import fail_dead_trials
from study.store.studies import open_study
from study.tuning import optuna_backend
from study.tuning.estimate import Forecast, Plan, SearchEstimate, estimate_search
from study.tuning.objective import Objective, remove_stale_staging
from study.tuning.request import SearchIncomplete, SearchRequest, base_config, check_data, validate
from study.tuning.signals import signals_interrupt
from study.tuning.tracked_trials import catch_up, study_tracking


def run_search(request: SearchRequest, events: Events = SILENT) -> optuna.Study:
    """Run (or resume) the search, telling ``events`` how it goes; returns the study. Ctrl-C or SIGTERM
    propagates (as KeyboardInterrupt) after the running trial is marked FAIL."""
    validate(request)
    storage = _open_storage(request)
    base = base_config(request)
    data = load_data(request, base)
    with storage_errors(request.storage), signals_interrupt():
        return _fill(request, storage, base, data, events)


def estimate(request: SearchRequest) -> SearchEstimate:
    """The search's projected wall time on this machine, from a probe run (``study.tuning.estimate``);
    nothing is written to the store."""
    validate(request)
    base = base_config(request)
    return estimate_search(_plan(request, base, load_data(request, base), request.trials, request.default_trial))


def _plan(request: SearchRequest, base: dict[str, Any], data: Dataset, trials: int, default_first: bool) -> Plan:
    """What the estimate projects: ``trials`` more trials, the first of them the defaults when ``default_first``."""
    pruner, first = request.tuner_backend.estimate_plan(request, default_first)
    return Plan(trial_space(request), base, data, trials, request.max_epochs, pruner, first, seed=request.seed)


def load_data(request: SearchRequest, base: dict[str, Any]) -> Dataset:
    """The dataset every trial shares (loaded once); a missing default sample is ``NoDataset``."""
    check_data(request)
    return load_dataset(request.dataset, val_fraction=base["val_fraction"], subset=base["subset"])


def _fill(request: SearchRequest, storage: optuna.storages.BaseStorage, base: dict[str, Any], data: Dataset,
          events: Events) -> optuna.Study:
    """Resume the study and run the trials it still lacks."""
    space = trial_space(request)
    spec = StudySpec(request.study_name, request.regime, request.backend, request.objective, request.dataset,
                     data.fingerprint, base, request.max_epochs, keras_backend=keras_backend.name())
    with quiet_optuna():  # optuna's "[I ...] A new study created in RDB" line: the display names the study
        study = _resume(request, storage, spec, space, events)
    remaining = request.trials - count_finished(study)
    if remaining <= 0:
        events.say(f"study {study.study_name} already has {count_finished(study)} finished trials "
                   f"(of {request.trials} asked for)")
        tracking = study_tracking(request.track, study, request.runs_dir, events.say)
        catch_up(tracking, study)  # a finished study tracked now: its trials are added, once
        tracking.close()
        return study
    objectives = request.objectives
    objective = Objective(study.study_name, space, base, data, Path(request.runs_dir), objectives.metric,
                          request.max_epochs, request.keep_models, cost=objectives.cost)
    if objectives.multi:
        events.say(f"study {study.study_name}: validation {objectives.metric} against {objectives.cost} "
                   f"(measured on each trained model's TFLite export); no pruning (optuna prunes one objective "
                   f"only); every trial keeps its model")
    fresh = not any(records.run_dir(t) for t in study.get_trials(deepcopy=False))
    forecast = Forecast(_plan(request, base, data, remaining, fresh), events.say)
    forecast.start()
    objective.finished = lambda number, result: forecast.trial_finished(number, result, study.study_name)
    objective.tracking = study_tracking(request.track, study, request.runs_dir, events.say)
    try:
        catch_up(objective.tracking, study)  # trials that ran untracked, or whose tracker failed
        with quiet_optuna(), events.search_started(study, request.trials) as trials:
            objective.events = trials
            stopped = request.tuner_backend.run(request, study, objective, remaining, trials)
    finally:
        objective.tracking.close()
    remove_stale_staging(Path(request.runs_dir) / study.study_name, study)  # trials failed by the last heartbeats
    if count_finished(study) < request.trials:
        raise SearchIncomplete(study.study_name, count_finished(study), request.trials,
                               stopped or _short(request))
    return study


def _short(request: SearchRequest) -> str:
    if request.timeout is not None:
        return f"the timeout of {request.timeout:g} s was reached"
    return "other workers' trials are still running"


def trial_space(request: SearchRequest) -> Space:
    """What the trials sample: the regime's space (and the backbones an edge search weighs), with the base's
    keys pinned, as the sampler reads it."""
    space = with_backbones(space_for(request.regime), request.varied_backbones)
    space = pin(space, {k: v for k, v in base_config(request).items() if k in request.base})
    return request.tuner_backend.space(request, space)


def default_trials(request: SearchRequest, space: Space) -> list[dict[str, Any]]:
    """What a new study's first trials train: the defaults (``train``'s configuration over the base); an edge
    search's, for each backbone it weighs (the paper's first), as many as the study has trials."""
    if not request.varied_backbones:
        return [defaults_over(space, request.base)]
    first = space["backbone"].default
    backbones = sorted(request.varied_backbones, key=lambda b: b != first)
    return [{**defaults_over(space, {**request.base, "backbone": b}), "backbone": b}
            for b in backbones][:request.trials]


def _open_storage(request: SearchRequest) -> optuna.storages.BaseStorage:
    """With heartbeats where the backend's trials send them (``study.optimize`` does); keras-tuner's
    ask/tell trials send none, so its store has none to expect."""
    if not request.tuner_backend.heartbeats:
        return open_storage(request.storage)
    return open_storage(request.storage, heartbeat=request.heartbeat, grace=request.grace)


def _resume(request: SearchRequest, storage: optuna.storages.BaseStorage, spec: StudySpec, space: Space,
            events: Events) -> optuna.Study:
    """Open the study, fail the trials of dead workers, and give it this run's sampler."""
    backend = request.tuner_backend
    study = open_study(spec, storage, pruner=backend.pruner(request, space))
    if backend.enqueues_default(request) and not study.get_trials(deepcopy=False):
        # What the search buys is measured against this trial; workers racing here enqueue it once.
        for values in default_trials(request, space):
            study.enqueue_trial(values, user_attrs=records.default_config_attrs(), skip_if_exists=True)
    dead = fail_dead_trials(study, storage)
    _announce_dead(events, dead)
    remove_stale_staging(Path(request.runs_dir) / study.study_name, study)  # the dead trials' and any other
    study.sampler = backend.sampler(request, space, _sampler_seed(request, study))
    return study


def _sampler_seed(request: SearchRequest, study: optuna.Study) -> int:
    """Seeded with the number of trials so far, so a resumed search does not replay its first samples."""
    return request.seed + len(study.get_trials(deepcopy=False)) + optuna_backend.sampler_salt(request.storage)


def _announce_dead(events: Events, numbers: list[int]) -> None:
    if numbers:
        listed = ", ".join(str(n) for n in numbers)
        events.warn(f"marked failed: trial(s) {listed}, left running by a process that died")


@contextmanager
def quiet_optuna() -> Iterator[None]:
    """The live table shows every trial; optuna's own log lines (and failure tracebacks) would repeat it."""
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(logging.ERROR)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)
