"""Opening the study store (one optuna storage: SQLite by default, PostgreSQL for many workers).

A store that cannot be used (unreachable server, refused password, missing driver, locked or
corrupt SQLite file) is a one-line ``StorageError`` naming the fix, with the password masked
(``study.store.urls``). ``open_storage(url, read_only=True)`` is how reports and prediction read:
a SQLite file that does not exist is an error (reading never creates a store), and one that does is
opened read-only.
"""
from __future__ import annotations

import random
import re
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import optuna
import sqlalchemy.exc
from sqlalchemy.engine import make_url

from study.errors import UserError, setting
from study.store.liveness import StaleTrialFailed
from study.store.urls import STORAGE_ENV, mask_text, mask_url

DEFAULT_STORAGE = "sqlite:///studies/studies.db"
SQLITE_TIMEOUT = 60  # seconds a process waits for another's lock on a SQLite file
CONNECT_TIMEOUT = 10  # seconds to reach a database server before giving up
_CREATION_RACE = ("already exists", "UNIQUE constraint failed", "duplicate key value")


class StorageError(UserError):
    """The storage URL cannot be opened, or a study is missing or incompatible."""


class NoStore(StorageError):
    """Reading a SQLite store that does not exist (nothing has been searched into it yet)."""

    def __init__(self, url: str) -> None:
        super().__init__(f"no study store at {sqlite_path(url)} ({url})")
        self.url = url


def sqlite_path(url: str) -> str | None:
    """The file of a ``sqlite:///FILE`` URL (None for other URLs and for an in-memory database)."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        return url[len("sqlite:///"):]
    return None


# ------------------------------------------------------------------------------------- storage
def open_storage(url: str, *, heartbeat: int | None = None, grace: int | None = None,
                 read_only: bool = False, create: bool = True) -> optuna.storages.RDBStorage:
    """An RDB storage for ``url``; a bad URL, a missing driver or an unreachable server is one line.

    ``read_only``: for commands that only read (a SQLite file opened ``mode=ro``). ``create=False``:
    a missing SQLite file is ``NoStore``, not a new empty database (a command that writes only to
    studies that exist, such as final training from a study).

    ``heartbeat``: a running trial records a heartbeat every that many seconds, and a trial silent
    for ``grace`` seconds (its worker was killed, or its machine lost) is failed by the next worker
    that starts a trial, which re-queues its parameters once (optuna's retry callback).
    """
    if "://" not in url:
        raise StorageError(f"{setting('storage')} must be a database URL such as {DEFAULT_STORAGE} or "
                           f"postgresql+psycopg2://user@host/db; {_refused(url)}")
    if not (create or read_only) and sqlite_path(url) is not None and not Path(sqlite_path(url)).is_file():
        raise NoStore(url)
    target = _read_only(url) if read_only else _make_sqlite_folder(url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeat_interval
        try:
            return _rdb_storage(target, url, _heartbeat_kwargs(heartbeat, grace))
        except Exception as exc:  # the server's or SQLite's refusal, a missing driver, a malformed URL or port
            raise StorageError(f"cannot open the study storage {mask_url(url)}: {describe(exc, url)}") from None


def _rdb_storage(target: str, url: str, heartbeat: dict[str, Any], attempts: int = 5) -> optuna.storages.RDBStorage:
    """Workers started together on an empty database all create optuna's tables; the losers of that
    race see "already exists" or a duplicate key, and find the tables there on a second try.
    ``target`` is what SQLAlchemy opens (a read-only SQLite URI), ``url`` what the user gave."""
    for _ in range(attempts - 1):
        try:
            return optuna.storages.RDBStorage(target, engine_kwargs=_engine_kwargs(url), **heartbeat)
        except sqlalchemy.exc.DatabaseError as exc:
            if not any(needle in str(exc) for needle in _CREATION_RACE):
                raise
            time.sleep(0.2 + random.random())
    return optuna.storages.RDBStorage(target, engine_kwargs=_engine_kwargs(url), **heartbeat)


def _heartbeat_kwargs(heartbeat: int | None, grace: int | None) -> dict[str, Any]:
    if heartbeat is None:
        return {}
    retry = StaleTrialFailed(optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1), grace)
    return {"heartbeat_interval": heartbeat, "grace_period": grace, "heartbeat_stale_trial_callback": retry}


_SLASHES = {"sqlite": ":///"}  # sqlite:///relative/file.db
_DIALECTS = ("postgresql", "postgres", "sqlite", "mysql", "mariadb", "oracle", "mssql")


def _refused(url: str) -> str:
    """What was wrong with a value that is not a URL, without echoing it: it may hold a password."""
    scheme = re.match(r"([a-z][a-z0-9+.\-]*):/?(?!/)", url, re.IGNORECASE)
    if scheme and scheme.group(1).split("+")[0].lower() in _DIALECTS:
        meant = scheme.group(1) + _SLASHES.get(scheme.group(1).lower(), "://")
        return f"the value given starts with {scheme.group(0)!r}: did you mean {meant!r}? (not shown: it may hold a password)"
    if "@" in url or ":" in url:
        return "the value given has no '://' (not shown: it may hold a password)"
    return f"got {url!r}"


def _make_sqlite_folder(url: str) -> str:
    """``sqlite:///studies/studies.db`` is relative to the working directory; create its folder."""
    path = sqlite_path(url)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    return url


def _read_only(url: str) -> str:
    """A SQLite file opened read-only (SQLite's ``mode=ro`` URI); other databases as they are (their
    readers need no write, and a server's permissions are the server's)."""
    path = sqlite_path(url)
    if path is None:
        return url
    if not Path(path).is_file():
        raise NoStore(url)
    return f"sqlite:///file:{Path(path).resolve()}?mode=ro&uri=true"


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
        what = describe(cause, url)
        header = "cannot write to" if "is read-only" in what else "lost"
        raise StorageError(f"{header} the study storage {mask_url(url)}: {what}") from None
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
            return mask_text(advice(text, url), url)
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
    host = (parsed.host or "localhost").rsplit("@", 1)[-1]  # an unencoded "@" in a password ends up in the host
    return f"{host}:{parsed.port or 5432}"


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
                       "move it away or pass another «storage»"),
    (("attempt to write a readonly database", "readonly database"),
     lambda text, url: f"the SQLite file {_sqlite_file(url)} is read-only (the file, its folder or its disk cannot be "
                       "written): make it writable, or copy it somewhere writable and pass the copy as «storage»"),
    (("invalid literal for int()",),
     lambda text, url: f"the port in the URL is not a number ({text.rsplit(': ', 1)[-1]}): write host:5432, or "
                       "leave the port out"),
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


