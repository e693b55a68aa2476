"""The study store: one optuna storage (SQLite by default, PostgreSQL for many workers).

Every trial, whichever backend ran it, is an optuna trial here. A study remembers what it searched
(regime, backend, objective, data fingerprint, base config) in its user attributes, so a second
``search`` with the same options resumes it and one with different options is refused.

A store that cannot be used (unreachable server, refused password, missing driver, locked or
corrupt SQLite file) is a one-line ``StorageError`` naming the fix; URLs in messages are masked
(``secrets``). A trial whose worker died is failed two ways: at once when the dead process was on
this host (``fail_dead_trials``, on every start), and anywhere by optuna's heartbeat after a grace
period; either way its parameters are queued once more.
"""
from __future__ import annotations

import dataclasses
import random
import re
import socket
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import optuna
import psutil
import sqlalchemy.exc
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import make_url

from study.errors import UserError
from study.tuning.secrets import STORAGE_ENV, mask_text, mask_url

DEFAULT_STORAGE = "sqlite:///studies/studies.db"
OBJECTIVES: dict[str, str] = {"accuracy": "maximize", "loss": "minimize", "macro_f1": "maximize"}
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
SQLITE_TIMEOUT = 60  # seconds a process waits for another's lock on a SQLite file
CONNECT_TIMEOUT = 10  # seconds to reach a database server before giving up
_CREATION_RACE = ("already exists", "UNIQUE constraint failed", "duplicate key value")
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
def open_storage(url: str, *, heartbeat: int | None = None, grace: int | None = None) -> optuna.storages.RDBStorage:
    """An RDB storage for ``url``; a bad URL, a missing driver or an unreachable server is one line.

    ``heartbeat``: a running trial records a heartbeat every that many seconds, and a trial silent
    for ``grace`` seconds (its worker was killed, or its machine lost) is failed by the next worker
    that starts a trial, which re-queues its parameters once (optuna's retry callback).
    """
    if "://" not in url:
        raise StorageError(
            f"--storage must be a database URL such as {DEFAULT_STORAGE} or postgresql+psycopg2://user@host/db, "
            f"got {mask_text(url)!r}"
        )
    _make_sqlite_folder(url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeat_interval
        try:
            return _rdb_storage(url, _heartbeat_kwargs(heartbeat, grace))
        except Exception as exc:  # the server's or SQLite's refusal, a missing driver, a malformed URL or port
            raise StorageError(f"cannot open the study storage {mask_url(url)}: {describe(exc, url)}") from None


def _rdb_storage(url: str, heartbeat: dict[str, Any], attempts: int = 5) -> optuna.storages.RDBStorage:
    """Workers started together on an empty database all create optuna's tables; the losers of that
    race see "already exists" or a duplicate key, and find the tables there on a second try."""
    for _ in range(attempts - 1):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=_engine_kwargs(url), **heartbeat)
        except sqlalchemy.exc.DatabaseError as exc:
            if not any(needle in str(exc) for needle in _CREATION_RACE):
                raise
            time.sleep(0.2 + random.random())
    return optuna.storages.RDBStorage(url, engine_kwargs=_engine_kwargs(url), **heartbeat)


def _heartbeat_kwargs(heartbeat: int | None, grace: int | None) -> dict[str, Any]:
    if heartbeat is None:
        return {}
    retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)
    return {"heartbeat_interval": heartbeat, "grace_period": grace, "heartbeat_stale_trial_callback": retry}


def _make_sqlite_folder(url: str) -> None:
    """``sqlite:///studies/studies.db`` is relative to the working directory; create its folder."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)


def _engine_kwargs(url: str) -> dict[str, Any]:
    """SQLite: wait for another process's lock rather than fail at once. A server: give up on an
    unreachable host after CONNECT_TIMEOUT seconds, and reconnect after a server restart."""
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": SQLITE_TIMEOUT}}
    if url.startswith("postgresql"):
        return {"connect_args": {"connect_timeout": CONNECT_TIMEOUT}, "pool_pre_ping": True}
    return {"pool_pre_ping": True}


@contextmanager
def storage_errors(url: str) -> Iterator[None]:
    """Database failures inside the block (a server lost mid-search, a SQLite lock held too long)
    become one-line ``StorageError``s that name the fix, with the password masked; rerunning resumes.
    optuna may wrap the failure in errors of its own, so the whole chain is searched."""
    previous = threading.excepthook
    threading.excepthook = _quiet_database_errors(previous)
    try:
        yield
    except UserError:
        raise
    except Exception as exc:
        cause = database_cause(exc)
        if cause is None:
            raise
        raise StorageError(f"lost the study storage {mask_url(url)}: {describe(cause, url)}") from None
    finally:
        threading.excepthook = previous


def database_cause(exc: BaseException | None) -> BaseException | None:
    """The database error behind ``exc`` (itself, or one it was raised from or while handling)."""
    while exc is not None:
        if isinstance(exc, (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError)):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _quiet_database_errors(previous: Callable[[Any], None]) -> Callable[[Any], None]:
    """A heartbeat thread that loses the server would print a traceback; the main thread reports the
    loss in one line, so the thread's is dropped."""
    def hook(args: Any) -> None:
        if database_cause(args.exc_value) is None:
            previous(args)

    return hook


def describe(exc: BaseException, url: str) -> str:
    """What went wrong and what to do, from the driver's message (the password masked)."""
    if isinstance(exc, optuna.exceptions.StorageInternalError) and exc.__cause__ is not None:
        exc = exc.__cause__  # optuna's wrapper says only that a commit failed
    text = mask_text(_driver_message(exc), url)
    for needles, advice in _ADVICE:
        if any(needle in text for needle in needles):
            return advice(text, url)
    if isinstance(exc, sqlalchemy.exc.NoSuchModuleError):
        return _unknown_driver(url)
    if isinstance(exc, ImportError):
        return _missing_driver(exc)
    return text


def _driver_message(exc: BaseException) -> str:
    """The driver's own first line, without SQLAlchemy's "(psycopg2.OperationalError)" prefix."""
    text = (str(exc).strip() or type(exc).__name__).splitlines()[0]
    return re.sub(r"^\([\w.]+\) ", "", text)


def _where(url: str) -> str:
    parsed = make_url(url)
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}"


def _sqlite_file(url: str) -> str:
    return make_url(url).database or url


_ADVICE: tuple[tuple[tuple[str, ...], Callable[[str, str], str]], ...] = (
    (("password authentication failed", "authentication failed for user"),
     lambda text, url: f"the server refused the password of user {make_url(url).username!r}: check the password in "
                       "the URL, in PGPASSWORD or in ~/.pgpass"),
    (("no password supplied",),
     lambda text, url: f"the server wants a password for user {make_url(url).username!r}: set PGPASSWORD, add it to "
                       f"~/.pgpass, or put the whole URL in {STORAGE_ENV}"),
    (("Connection refused", "could not translate host name", "timeout expired", "No route to host",
      "Network is unreachable", "could not connect to server"),
     lambda text, url: f"cannot reach a database server at {_where(url)} ({text.rsplit(': ', 1)[-1].strip()}): "
                       "start PostgreSQL there (docs/scaling-out.md) or fix the host and port in the URL"),
    (("does not exist",),
     lambda text, url: f"{text.rsplit('FATAL:', 1)[-1].strip()} on {_where(url)}: create it (docs/scaling-out.md: "
                       "createuser / createdb) or fix the URL"),
    (("database is locked",),
     lambda text, url: f"the SQLite file {_sqlite_file(url)} stayed locked by another process for {SQLITE_TIMEOUT} s: "
                       "wait for it to finish and rerun, or use PostgreSQL for several workers (docs/scaling-out.md)"),
    (("file is not a database", "database disk image is malformed"),
     lambda text, url: f"{_sqlite_file(url)} is not a readable SQLite database (corrupt, or another kind of file): "
                       "move it away or pass another --storage"),
    (("unable to open database file",),
     lambda text, url: f"cannot create or open the SQLite file {_sqlite_file(url)}: check that its folder is "
                       "writable"),
)

# The Python module a URL's driver imports -> the packages that provide it (no [extras]: rich reads
# square brackets in a printed message as markup).
_DRIVER_PACKAGES = {"psycopg2": "psycopg2-binary", "psycopg": "psycopg psycopg-binary", "pymysql": "PyMySQL",
                    "MySQLdb": "mysqlclient", "pg8000": "pg8000", "asyncpg": "asyncpg"}


def _missing_driver(exc: ImportError) -> str:
    cause = exc if isinstance(exc, ModuleNotFoundError) else exc.__cause__
    module = getattr(cause, "name", None) or "its database driver"
    package = _DRIVER_PACKAGES.get(str(module).split(".")[0], module)
    return f"the Python driver {module} is not installed: pip install {package}"


def _unknown_driver(url: str) -> str:
    try:
        parsed = make_url(url)
        kind, driver = parsed.get_backend_name(), parsed.drivername.partition("+")[2]
    except Exception:
        kind, driver = url.partition(":")[0], ""
    if driver:
        return (f"SQLAlchemy has no {kind} driver {driver!r}: use postgresql+psycopg2://USER@HOST:PORT/DB "
                "(pip install psycopg2-binary) or sqlite:///FILE")
    return f"unknown database kind {kind!r}: use sqlite:///FILE or postgresql+psycopg2://USER@HOST:PORT/DB"


# --------------------------------------------------------------------------------------- studies
def open_study(spec: StudySpec, storage: optuna.storages.BaseStorage, **kwargs: Any) -> optuna.Study:
    """Create the study, or resume it when it searched the same thing (sampler/pruner in kwargs)."""
    study = optuna.create_study(
        storage=storage, study_name=spec.name, direction=spec.direction, load_if_exists=True, **kwargs
    )
    if "regime" not in study.user_attrs:
        # One attribute per write: "regime" goes last, so a worker that sees it sees all the others
        # (workers started together all load the new study; one may read it mid-write). Two workers
        # writing different searches at once: the last write wins and the check refuses the other.
        attrs = spec.attrs()
        for key, value in [*((k, v) for k, v in attrs.items() if k != "regime"), ("regime", attrs["regime"])]:
            study.set_user_attr(key, value)
    check_compatible(study, spec)
    return study


def check_compatible(study: optuna.Study, spec: StudySpec) -> None:
    """Refuse to mix trials of different regimes, objectives, data or base settings in one study."""
    saved, wanted = dict(study.user_attrs), spec.attrs()
    if isinstance(saved.get("base"), Mapping):  # a study from before a base key existed had its default
        saved["base"] = {**_base_defaults(wanted["base"]), **saved["base"]}
    for key in _MUST_MATCH:
        if _normal(saved.get(key)) != _normal(wanted[key]):
            raise StorageError(f"study {spec.name} was created with {_difference(key, saved.get(key), wanted[key])}: "
                               "rerun with the study's options or choose another --study NAME")


def _difference(key: str, saved: Any, wanted: Any) -> str:
    """"key=saved, this search has key=wanted", for a base config only the keys that differ."""
    if key == "base" and isinstance(saved, Mapping) and isinstance(wanted, Mapping):
        keys = [k for k in sorted({*saved, *wanted}) if _normal(saved.get(k)) != _normal(wanted.get(k))]
        saved, wanted = {k: saved.get(k) for k in keys}, {k: wanted.get(k) for k in keys}
        return (f"{', '.join(f'{k}={v!r}' for k, v in saved.items())}, this search has "
                f"{', '.join(f'{k}={v!r}' for k, v in wanted.items())}")
    return f"{key}={saved!r}, this search has {key}={wanted!r}"


def _base_defaults(keys: Iterable[str]) -> dict[str, Any]:
    """TrainConfig's regime-independent defaults for these base keys."""
    from study.config import TrainConfig

    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    return {k: defaults[k] for k in keys if k in defaults and k not in ("weights", "backbone")}


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
    """Mark FAIL the RUNNING trials whose process on this host died (killed, crashed); they never count.

    Found at once, without waiting for the heartbeat's grace period; like the heartbeat, the
    storage's retry callback then queues the trial's parameters once more.
    """
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    dead = [t for t in trials.values() if t.state == TrialState.RUNNING and worker_is_dead(claimant(t, trials))]
    retry = getattr(storage, "get_heartbeat_stale_trial_callback", lambda: None)()
    failed = []
    for trial in dead:
        reason = f"its process ({trial.user_attrs['worker']}) died during the trial; marked failed on resume"
        if mark_failed(study, storage, trial, reason):
            failed.append(trial.number)
            if retry is not None:
                retry(study, trial)  # the trial as it ran: the copy does not inherit the error just recorded
    return failed


def claimant(trial: FrozenTrial, trials: Mapping[int, FrozenTrial]) -> str | None:
    """The worker running ``trial``, or None while a re-queued trial still carries its predecessor's
    (optuna's retry copies the user attributes; the objective records its own worker first thing)."""
    worker = trial.user_attrs.get("worker")
    history = trial.system_attrs.get("retry_history", [])
    previous = trials.get(history[-1]) if history else None
    return None if previous is not None and previous.user_attrs.get("worker") == worker else worker


def mark_failed(study: optuna.Study, storage: optuna.storages.BaseStorage, trial: FrozenTrial, reason: str) -> bool:
    """True when this call failed the trial; False when it had finished meanwhile (or another worker failed it)."""
    study_id = storage.get_study_id_from_name(study.study_name)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
    try:
        storage.set_trial_user_attr(trial_id, "error", reason)
        return storage.set_trial_state_values(trial_id, TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
