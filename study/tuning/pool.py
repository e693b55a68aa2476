"""A local pool: N worker processes on one study, started here, watched by polling the store.

Each worker is its own process group (Ctrl-C and SIGTERM reach only this parent, which forwards them
once), pinned to one GPU when there are GPUs, and gets its search as data: the request as JSON in
``REQUEST_ENV`` (the storage URL and its password with it, so none is on a command line other users
can read). The command that starts a worker comes from the caller (the command line owns its
commands); the pool only adds the environment. Progress is polled from the store, and each worker's
output goes to ``RUNS_DIR/<study>/workers/``. How the workers share the study's trials:
``optuna_backend``.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import optuna
from optuna.trial import TrialState

from study.events import SILENT, Events
from study.errors import ConfigError, UserError
from study.store import best_trial, is_multi_objective, load_existing, open_storage, pareto_front, records
from study.tuning.backends import BACKENDS
from study.tuning.optuna_backend import POLL_SECONDS, WORKER_ENV, was_surplus
from study.tuning.request import SearchRequest, check_data, to_json, validate
from study.tuning.signals import Interrupted

REQUEST_ENV = "FER_STUDY_REQUEST"  # a worker's search request, as JSON (request.to_json)


class WorkerError(UserError):
    """A worker started by a local pool stopped with an error."""


def run_pool(request: SearchRequest, workers: int, command: Sequence[str], events: Events = SILENT) -> optuna.Study:
    """Start ``workers`` processes of ``command`` on this machine (each reads its request from
    ``REQUEST_ENV``), tell ``events`` the study's progress, return the study."""
    check_pool(request)
    storage = open_storage(request.storage)
    logs = Path(request.runs_dir) / request.study_name / "workers"
    gpus = gpu_ids()
    events.say(f"starting {workers} workers on {_devices(gpus, workers)}; their output: {logs}/")
    processes: list[subprocess.Popen] = []
    with _forwarding_signals(processes) as received:
        for k in range(workers):
            if not received:  # a Ctrl-C while starting: start no more
                processes.append(_start(command, request, k, workers, gpus, logs))
        _watch(processes, storage, request, events)
    if received:
        raise Interrupted(received[0])
    _check_exits(processes, logs)
    return load_existing(request.study_name, storage)


def check_pool(request: SearchRequest) -> None:
    """Refuse what several workers cannot do, before any process starts."""
    validate(request)
    why = request.tuner_backend.pool
    if why is not None:
        pooled = ", ".join(b.name for b in BACKENDS.values() if b.pool is None)
        raise ConfigError(f"«workers» needs «backend» {pooled}: {why}; its trials still land in the same store")
    check_data(request, any_path=True)


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


def _child_env(request: SearchRequest, index: int, workers: int, gpus: list[str]) -> dict[str, str]:
    env = {**os.environ, REQUEST_ENV: to_json(request), WORKER_ENV: str(index)}
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]
    else:  # CPU workers share the cores instead of each starting a thread per core
        for name in ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS"):
            env.setdefault(name, str(_threads(workers)))
    return env


def _start(command: Sequence[str], request: SearchRequest, index: int, workers: int, gpus: list[str],
           logs: Path) -> subprocess.Popen:
    """A worker in its own session (terminal signals reach the parent only); it gets SIGTERM if the parent dies."""
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"worker-{index}.log", "ab") as log:
        return subprocess.Popen(list(command), stdin=subprocess.DEVNULL,
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
           events: Events) -> None:
    """Poll the study until every worker has exited, saying its progress as it changes."""
    last = None
    while True:
        alive = sum(p.poll() is None for p in processes)
        line = _status(storage, request, alive, len(processes))
        if line != last:
            events.say(line)
            last = line
        if not alive:
            return
        time.sleep(POLL_SECONDS)


def _status(storage: optuna.storages.BaseStorage, request: SearchRequest, alive: int, workers: int) -> str:
    """One line: finished/total, running, failed, best, workers alive."""
    try:
        study = records.load(request.study_name, storage)
    except KeyError:
        return f"{request.study_name}: starting; workers {alive}/{workers}"
    trials = study.get_trials(deepcopy=False)
    counts = Counter(t.state for t in trials)
    finished = counts[TrialState.COMPLETE] + counts[TrialState.PRUNED]
    failed = sum(t.state == TrialState.FAIL and not was_surplus(t) for t in trials)
    best = _best(study)
    return (f"{request.study_name}: {finished}/{request.trials} finished, {counts[TrialState.RUNNING]} running, "
            f"{failed} failed, best {best}; workers {alive}/{workers}")


def _best(study: optuna.Study) -> str:
    """The best trial so far, or an edge study's Pareto front."""
    if is_multi_objective(study):
        front = pareto_front(study)
        return f"front #{', #'.join(str(t.number) for t in front)}" if front else "-"
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
