"""The study store: one optuna storage (SQLite by default, PostgreSQL for many workers).

Every trial, whichever backend ran it, is an optuna trial here. A study remembers what it searched
(regime, backend, objective, data fingerprint, base config) in its user attributes, so a second
``search`` with the same options resumes it and one with different options is refused.
"""
from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import optuna
import psutil
from optuna.trial import FrozenTrial, TrialState

from study.errors import UserError

DEFAULT_STORAGE = "sqlite:///studies/studies.db"
OBJECTIVES: dict[str, str] = {"accuracy": "maximize", "loss": "minimize", "macro_f1": "maximize"}
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# Study attributes that must match for a search to resume a study (the backend may differ).
_MUST_MATCH = ("regime", "objective", "fingerprint", "base", "max_epochs")


class StorageError(UserError):
    """The storage URL cannot be opened, or a study is missing or incompatible."""


@dataclass(frozen=True)
class StudySpec:
    """What a study searches; saved as its user attributes and checked on every resume."""

    name: str
    regime: str
    backend: str
    objective: str
    data: str
    fingerprint: str
    base: Mapping[str, Any] = field(default_factory=dict)  # TrainConfig keys not searched: backbone, weights, ...
    max_epochs: int | None = None  # --max-epochs: the cap on each phase's epochs

    @property
    def direction(self) -> str:
        return OBJECTIVES[self.objective]

    def attrs(self) -> dict[str, Any]:
        return {
            "regime": self.regime,
            "backend": self.backend,
            "objective": self.objective,
            "direction": self.direction,
            "data": self.data,
            "fingerprint": self.fingerprint,
            "base": dict(self.base),
            "max_epochs": self.max_epochs,
        }


# ------------------------------------------------------------------------------------- storage
def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An RDB storage for ``url``; a bad URL, a missing driver or an unreachable server is one line."""
    if "://" not in url:
        raise StorageError(
            f"--storage must be a database URL such as {DEFAULT_STORAGE} or postgresql://user@host/db, got {url!r}"
        )
    _make_sqlite_folder(url)
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=_engine_kwargs(url))
    except Exception as exc:  # sqlalchemy ArgumentError/OperationalError, a driver's ImportError, ...
        raise StorageError(f"cannot open the study storage {url!r}: {_first_line(exc)}") from None


def _make_sqlite_folder(url: str) -> None:
    """``sqlite:///studies/studies.db`` is relative to the working directory; create its folder."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)


def _engine_kwargs(url: str) -> dict[str, Any]:
    """Several processes share one SQLite file: wait for its lock instead of failing at once."""
    return {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


# --------------------------------------------------------------------------------------- studies
def open_study(spec: StudySpec, storage: optuna.storages.BaseStorage, **kwargs: Any) -> optuna.Study:
    """Create the study, or resume it when it searched the same thing (sampler/pruner in kwargs)."""
    study = optuna.create_study(
        storage=storage, study_name=spec.name, direction=spec.direction, load_if_exists=True, **kwargs
    )
    if "regime" in study.user_attrs:
        check_compatible(study, spec)
    else:
        for key, value in spec.attrs().items():
            study.set_user_attr(key, value)
    return study


def check_compatible(study: optuna.Study, spec: StudySpec) -> None:
    """Refuse to mix trials of different regimes, objectives, data or base settings in one study."""
    saved, wanted = study.user_attrs, spec.attrs()
    for key in _MUST_MATCH:
        if _normal(saved.get(key)) != _normal(wanted[key]):
            raise StorageError(
                f"study {spec.name} was created with {key}={saved.get(key)!r}, this search has "
                f"{key}={wanted[key]!r}: rerun with the study's options or choose another --study NAME"
            )


def _normal(value: Any) -> Any:
    """JSON round-trips turn tuples into lists; compare what was stored with what would be."""
    return {k: _normal(v) for k, v in value.items()} if isinstance(value, Mapping) else value


def load_existing(name: str, storage: str | optuna.storages.BaseStorage) -> optuna.Study:
    """A study that must exist; a typo lists the study names there are."""
    storage = open_storage(storage) if isinstance(storage, str) else storage
    names = optuna.get_all_study_names(storage)
    if name not in names:
        known = ", ".join(sorted(names)) or "none yet (run `python cli.py search`)"
        raise StorageError(f"no study named {name!r} in this storage; studies: {known}")
    return optuna.load_study(study_name=name, storage=storage)


def count_finished(study: optuna.Study) -> int:
    """COMPLETE and PRUNED trials: what counts toward ``--trials``; FAIL ones do not."""
    return len(study.get_trials(deepcopy=False, states=FINISHED))


# ------------------------------------------------------------------------- trials of dead workers
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
    """Mark FAIL the RUNNING trials whose process died (killed, crashed); they never count."""
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    dead = [t for t in running if worker_is_dead(t.user_attrs.get("worker"))]
    for trial in dead:
        worker = trial.user_attrs["worker"]
        mark_failed(study, storage, trial, f"its process ({worker}) died during the trial; marked failed on resume")
    return [t.number for t in dead]


def mark_failed(study: optuna.Study, storage: optuna.storages.BaseStorage, trial: FrozenTrial, reason: str) -> None:
    study_id = storage.get_study_id_from_name(study.study_name)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
    try:
        storage.set_trial_user_attr(trial_id, "error", reason)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        pass  # it finished after all, between our read and this write
