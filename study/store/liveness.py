"""Trials whose worker died: told apart from live ones, failed, and queued once more.

optuna's heartbeat (``open_storage(heartbeat=..., grace=...)``, checked by
``optuna.storages.fail_stale_trials``) fails a dead worker's trial anywhere, but only once it has
been silent for the grace period, and only for trials run by ``study.optimize`` (keras-tuner's
ask/tell trials send no heartbeat). So a search also checks, on every start, the RUNNING trials of
processes on this host: a trial records its worker as host:pid:start-time first thing, and when that
process is gone the trial is failed at once (``fail_dead_trials``), and its parameters queued again
by the storage's own retry callback, as the heartbeat would.
"""
from __future__ import annotations

import socket
from typing import Callable, Mapping

import optuna
import psutil
from optuna.trial import FrozenTrial, TrialState

from study.store import records


def worker_id() -> str:
    """host:pid:start-time; the start time tells a reused pid from the process that ran a trial."""
    me = psutil.Process()
    return f"{socket.gethostname()}:{me.pid}:{me.create_time():.0f}"


def worker_is_dead(worker: str | None) -> bool:
    """True only when we can tell: same host, and that process (pid + start time) is gone."""
    host, _, rest = (worker or "").partition(":")
    pid, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's worker (or none recorded): it may well be alive
    try:
        return f"{psutil.Process(int(pid)).create_time():.0f}" != started
    except psutil.NoSuchProcess:
        return True


def fail_dead_trials(study: optuna.Study, storage: optuna.storages.BaseStorage) -> list[int]:
    """Mark FAIL the RUNNING trials whose process on this host died (killed, crashed); they never count.

    Found at once, without waiting for the heartbeat's grace period; like the heartbeat, the
    storage's retry callback then queues the trial's parameters once more.
    """
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    dead = [t for t in trials.values() if t.state == TrialState.RUNNING and worker_is_dead(claimant(t, trials))]
    retry = getattr(storage, "get_heartbeat_stale_trial_callback", lambda: None)()
    failed = []
    for trial in dead:
        reason = f"its process ({records.worker(trial)}) died during the trial; marked failed on resume"
        if mark_failed(study, storage, trial, reason):
            failed.append(trial.number)
            if retry is not None:
                retry(study, trial)  # the trial as it ran: the copy does not inherit the error just recorded
    return failed


def claimant(trial: FrozenTrial, trials: Mapping[int, FrozenTrial]) -> str | None:
    """The worker running ``trial``, or None while a re-queued trial still carries its predecessor's
    (optuna's retry copies the user attributes; the objective records its own worker first thing)."""
    worker = records.worker(trial)
    history = records.retry_history(trial)
    previous = trials.get(history[-1]) if history else None
    return None if previous is not None and records.worker(previous) == worker else worker


def mark_failed(study: optuna.Study, storage: optuna.storages.BaseStorage, trial: FrozenTrial, reason: str) -> bool:
    """True when this call failed the trial; False when it had finished meanwhile (or another worker failed it)."""
    study_id = storage.get_study_id_from_name(study.study_name)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
    try:
        records.record_error_in_storage(storage, trial_id, reason)
        return storage.set_trial_state_values(trial_id, TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False


class StaleTrialFailed:
    """The storage's heartbeat callback: records why the trial failed (on the study), then re-queues it
    (``retry``, optuna's retry callback)."""

    def __init__(self, retry: Callable[[optuna.Study, FrozenTrial], None], grace: int) -> None:
        self.retry, self.grace = retry, grace

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        worker = records.worker(trial) or "unknown"
        records.add_study_failure(study, trial.number, f"no heartbeat from its worker ({worker}) for {self.grace} s: "
                                                       f"killed, or its machine lost; failed by {worker_id()}")
        self.retry(study, trial)
