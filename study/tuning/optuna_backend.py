"""The optuna backend: ``study.optimize`` with a sampler and a per-epoch pruner, trial by trial
within the study's shared budget.

Samplers (``SAMPLERS``): ``tpe`` (default; multi-objective TPE for an edge search), ``nsga2`` (NSGA-II, the
genetic multi-objective sampler), ``random``, ``cmaes`` (CMA-ES on the numeric parameters;
categorical ones are sampled at random by its independent sampler), ``gp`` (optuna's Gaussian-process
sampler; it needs PyTorch) and ``grid``. The grid enumerates
every ``Choice`` parameter while ``Int``/``Float`` ones stay at the paper's values (``grid_space``): a
grid over 17 continuous ranges cannot be enumerated, their categorical part can (a few thousand points).

Pruners (``PRUNERS``) judge a trial after every epoch on the objective's validation metric:
``median`` (default), ``halving`` (successive halving), ``hyperband`` (its max resource is the
longest schedule in epochs) and ``none``.

Any number of processes (here or on other machines) on the same study and storage fill it together.
A search's ``trials`` is the study's total of finished (complete or pruned) trials, and no
interleaving of workers exceeds it:

* before each trial a worker waits for a free slot: it starts one only while finished + running +
  queued trials are fewer than the total (or a queued trial is waiting for it), and leaves once the
  total is finished or its timeout is up. While it waits it fails the trials whose heartbeat
  stopped (optuna's ``fail_stale_trials``), so a killed worker's slot (and its parameters,
  re-queued by optuna's retry callback) is taken over;
* two workers can pass that check at the same moment for the last slot, so the check is repeated
  inside the trial, which optuna has numbered by then (under a lock on the study): a trial runs only
  if it is among the first ``total`` trials that are not failed. A trial that loses that race is
  failed at once with ``SURPLUS``, before any training; like every failed trial it does not count.
"""
from __future__ import annotations

import os
import time
import warnings
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from search_spaces import Space, grid_space, grid_values
from search_spaces.regimes import max_schedule_epochs
from study.errors import ConfigError, TrialFailed
from study.events import SearchEvents
from study.store import count_finished, last_failure, records
from study.store.liveness import worker_id
from study.tuning.signals import SIGNAL_GATE

WORKER_ENV = "FER_STUDY_WORKER"  # the index a local pool gives each of its processes
POLL_SECONDS = 1.0
SURPLUS = "not run: the study's other trials already fill its total (another worker took the last slot)"
_LIVE = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)


# ------------------------------------------------------------------------ samplers and pruners
def _cmaes(space: Space, seed: int | None) -> optuna.samplers.BaseSampler:
    try:
        import cmaes  # noqa: F401  optuna's CmaEsSampler needs it (an optional package)
    except ImportError:
        raise ConfigError("«sampler» cmaes needs the cmaes package: pip install cmaes") from None
    return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)


def _gp(space: Space, seed: int | None) -> optuna.samplers.BaseSampler:
    try:
        import torch  # noqa: F401  optuna's GPSampler fits its Gaussian process with PyTorch (optional: 200+ MB)
    except ImportError:
        raise ConfigError("«sampler» gp needs PyTorch: pip install torch (or the [gp] extra)") from None
    # Parameters that only some trials use (momentum under SGD, ...) are outside the GP's joint space: its
    # independent sampler draws them, which it would otherwise warn about on every trial.
    return optuna.samplers.GPSampler(seed=seed, warn_independent_sampling=False)


# name -> (the space the objective samples, seed) -> sampler
SAMPLERS: dict[str, Callable[[Space, int | None], optuna.samplers.BaseSampler]] = {
    "tpe": lambda space, seed: optuna.samplers.TPESampler(seed=seed),
    "random": lambda space, seed: optuna.samplers.RandomSampler(seed=seed),
    "cmaes": _cmaes,
    "gp": _gp,
    "grid": lambda space, seed: optuna.samplers.GridSampler(grid_values(space), seed=seed),
    "nsga2": lambda space, seed: optuna.samplers.NSGAIISampler(seed=seed),
}
# name -> (space, epoch cap) -> pruner. Median waits for 5 finished trials and 2 epochs (SGD's first
# epochs are too noisy to judge), fewer when a cap leaves the trials too few epochs for a judgement to save
# one (the last epoch is never judged: study.tuning.callbacks).
PRUNERS: dict[str, Callable[[Space, int | None], optuna.pruners.BasePruner]] = {
    "median": lambda space, cap: optuna.pruners.MedianPruner(n_startup_trials=5,
                                                             n_warmup_steps=median_warmup(space, cap)),
    "halving": lambda space, cap: optuna.pruners.SuccessiveHalvingPruner(),
    "hyperband": lambda space, cap: optuna.pruners.HyperbandPruner(
        min_resource=1, max_resource=max_schedule_epochs(space, cap)),
    "none": lambda space, cap: optuna.pruners.NopPruner(),
}


def median_warmup(space: Space, cap: int | None) -> int:
    """Epochs before the median pruner judges a trial: 2, or as many as leave one epoch to save (a trial of 3
    epochs is judged after its second, of 2 after its first). With 2 as a fixed warmup, ``--max-epochs 3`` let
    it judge only the last epoch, where pruning saves nothing and discards the trial."""
    return min(2, max(0, max_schedule_epochs(space, cap) - 2))


def sampler_space(sampler: str, space: Space) -> Space:
    """The space the objective samples: the grid pins numeric parameters, other samplers see all."""
    return grid_space(space) if sampler == "grid" else space


def make_sampler(name: str, space: Space, seed: int | None) -> optuna.samplers.BaseSampler:
    """``space`` is what the objective samples (see ``sampler_space``)."""
    return _pick(SAMPLERS, "sampler", name)(space, seed)


def make_pruner(name: str, space: Space, max_epochs: int | None) -> optuna.pruners.BasePruner:
    return _pick(PRUNERS, "pruner", name)(space, max_epochs)


def _pick(registry: dict[str, Any], what: str, name: str) -> Any:
    if name not in registry:
        raise ConfigError(f"«{what}» must be one of {', '.join(registry)}, got {name!r}")
    return registry[name]


def sampler_salt(url: str) -> int:
    """Added to a worker's sampler seed. Workers started together see the same number of trials, so
    without it their samplers would propose the same values. A local pool numbers its processes;
    workers started by hand on a database server differ by host and pid (such a search is not
    reproducible anyway); a lone SQLite search keeps its seed, and so its reproducibility."""
    index = os.environ.get(WORKER_ENV)
    if index is not None and index.isdigit():
        return 7919 * int(index)
    if url.startswith("sqlite"):
        return 0
    return 7919 * (zlib.crc32(worker_id().encode()) % 100_000)


# ------------------------------------------------------------------------------ the shared budget
class Surplus(Exception):
    """This trial was created after the study's budget was taken; it fails before any training."""


@dataclass
class Budgeted:
    """The objective, run only when its trial is within the study's budget of ``total`` trials."""

    objective: Callable[[optuna.Trial], float]
    total: int
    surplus: bool = False  # the last trial lost the race for the last slot
    returned: optuna.Trial | None = None  # the last trial, when its objective returned a value
    last: int | None = None  # the number of the last trial

    def __call__(self, trial: optuna.Trial) -> float:
        self.returned, self.last = None, trial.number
        self.surplus = not within_budget(trial.study, trial.number, self.total)
        if self.surplus:
            records.record_error(trial, SURPLUS)
            raise Surplus(SURPLUS)
        try:
            with SIGNAL_GATE.open():
                value = self.objective(trial)
        except KeyboardInterrupt as exc:  # also between two steps of the objective, and naming SIGTERM
            records.record_error(trial, f"interrupted ({str(exc) or 'Ctrl-C'})")
            raise
        self.returned = trial
        return value

    def taken_away(self, study: optuna.Study) -> FrozenTrial | None:
        """The last trial, when another worker failed it while it ran here (optuna then refuses to tell
        its value): its heartbeat was silent for longer than the grace period, in a process starved of
        CPU or stalled in a long garbage collection. It stays FAIL (its parameters were re-queued)."""
        if self.returned is None:
            return None
        trial = study.get_trials(deepcopy=False)[self.returned.number]
        return trial if trial.state == TrialState.FAIL else None


def within_budget(study: optuna.Study, number: int, total: int) -> bool:
    """Trial ``number`` is among the first ``total`` trials not failed: then however workers interleave,
    at most ``total`` finish (numbers only grow, and a failed trial never comes back)."""
    live = study.get_trials(deepcopy=False, states=_LIVE)
    return sum(t.number <= number for t in live) <= total


def run_worker(study: optuna.Study, objective: Callable[[optuna.Trial], float], *, total: int,
               timeout: float | None, max_failures: int = 3,
               callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]] = ()) -> str | None:
    """Run trials here, each in a free slot, until the study holds ``total`` finished ones.

    A failed trial never counts toward ``total``: the next trial samples anew. After ``max_failures``
    failed trials in a row this process stops (every trial failing would never fill the study).
    Returns why it stopped short of a full study (None when full).
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    budgeted, in_a_row = Budgeted(objective, total), 0
    while wait_for_slot(study, total, deadline):
        SIGNAL_GATE.check()  # a signal whose exception Python dropped while waiting: start no trial
        if in_a_row >= max_failures:
            return f"{in_a_row} trials failed in a row, the last: {last_failure(study)}"
        try:
            with SIGNAL_GATE.shut():  # SIGTERM raises inside the objective only (see SignalGate)
                study.optimize(budgeted, n_trials=1, catch=(TrialFailed, Surplus), callbacks=list(callbacks))
        except ValueError:  # optuna's "Cannot tell a FAIL trial": see Budgeted.taken_away
            lost = budgeted.taken_away(study)
            if lost is None:
                raise
            for callback in callbacks:  # this worker goes on with the next trial
                callback(study, lost)
        if not budgeted.surplus and budgeted.last is not None:
            in_a_row = in_a_row + 1 if _state(study, budgeted.last) == TrialState.FAIL else 0
    if timeout is None or count_finished(study) >= total:
        return None
    return f"the timeout of {timeout:g} s was reached"


def _state(study: optuna.Study, number: int) -> TrialState:
    return study.get_trials(deepcopy=False)[number].state


def was_surplus(trial: FrozenTrial) -> bool:
    return records.error(trial) == SURPLUS


def wait_for_slot(study: optuna.Study, total: int, deadline: float | None) -> bool:
    """Block until a trial may start here (True), or the study is full or time is up (False)."""
    while True:
        SIGNAL_GATE.check()
        fail_stale_trials(study)
        counts = Counter(t.state for t in study.get_trials(deepcopy=False))
        finished = counts[TrialState.COMPLETE] + counts[TrialState.PRUNED]
        if finished >= total or (deadline is not None and time.monotonic() >= deadline):
            return False
        if counts[TrialState.WAITING] or finished + counts[TrialState.RUNNING] < total:
            return True
        time.sleep(POLL_SECONDS)  # every slot is taken by a running trial: one may yet fail


def fail_stale_trials(study: optuna.Study) -> None:
    """optuna's heartbeat check (a no-op without heartbeat), also while waiting: otherwise a killed
    worker's trial would hold its slot until some worker starts a trial, and all of them are waiting."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def progress_callback(events: SearchEvents, total: int) -> Callable[[optuna.Study, FrozenTrial], None]:
    """The display hears this worker's trials; its bar follows the study's count (every worker's)."""
    def on_trial(study: optuna.Study, trial: FrozenTrial) -> None:
        if not was_surplus(trial):
            events.trial_finished(study, trial)
        events.study_finished(min(count_finished(study), total))

    return on_trial


def run(study: optuna.Study, objective: Callable[[optuna.Trial], float], *, total: int, timeout: float | None,
        max_failures: int, events: SearchEvents) -> str | None:
    """The backend's entry: this process's trials, then the display set to the study's count (other
    workers may have finished the last ones). Returns why it stopped short, if it did."""
    stopped = run_worker(study, objective, total=total, timeout=timeout, max_failures=max_failures,
                         callbacks=[progress_callback(events, total)])
    events.study_finished(min(count_finished(study), total))
    return stopped


# ------------------------------------------------------------------------------------ the backend
class OptunaBackend:
    """``study.optimize`` in as many workers as share the study (``study.tuning.backends.TunerBackend``)."""

    name = "optuna"
    options = ("sampler", "pruner")  # the request fields only this backend reads
    pool = None  # several workers may fill one study
    heartbeats = True  # study.optimize sends them
    single_objective = None  # optuna's multi-objective studies: TPE (MOTPE), NSGA-II, random, GP

    def space(self, request: Any, space: Space) -> Space:
        return sampler_space(request.sampler_name, space)

    def estimate_plan(self, request: Any, default_first: bool) -> tuple[str, bool]:
        return request.pruner_name, request.default_trial and default_first

    def enqueues_default(self, request: Any) -> bool:
        return request.default_trial

    def sampler(self, request: Any, space: Space, seed: int) -> optuna.samplers.BaseSampler:
        return make_sampler(request.sampler_name, space, seed)

    def pruner(self, request: Any, space: Space) -> optuna.pruners.BasePruner:
        return make_pruner(request.pruner_name, space, request.max_epochs)

    def run(self, request: Any, study: optuna.Study, objective: Any, remaining: int,
            events: SearchEvents) -> str | None:
        return run(study, objective, total=request.trials, timeout=request.timeout, max_failures=request.max_failures,
                   events=events)
