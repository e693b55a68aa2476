"""Many worker processes, one study: the shared trial budget, and ``search --workers N`` on one machine.

Any number of ``cli.py search`` processes (here or on other machines) given the same ``--study`` and
``--storage`` fill one study together. ``--trials N`` is the study's total of finished (complete or
pruned) trials, and no interleaving of workers exceeds it:

* before each trial a worker waits for a free slot: it starts one only while finished + running +
  queued trials are fewer than N (or a queued trial is waiting for it), and leaves once N are
  finished or its ``--timeout`` is up. While it waits it fails the trials whose heartbeat stopped, so
  a killed worker's slot (and its parameters, re-queued by optuna's retry callback) is taken over;
* two workers can pass that check at the same moment for the last slot, so the check is repeated
  inside the trial, which optuna has numbered by then (under a lock on the study): a trial runs only
  if it is among the first N trials that are not failed. A trial that loses that race is failed at
  once with ``SURPLUS``, before any training; like every failed trial it does not count.

``--workers N`` starts N such processes here, each in its own process group (Ctrl-C and SIGTERM
reach only this parent, which forwards them once), pinned to one GPU each when there are GPUs, with
the storage URL passed in the environment rather than on a command line. It shows the study's
progress by polling the store, and each worker's output goes to ``RUNS_DIR/<study>/workers/``.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
import zlib
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console

from study.errors import ConfigError, DataError, TrialFailed, UserError
from study.tuning.secrets import STORAGE_ENV
from study.tuning.storage import count_finished, load_existing, open_storage, worker_id

if TYPE_CHECKING:
    from study.tuning.search import SearchRequest

WORKER_ENV = "FER_STUDY_WORKER"  # the index --workers gives each of its processes
POLL_SECONDS = 1.0
SURPLUS = "not run: the study's other trials already fill --trials (another worker took the last slot)"
_LIVE = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
_CLI = Path(__file__).resolve().parents[2] / "cli.py"  # beside the study package, in a checkout or an install


class Surplus(Exception):
    """This trial was created after the study's budget was taken; it fails before any training."""


class WorkerError(UserError):
    """A worker started by --workers stopped with an error."""


# ------------------------------------------------------------------------------- one worker
@dataclass
class Budgeted:
    """The objective, run only when its trial is within the study's budget of ``total`` trials."""

    objective: Callable[[optuna.Trial], float]
    total: int
    surplus: bool = False  # the last trial lost the race for the last slot
    returned: optuna.Trial | None = None  # the last trial, when its objective returned a value

    def __call__(self, trial: optuna.Trial) -> float:
        self.returned = None
        self.surplus = not within_budget(trial.study, trial.number, self.total)
        if self.surplus:
            trial.set_user_attr("error", SURPLUS)
            raise Surplus(SURPLUS)
        from study.tuning.search import SIGNAL_GATE

        try:
            with SIGNAL_GATE.open():
                value = self.objective(trial)
        except KeyboardInterrupt as exc:  # also between two steps of the objective, and naming SIGTERM
            trial.set_user_attr("error", f"interrupted ({str(exc) or 'Ctrl-C'})")
            raise
        self.returned = trial
        return value

    def taken_away(self, study: optuna.Study) -> FrozenTrial | None:
        """The last trial, when another worker failed it while it ran here (optuna then refuses to tell
        its value): its heartbeat was silent for longer than --grace, in a process starved of CPU or
        stalled in a long garbage collection. It stays FAIL (its parameters were re-queued)."""
        if self.returned is None:
            return None
        trial = study.get_trials(deepcopy=False)[self.returned.number]
        return trial if trial.state == TrialState.FAIL else None


def within_budget(study: optuna.Study, number: int, total: int) -> bool:
    """Trial ``number`` is among the first ``total`` trials not failed: then however workers interleave,
    at most ``total`` finish (numbers only grow, and a failed trial never comes back)."""
    live = study.get_trials(deepcopy=False, states=_LIVE)
    return sum(t.number <= number for t in live) <= total


def run_worker(study: optuna.Study, objective: Callable[[optuna.Trial], float], *, attempts: int, total: int,
               timeout: float | None, callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]] = ()) -> None:
    """Run at most ``attempts`` trials here, each in a free slot, until the study holds ``total`` finished ones.

    ``attempts`` bounds this process even when every trial fails (a failed trial does not count
    toward ``total``, so the study would never fill); a rerun goes on from there.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    budgeted = Budgeted(objective, total)
    while attempts > 0 and wait_for_slot(study, total, deadline):
        from study.tuning.search import SIGNAL_GATE

        try:
            with SIGNAL_GATE.shut():  # SIGTERM raises inside the objective only (see _SignalGate)
                study.optimize(budgeted, n_trials=1, catch=(TrialFailed, Surplus), callbacks=list(callbacks))
        except ValueError:  # optuna's "Cannot tell a FAIL trial": see Budgeted.taken_away
            lost = budgeted.taken_away(study)
            if lost is None:
                raise
            for callback in callbacks:  # this worker goes on with the next trial
                callback(study, lost)
        attempts -= 0 if budgeted.surplus else 1


def _was_surplus(trial: FrozenTrial) -> bool:
    return trial.user_attrs.get("error") == SURPLUS


def wait_for_slot(study: optuna.Study, total: int, deadline: float | None) -> bool:
    """Block until a trial may start here (True), or the study is full or time is up (False)."""
    while True:
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


def progress_callback(display: Any, total: int) -> Callable[[optuna.Study, FrozenTrial], None]:
    """The display hears this worker's trials; its bar follows the study's count (every worker's)."""
    def on_trial(study: optuna.Study, trial: FrozenTrial) -> None:
        if not _was_surplus(trial):
            display.trial_finished(study, trial)
        sync_progress(display, study, total)

    return on_trial


def sync_progress(display: Any, study: optuna.Study, total: int) -> None:
    """Set the display's bar to the study's finished trials, whichever worker finished them."""
    display.progress.update(display.task, completed=min(count_finished(study), total))


def sampler_salt(url: str) -> int:
    """Added to a worker's sampler seed. Workers started together see the same number of trials, so
    without it their samplers would propose the same values. ``--workers`` numbers its processes;
    workers started by hand on a database server differ by host and pid (such a search is not
    reproducible anyway); a lone SQLite search keeps its seed, and so its reproducibility."""
    index = os.environ.get(WORKER_ENV)
    if index is not None and index.isdigit():
        return 7919 * int(index)
    if url.startswith("sqlite"):
        return 0
    return 7919 * (zlib.crc32(worker_id().encode()) % 100_000)


# ------------------------------------------------------------------------ --workers N, locally
def run_pool(request: SearchRequest, workers: int, console: Console) -> optuna.Study:
    """Start ``workers`` worker processes on this machine, show the study's progress, return the study."""
    from study.tuning.search import Interrupted

    check_pool(request)
    storage = open_storage(request.storage)
    logs = Path(request.runs_dir) / request.study_name / "workers"
    gpus = gpu_ids()
    console.print(f"starting {workers} workers on {_devices(gpus, workers)}; their output: {logs}/", highlight=False)
    processes: list[subprocess.Popen] = []
    with _forwarding_signals(processes) as received:
        for k in range(workers):
            if not received:  # a Ctrl-C while starting: start no more
                processes.append(_start(request, k, workers, gpus, logs))
        _watch(processes, storage, request, console)
    if received:
        raise Interrupted(received[0])
    _check_exits(processes, logs)
    return load_existing(request.study_name, storage)


def check_pool(request: SearchRequest) -> None:
    """Refuse what several workers cannot do, before any process starts."""
    from study.tuning.search import default_data, validate

    validate(request)
    if request.backend != "optuna":
        raise ConfigError("--workers needs --backend optuna: keras-tuner's oracle keeps its state in one process "
                          "(see docs/scaling-out.md); its trials still land in the same store")
    data = request.data or default_data()
    if not Path(data).exists():
        raise DataError(f"no dataset at {data}: run `python cli.py data sample {data}` first, or pass --data DATA")


def gpu_ids() -> list[str]:
    """The GPUs to pin workers to: CUDA_VISIBLE_DEVICES when set, else ``nvidia-smi -L`` (TF stays unloaded)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g for g in visible.split(",") if g.strip() and g.strip() != "-1"]
    if not shutil.which("nvidia-smi"):
        return []
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.split(":")[0].split()[1] for line in listing.splitlines() if line.startswith("GPU ")]


def _devices(gpus: list[str], workers: int) -> str:
    if gpus:
        return "GPUs " + ", ".join(gpus[k % len(gpus)] for k in range(workers))
    return f"CPU ({os.cpu_count()} cores, {_threads(workers)} thread(s) per worker)"


def _threads(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


def child_args(request: SearchRequest) -> list[str]:
    """The worker's command line: this search without --workers and without --storage (passed in the
    environment, so the URL and its password are not on a command line other users can read)."""
    args = ["search"]
    for f in fields(request):
        value = getattr(request, f.name)
        if f.name in ("storage", "study") or value is None or value == f.default:
            continue
        option = f"--{f.name.replace('_', '-')}"
        if isinstance(value, bool):  # a --flag/--no-flag pair
            args.append(option if value else f"--no-{option[2:]}")
        else:
            args += [option, str(value)]
    return [*args, "--study", request.study_name]


def _child_env(request: SearchRequest, index: int, workers: int, gpus: list[str]) -> dict[str, str]:
    env = {**os.environ, STORAGE_ENV: request.storage, WORKER_ENV: str(index)}
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]
    else:  # CPU workers share the cores instead of each starting a thread per core
        for name in ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS"):
            env.setdefault(name, str(_threads(workers)))
    return env


def _start(request: SearchRequest, index: int, workers: int, gpus: list[str], logs: Path) -> subprocess.Popen:
    """A worker in its own session (terminal signals reach the parent only); it gets SIGTERM if the parent dies."""
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"worker-{index}.log", "ab") as log:
        return subprocess.Popen([sys.executable, str(_CLI), *child_args(request)], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, env=_child_env(request, index, workers, gpus),
                                start_new_session=True, preexec_fn=_die_with_parent)


def _die_with_parent() -> None:
    """Linux: SIGTERM the worker when the parent dies (killed -9 too), so no worker outlives it unseen."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@contextmanager
def _forwarding_signals(processes: list[subprocess.Popen]) -> Iterator[list[int]]:
    """Ctrl-C / SIGTERM here are forwarded once to every worker (each marks its trial FAIL and exits)."""
    received: list[int] = []

    def forward(signum: int, frame: Any) -> None:
        if not received:
            received.append(signum)
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _watch(processes: list[subprocess.Popen], storage: optuna.storages.BaseStorage, request: SearchRequest,
           console: Console) -> None:
    """Poll the study until every worker has exited, printing its progress as it changes."""
    last = None
    while True:
        alive = sum(p.poll() is None for p in processes)
        line = _status(storage, request, alive, len(processes))
        if line != last:
            console.print(line, highlight=False)
            last = line
        if not alive:
            return
        time.sleep(POLL_SECONDS)


def _status(storage: optuna.storages.BaseStorage, request: SearchRequest, alive: int, workers: int) -> str:
    """One line: finished/total, running, failed, best, workers alive."""
    try:
        study = optuna.load_study(study_name=request.study_name, storage=storage)
    except KeyError:
        return f"{request.study_name}: starting; workers {alive}/{workers}"
    trials = study.get_trials(deepcopy=False)
    counts = Counter(t.state for t in trials)
    finished = counts[TrialState.COMPLETE] + counts[TrialState.PRUNED]
    failed = sum(t.state == TrialState.FAIL and not _was_surplus(t) for t in trials)
    best = _best(study)
    return (f"{request.study_name}: {finished}/{request.trials} finished, {counts[TrialState.RUNNING]} running, "
            f"{failed} failed, best {best}; workers {alive}/{workers}")


def _best(study: optuna.Study) -> str:
    from study.tuning.views import best_trial

    best = best_trial(study)
    return "-" if best is None else f"{best.value:.4f} (#{best.number})"


def _check_exits(processes: list[subprocess.Popen], logs: Path) -> None:
    """A worker's one-line error (bad options, data, storage) is the pool's; any other failure names its log."""
    for index, process in enumerate(processes):
        if process.returncode == 0:
            continue
        log = logs / f"worker-{index}.log"
        error = _last_error(log)
        if error:
            raise WorkerError(f"worker {index}: {error}")
        raise WorkerError(f"worker {index} stopped with exit status {process.returncode}: see {log}")


def _last_error(log: Path) -> str | None:
    lines = log.read_text(errors="replace").splitlines() if log.is_file() else []
    errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    return errors[-1] if errors else None
