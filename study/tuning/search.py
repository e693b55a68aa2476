"""A search from options to a filled study: validate, open the store, load data, resume, run a backend.

Re-running the same search resumes it: COMPLETE and PRUNED trials count toward ``trials``, a trial
left RUNNING by a dead process is marked FAIL first (never counted), and only the remaining trials
run. Options that would change what the trials mean (regime, objective, data, base config, epoch
cap) must match the study's, else the search is refused.

Several processes may run the same search into one store at once (``workers``): the optuna backend
shares the study's ``trials`` among them, with heartbeats so that a killed worker's trial is failed
and re-queued. SIGTERM ends a search as Ctrl-C does: the running trial is marked FAIL.
"""
from __future__ import annotations

import logging
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import optuna
from rich.console import Console

from search_spaces import Space, space_for, to_config
from study.errors import ConfigError, DataError
from study.tuning.storage import (
    DEFAULT_STORAGE,
    OBJECTIVES,
    StudySpec,
    count_finished,
    fail_dead_trials,
    open_storage,
    open_study,
    storage_errors,
)

BACKENDS = ("optuna", "keras-tuner")
SAMPLERS = ("tpe", "random", "cmaes", "grid")  # optuna
PRUNERS = ("median", "halving", "hyperband", "none")  # optuna
TUNERS = ("random", "bayesian", "hyperband")  # keras-tuner
DEFAULT_DATA = "data/sample"
BASE_KEYS = ("backbone", "weights", "seed", "subset", "val_fraction", "precision", "jit", "frozen_augmentation",
             "frozen_feature_views")
_GIVEN_KEYS = ("backbone", "weights", "precision", "jit", "frozen_augmentation", "frozen_feature_views")


def default_data() -> str:
    """Where ``--data`` points when not given (the generated sample); one place to change it."""
    return DEFAULT_DATA


@dataclass(frozen=True)
class SearchRequest:
    """The options of ``search``; ``None`` means the default (sampler/pruner for optuna, tuner for keras-tuner)."""

    regime: str
    trials: int
    data: str | None = None
    backend: str = "optuna"
    sampler: str | None = None  # optuna: tpe | random | cmaes | grid
    pruner: str | None = None  # optuna: median | halving | hyperband | none
    tuner: str | None = None  # keras-tuner: random | bayesian | hyperband
    objective: str = "accuracy"
    timeout: float | None = None
    max_epochs: int | None = None
    subset: float = 1.0
    backbone: str | None = None
    weights: str | None = None
    precision: str | None = None  # float32 | mixed_float16 | mixed_bfloat16 (TrainConfig's default: float32)
    jit: bool | None = None  # XLA-compile every trial's training step
    frozen_augmentation: str | None = None  # transfer phase 1: live | none | views (study.features)
    frozen_feature_views: int | None = None  # with frozen_augmentation=views: cached views per image
    storage: str = DEFAULT_STORAGE
    study: str | None = None
    seed: int = 0
    runs_dir: str = "runs"
    heartbeat: int = 60  # optuna backend: seconds between a running trial's heartbeats
    grace: int = 180  # seconds without a heartbeat after which a trial's worker counts as dead
    default_trial: bool = True  # optuna backend: a new study's first trial is the defaults (the paper's config)

    @property
    def study_name(self) -> str:
        return self.study or f"{self.regime}-{self.backend}"


def validate(request: SearchRequest) -> None:
    """Every option checked before any data is read or any study touched."""
    def check(ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(message)

    space_for(request.regime)
    check(request.trials >= 1, f"--trials must be at least 1, got {request.trials}")
    check(request.backend in BACKENDS, f"--backend must be one of {', '.join(BACKENDS)}, got {request.backend!r}")
    check(request.objective in OBJECTIVES,
          f"--objective must be one of {', '.join(OBJECTIVES)}, got {request.objective!r}")
    check(request.timeout is None or request.timeout > 0, f"--timeout must be positive, got {request.timeout}")
    check(request.max_epochs is None or request.max_epochs >= 1,
          f"--max-epochs must be at least 1, got {request.max_epochs}")
    check(request.heartbeat >= 1, f"--heartbeat must be at least 1 second, got {request.heartbeat}")
    check(request.grace > request.heartbeat,
          f"--grace ({request.grace} s) must exceed --heartbeat ({request.heartbeat} s), or live trials would be failed")
    for option, choices in (("sampler", SAMPLERS), ("pruner", PRUNERS), ("tuner", TUNERS)):
        value = getattr(request, option)
        check(value is None or value in choices, f"--{option} must be one of {', '.join(choices)}, got {value!r}")
    optuna_only = [o for o in ("sampler", "pruner") if getattr(request, o) is not None]
    check(request.backend == "optuna" or not optuna_only, f"--{'/--'.join(optuna_only)} apply to --backend optuna only")
    check(request.backend == "keras-tuner" or request.tuner is None, "--tuner applies to --backend keras-tuner only")


def base_config(request: SearchRequest) -> dict[str, Any]:
    """The TrainConfig keys the search does not vary, validated now rather than in trial 0."""
    given = {k: v for k in _GIVEN_KEYS if (v := getattr(request, k)) is not None}
    config = to_config(request.regime, {}, {**given, "seed": request.seed, "subset": request.subset})
    return {key: getattr(config, key) for key in BASE_KEYS}


def load_data(path: str | None, base: dict[str, Any]):
    """The dataset every trial shares (loaded once); a missing default sample names the command."""
    from study.data import load_dataset

    path = path or default_data()
    if path == default_data() and not Path(path).exists():
        raise DataError(f"no dataset at {path}: run `python cli.py data sample {path}` first, or pass --data DATA")
    return load_dataset(path, val_fraction=base["val_fraction"], subset=base["subset"])


class Interrupted(KeyboardInterrupt):
    """A search stopped by a signal other than Ctrl-C (SIGTERM); it ends the same way."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def run_search(request: SearchRequest, console: Console | None = None) -> optuna.Study:
    """Run (or resume) the search; returns the study. Ctrl-C or SIGTERM propagates (as KeyboardInterrupt)
    after the running trial is marked FAIL."""
    console = console or Console()
    validate(request)
    storage = _open_storage(request)
    base = base_config(request)
    data = load_data(request.data, base)
    with storage_errors(request.storage), _sigterm_interrupts():
        return _fill(request, storage, base, data, console)


def _fill(request: SearchRequest, storage: optuna.storages.BaseStorage, base: dict[str, Any], data: Any,
          console: Console) -> optuna.Study:
    """Resume the study and run the trials it still lacks."""
    from study.tuning.display import SearchDisplay
    from study.tuning.objective import Objective

    space = _space(request)
    spec = StudySpec(request.study_name, request.regime, request.backend, request.objective,
                     request.data or default_data(), data.fingerprint, base, request.max_epochs)
    study = _resume(request, storage, spec, space, console)
    remaining = request.trials - count_finished(study)
    if remaining <= 0:
        console.print(f"study {study.study_name} already has {count_finished(study)} finished trials "
                      f"(--trials {request.trials})")
        return study
    objective = Objective(study.study_name, space, base, data, Path(request.runs_dir), request.objective,
                          request.max_epochs)
    with _quiet_optuna(), SearchDisplay(console, study, request.trials) as display:
        objective.events = display
        _run_backend(request, study, objective, remaining, display)
    return study


def _open_storage(request: SearchRequest) -> optuna.storages.BaseStorage:
    """With heartbeats for the optuna backend (``study.optimize`` sends them); keras-tuner's ask/tell
    trials send none, so its store has none to expect."""
    if request.backend != "optuna":
        return open_storage(request.storage)
    return open_storage(request.storage, heartbeat=request.heartbeat, grace=request.grace)


class _SignalGate:
    """Where SIGTERM may raise. Raised inside ``study.ask`` (the trial row created, its worker not yet
    recorded, its heartbeat not yet started) it would leave a RUNNING trial that nothing can ever
    fail; so ``run_worker`` closes the gate around ``study.optimize`` and opens it around the
    objective, where the trial is failed properly, and a signal that came while closed is raised at
    the next opening or when the gate closes again."""

    def __init__(self) -> None:
        self.closed = False
        self.pending: int | None = None

    def raise_pending(self) -> None:
        if self.pending is not None:
            signum, self.pending = self.pending, None
            raise Interrupted(signum)

    @contextmanager
    def shut(self) -> Iterator[None]:
        self.closed = True
        try:
            yield
        finally:
            self.closed = False
        self.raise_pending()

    @contextmanager
    def open(self) -> Iterator[None]:
        self.closed = False
        try:
            self.raise_pending()
            yield
        finally:
            self.closed = True


SIGNAL_GATE = _SignalGate()


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (``kill``, a scheduler's preemption, the --workers parent) takes the Ctrl-C path; only
    the first one: a second must not cut short the marking of the trial."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def interrupt(signum: int, frame: object) -> None:
        signal.signal(signum, signal.SIG_IGN)
        if SIGNAL_GATE.closed:  # inside optuna's trial bookkeeping: raised where it is safe
            SIGNAL_GATE.pending = signum
            return
        raise Interrupted(signum)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _space(request: SearchRequest) -> Space:
    from study.tuning.optuna_backend import sampler_space

    return sampler_space(request.sampler or "tpe", space_for(request.regime))


def _resume(request: SearchRequest, storage: optuna.storages.BaseStorage, spec: StudySpec, space: Space,
            console: Console) -> optuna.Study:
    """Open the study, fail the trials of dead workers, and give it this run's sampler."""
    study = open_study(spec, storage, pruner=_pruner(request, space))
    if request.backend == "optuna" and request.default_trial and not study.get_trials(deepcopy=False):
        # What the search buys is measured against this trial; workers racing here enqueue it once.
        study.enqueue_trial(space.defaults(), user_attrs={"default_config": True}, skip_if_exists=True)
    dead = fail_dead_trials(study, storage)
    _announce_dead(console, dead)
    _remove_partial_runs(Path(request.runs_dir) / study.study_name, dead)
    study.sampler = _sampler(request, space, seed=_sampler_seed(request, study))
    return study


def _sampler_seed(request: SearchRequest, study: optuna.Study) -> int:
    from study.tuning.workers import sampler_salt

    return request.seed + len(study.get_trials(deepcopy=False)) + sampler_salt(request.storage)


def _run_backend(request: SearchRequest, study: optuna.Study, objective: Any, remaining: int, display: Any) -> None:
    from study.tuning import keras_tuner_backend
    from study.tuning.workers import progress_callback, run_worker, sync_progress

    if request.backend == "optuna":
        run_worker(study, objective, attempts=remaining, total=request.trials, timeout=request.timeout,
                   callbacks=[progress_callback(display, request.trials)])
        sync_progress(display, study, request.trials)  # other workers may have finished the last ones
        return
    keras_tuner_backend.run(study, objective, _oracle(request, objective.space, study),
                            tuner_name=request.tuner or "bayesian", trials=remaining, total=request.trials,
                            timeout=request.timeout, display=display)


def _sampler(request: SearchRequest, space: Space, seed: int) -> optuna.samplers.BaseSampler:
    """Seeded with the number of trials so far, so a resumed search does not replay its first samples."""
    from study.tuning.optuna_backend import make_sampler

    if request.backend == "keras-tuner":
        return optuna.samplers.RandomSampler(seed=seed)  # never consulted: keras-tuner pins every value
    return make_sampler(request.sampler or "tpe", space, seed)


def _pruner(request: SearchRequest, space: Space) -> optuna.pruners.BasePruner:
    """keras-tuner trials report every epoch too, but only keras-tuner's Hyperband stops them early."""
    from study.tuning.optuna_backend import make_pruner

    if request.backend == "keras-tuner":
        return optuna.pruners.NopPruner()
    return make_pruner(request.pruner or "median", space, request.max_epochs)


def _oracle(request: SearchRequest, space: Space, study: optuna.Study) -> Any:
    from search_spaces.regimes import max_phase_epochs
    from study.tuning.keras_tuner_backend import make_oracle

    return make_oracle(request.tuner or "bayesian", request.objective, OBJECTIVES[request.objective],
                       max_epochs=max_phase_epochs(space, request.max_epochs),
                       seed=request.seed + len(study.get_trials(deepcopy=False)),
                       failures=request.trials + 1)


def _announce_dead(console: Console, numbers: list[int]) -> None:
    if numbers:
        listed = ", ".join(str(n) for n in numbers)
        console.print(f"[yellow]marked failed: trial(s) {listed}, left running by a process that died[/]")


def _remove_partial_runs(folder: Path, numbers: list[int]) -> None:
    """A killed trial's half-written run (its staging directory) is no use to anyone."""
    from study.runs import abandon, staging_dir

    for number in numbers:
        abandon(staging_dir(folder / f"trial-{number}"))


@contextmanager
def _quiet_optuna() -> Iterator[None]:
    """The live table shows every trial; optuna's own log lines (and failure tracebacks) would repeat it."""
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(logging.ERROR)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)
