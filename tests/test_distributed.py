"""Several workers on one study: a real PostgreSQL server, real worker processes, real (tiny) trainings.

The ``postgres`` tests start a throwaway cluster with ``.ci/postgres.sh`` (PostgreSQL from Debian's
packages). Without one they skip, saying how to get one, unless ``CI`` is set: then they fail.
Workers train mini_xception for one epoch on the session's sample; the bookkeeping of the shared
budget is also checked under heavy contention with an instant objective, on SQLite and PostgreSQL.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Iterator

import optuna
import pandas as pd
import pytest
from click.testing import CliRunner
from optuna.trial import FrozenTrial, TrialState

from cli import cli
from study.runs import Run
from study.training import RunResult
import study.store as storage_mod
from study.tuning.kept_models import KEEP_MODELS
from study.tuning.request import SearchRequest, from_json, to_json
from study.store import STORAGE_ENV, mask_text, mask_url
from study.store.studies import failure_reason
from study.tuning.optuna_backend import SURPLUS, within_budget
from study.tuning.pool import REQUEST_ENV, gpu_ids

ROOT = Path(__file__).resolve().parents[1]
CLI_PY = ROOT / "cli.py"
SCRIPT = ROOT / ".ci" / "postgres.sh"
USER = "fer"
PASSWORD = f"Pa55-{secrets.token_hex(8)}"  # distinctive, so that a leak is found by grep
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


# --------------------------------------------------------------------------------- the server
@dataclass(frozen=True)
class Server:
    port: int
    folder: Path

    def url(self, database: str, password: str | None = PASSWORD) -> str:
        credentials = f"{USER}:{password}" if password else USER
        return f"postgresql+psycopg2://{credentials}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A fresh database (the role may create them), so every test starts from empty tables."""
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user=USER, password=PASSWORD, dbname="fer")
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
            cursor.execute(f'CREATE DATABASE "{name}"')
        connection.close()
        return self.url(name)


def _unavailable(reason: str) -> None:
    """Skip on a developer's machine without PostgreSQL; in CI a missing server is a failure."""
    message = f"no PostgreSQL server for the distributed tests: {reason}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI is set, so this fails instead of skipping)")
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server() -> Server:
    """A throwaway cluster on a free localhost port with role ``fer`` (password auth) and database ``fer``."""
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        _unavailable("the psycopg2 driver is missing (pip install psycopg2-binary)")
    folder = Path(tempfile.mkdtemp(prefix="fer-pg-"))  # under /tmp: the postgres user can reach it
    port = _free_port()
    started = subprocess.run(["bash", str(SCRIPT), "start", str(folder), str(port), USER, PASSWORD, "fer"],
                             capture_output=True, text=True, timeout=180 * HANG_GUARD)
    if started.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        _unavailable(f"{started.stderr.strip().splitlines()[-1] if started.stderr.strip() else 'start failed'} "
                     "(install it with: bash .ci/postgres.sh install)")
    return Server(port, folder)


def stop_server(server: Server) -> None:
    subprocess.run(["bash", str(SCRIPT), "stop", str(server.folder)], capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    """The session's server, stopped and deleted after the last test."""
    running = start_server()
    try:
        yield running
    finally:
        stop_server(running)


@pytest.fixture
def database(server: Server, request: pytest.FixtureRequest) -> str:
    """The URL (with the password) of a database of this test's own."""
    return server.create_database(request.node.name.split("[")[0].lower()[:60])


# ---------------------------------------------------------------------------------- workers
def search_args(data: Path, tmp: Path, study: str, trials: int) -> list[str]:
    return ["search", "--regime", "scratch", "--trials", str(trials), "--data", str(data), "--max-epochs", "1",
            "--backbone", "mini_xception", "--pruner", "none", "--runs-dir", str(tmp / "runs"), "--study", study,
            "--heartbeat", "1", "--grace", "10"]  # a grace well above the longest stall of a busy machine


def start(args: list[str], log: Path, **env: str) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, str(CLI_PY), *args], cwd=log.parent, stdout=out,
                                stderr=subprocess.STDOUT, env={**os.environ, **env})


def trials(url: str, study: str) -> list[FrozenTrial]:
    try:
        return optuna.load_study(study_name=study, storage=store(url)).get_trials()
    except KeyError:
        return []  # the study is not created yet


@functools.lru_cache(maxsize=None)
def store(url: str) -> optuna.storages.BaseStorage:
    """One storage (one connection pool) per URL, however often a test polls it."""
    return storage_mod.open_storage(url)


# Waits are hang guards, never timings: each allows HANG_GUARD times what an idle 2-core machine needs,
# so that a loaded machine (a second test suite, a build) is slow but never fails a test.
HANG_GUARD = 4


def wait_until(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds * HANG_GUARD
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def running_in(url: str, study: str, pid: int | None = None) -> list[FrozenTrial]:
    """RUNNING trials whose worker has recorded itself (so training has begun), of process ``pid`` if given."""
    return [t for t in trials(url, study) if t.state == TrialState.RUNNING and "worker" in t.user_attrs
            and (pid is None or t.user_attrs["worker"].split(":")[1] == str(pid))]


def started_by(url: str, study: str, pid: int) -> list[FrozenTrial]:
    """Trials, in any state, that process ``pid`` has recorded itself on."""
    return [t for t in trials(url, study) if t.user_attrs.get("worker", "::").split(":")[1] == str(pid)]


def training(url: str, study: str, pid: int, runs: Path) -> list[FrozenTrial]:
    """Trials of process ``pid`` that are training: train() has made their staging folder."""
    return [t for t in running_in(url, study, pid) if (runs / study / f".trial-{t.number}.partial").is_dir()]


def finish(process: subprocess.Popen, seconds: float) -> int:
    try:
        return process.wait(timeout=seconds * HANG_GUARD)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def leaks(folder: Path, secret: str) -> list[str]:
    """Files under ``folder`` that contain ``secret`` (as text or bytes)."""
    return [str(p) for p in folder.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


# ----------------------------------------------------------------------- real searches on PostgreSQL
@pytest.mark.slow  # minutes of training: CI runs it; the default suite stays within 10 minutes
@pytest.mark.postgres
def test_three_workers_fill_twelve_trials_and_a_killed_ones_trial_is_failed_and_requeued(
        database, sample_dir, tmp_path):
    """Three processes, one study of 12; one is killed -9 mid-trial. The heartbeat fails its trial after
    the grace period, optuna re-queues its parameters, and the others finish exactly 12."""
    args = search_args(sample_dir, tmp_path, "shared", 12) + ["--storage", database]
    workers = [start(args, tmp_path / f"worker-{k}.out") for k in range(3)]
    try:
        victim = workers[0]
        # The others must be past their start, where a worker fails a dead process's trials at once;
        # this test is about the heartbeat, which catches what dies while every worker is running.
        wait_until(lambda: all(started_by(database, "shared", w.pid) for w in workers[1:])
                   or any(w.poll() is not None for w in workers), 240, "workers 1 and 2 to start trials")
        wait_until(lambda: training(database, "shared", victim.pid, tmp_path / "runs") or victim.poll() is not None,
                   240, "worker 0 to train a trial")
        [killed] = training(database, "shared", victim.pid, tmp_path / "runs")
        victim.kill()
        victim.wait()
        assert [finish(w, 280) for w in workers[1:]] == [0, 0]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()

    done = trials(database, "shared")
    assert sum(t.state in FINISHED for t in done) == 12 and not any(t.state == TrialState.RUNNING for t in done)
    assert done[killed.number].state == TrialState.FAIL and "run_dir" not in done[killed.number].user_attrs
    assert "error" not in done[killed.number].user_attrs  # failed by the heartbeat, not on a restart
    [retried] = [t for t in done if t.system_attrs.get("failed_trial") == killed.number]
    assert retried.state == TrialState.COMPLETE and retried.params == done[killed.number].params == killed.params
    run_dirs = [t.user_attrs["run_dir"] for t in done if t.state == TrialState.COMPLETE]
    assert len(set(run_dirs)) == 12 and all(Run.load(d) for d in run_dirs)
    best = sorted((t for t in done if t.state == TrialState.COMPLETE), key=lambda t: (-t.value, t.number))
    assert all(Path(t.user_attrs["run_dir"], "model.keras").is_file() for t in best[:KEEP_MODELS])  # however the
    # workers interleaved, the best trials kept their models
    assert sorted(p.name for p in (tmp_path / "runs" / "shared").glob("trial-*")) == sorted(
        Path(d).name for d in run_dirs)  # the killed trial's staging folder is hidden, and no trial's
    assert all(t.user_attrs.get("error") == SURPLUS for t in done if t.state == TrialState.FAIL
               and t.number != killed.number)

    from reports.build import build_report

    built = build_report(storage=database, studies=("shared",), out=tmp_path / "report", formats="md", partial=True)
    assert "fer:***@" in built.documents["md"].read_text()
    assert leaks(tmp_path, PASSWORD) == []  # worker output, every run file, the report


@pytest.mark.slow  # minutes of training: CI runs it; the default suite stays within 10 minutes
@pytest.mark.postgres
def test_workers_option_forwards_sigterm_and_a_rerun_resumes(server, database, sample_dir, tmp_path):
    """--workers 2 with the password in PGPASSWORD: SIGTERM to the parent reaches both workers, which fail
    their trials and exit; the same command then finishes the study."""
    url = server.url(database.rsplit("/", 1)[1], password=None)
    args = search_args(sample_dir, tmp_path, "pool", 3) + ["--storage", url, "--workers", "2"]
    parent = start(args, tmp_path / "first.out", PGPASSWORD=PASSWORD)
    wait_until(lambda: running_in(database, "pool") or parent.poll() is not None, 240,
               "a worker to start a trial")
    parent.send_signal(signal.SIGTERM)
    assert finish(parent, 120) == 128 + signal.SIGTERM
    output = (tmp_path / "first.out").read_text()
    assert "interrupted" in output and "--workers 2" in output.splitlines()[-1]
    stopped = trials(database, "pool")
    assert not any(t.state == TrialState.RUNNING for t in stopped)
    errors = [t.user_attrs.get("error") for t in stopped if t.state == TrialState.FAIL]
    assert errors and set(errors) == {"interrupted (SIGTERM)"}

    rerun = start(args, tmp_path / "rerun.out", PGPASSWORD=PASSWORD)
    assert finish(rerun, 280) == 0, (tmp_path / "rerun.out").read_text()[-2000:]
    assert sum(t.state in FINISHED for t in trials(database, "pool")) == 3
    assert "pool: 3/3 finished" in (tmp_path / "rerun.out").read_text()
    assert len(list((tmp_path / "runs" / "pool" / "workers").glob("worker-*.log"))) == 2
    assert leaks(tmp_path, PASSWORD) == []


# ------------------------------------------------------------------ the shared budget, under contention
WORKER_SCRIPT = textwrap.dedent("""
    import random, sys, time
    import optuna
    from study.store import open_storage
    from study.tuning.optuna_backend import run_worker

    url, total = sys.argv[1], int(sys.argv[2])
    storage = open_storage(url, heartbeat=1, grace=3)
    study = optuna.create_study(study_name="race", storage=storage, load_if_exists=True, direction="maximize")

    def objective(trial):
        time.sleep(random.random() * 0.01)
        return trial.suggest_float("x", 0, 1)

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    run_worker(study, objective, total=total, timeout=None)
""")


def race(url: str, tmp: Path, workers: int, total: int) -> list[FrozenTrial]:
    """``workers`` processes start together on an empty store and run instant trials until ``total``."""
    script = tmp / "worker.py"
    script.write_text(WORKER_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [subprocess.Popen([sys.executable, str(script), url, str(total)], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, env=env) for _ in range(workers)]
    outputs = [p.communicate(timeout=240 * HANG_GUARD)[0] for p in processes]
    assert [p.returncode for p in processes] == [0] * workers, "\n".join(outputs)
    return trials(url, "race")


def check_exact(done: list[FrozenTrial], total: int) -> None:
    assert sum(t.state == TrialState.COMPLETE for t in done) == total
    assert all(t.user_attrs.get("error") == SURPLUS for t in done if t.state != TrialState.COMPLETE)


def test_sqlite_serves_several_local_workers_exactly(tmp_path):
    """SQLite is supported for several workers on one machine: 4 processes racing for 40 slots on a new file."""
    check_exact(race(f"sqlite:///{tmp_path / 'race.db'}", tmp_path, workers=4, total=40), 40)


@pytest.mark.postgres
def test_postgres_budget_is_exact_under_contention(database, tmp_path):
    check_exact(race(database, tmp_path, workers=5, total=60), 60)


def test_a_trial_beyond_the_budget_does_not_run():
    study = optuna.create_study()
    for state in (TrialState.COMPLETE, TrialState.FAIL, TrialState.RUNNING, TrialState.PRUNED):
        study.add_trial(optuna.create_trial(state=state, value=0.0 if state == TrialState.COMPLETE else None))
    assert within_budget(study, 3, total=3)  # trial 1 failed: 0, 2 and 3 fit in 3
    assert not within_budget(study, 3, total=2)


# ------------------------------------------------------------------ faults: a seeded kill loop
FAULT_SEARCH = ROOT / "tests" / "fault_search.py"  # cli.py with a fake training of random length
KILLS, KILL_TRIALS = 6, 6
SIGNALS = (signal.SIGKILL, signal.SIGTERM, signal.SIGINT)  # each sent KILLS / 3 times, in turn (10 kills of
# signals drawn at random took 4 minutes for the two stores, and could leave a signal out)


def fault_search(url: str, tmp: Path, data: Path, seed: int) -> subprocess.Popen:
    args = ["search", "--regime", "scratch", "--trials", str(KILL_TRIALS), "--data", str(data), "--storage", url,
            "--runs-dir", str(tmp / "runs"), "--study", "kills", "--heartbeat", "1", "--grace", "10"]
    return subprocess.Popen([sys.executable, str(FAULT_SEARCH), str(seed), *args], cwd=tmp, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_ctrl_c_as_in_a_terminal)


def _ctrl_c_as_in_a_terminal() -> None:
    """SIGINT back to its default before the search starts, so that Python turns it into KeyboardInterrupt as
    in a terminal: a shell without job control starts background commands (`bash .ci/run &`) with SIGINT
    ignored, the children inherit that, and the search then never saw the SIGINT this loop sends."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def kill_mid_trial(process: subprocess.Popen, url: str, rng: random.Random, sent: int) -> None:
    """Wait until this process runs a trial (its own: a killed one's stays RUNNING until the next
    start fails it) after ``skip`` finished ones, then send it ``sent`` at a random moment."""
    finished_before = sum(t.state in FINISHED for t in trials(url, "kills"))
    skip = rng.choice((0, 0, 1)) if finished_before < KILL_TRIALS // 2 else 0  # the kills must leave work to do

    def own_running() -> FrozenTrial | None:
        now = trials(url, "kills")
        if sum(t.state in FINISHED for t in now) < finished_before + skip:
            return None
        return next((t for t in now if t.state == TrialState.RUNNING
                     and t.user_attrs.get("worker", "").split(":")[1:2] == [str(process.pid)]), None)

    deadline = time.monotonic() + 120 * HANG_GUARD
    while (trial := own_running()) is None and process.poll() is None:
        assert time.monotonic() < deadline, "timed out waiting for a running trial"
        time.sleep(0.2)
    assert process.poll() is None, f"the search ended before kill: {process.stderr.read()[-2000:]}"
    # The moment is drawn from the trial's own start, not from when a poll saw it: a trial trains for
    # 4.5-9 s, and on a loaded machine (CI beside a training job) one poll of the store took seconds and
    # the signal landed after the search's last trial had ended. Drawn this way it is inside the trial.
    moment = trial.datetime_start + timedelta(seconds=rng.uniform(0.2, 2.5))
    time.sleep(max(0.0, (moment - datetime.now()).total_seconds()))
    assert process.poll() is None, f"the search ended before kill: {process.stderr.read()[-2000:]}"
    process.send_signal(sent)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.long])])
def test_a_seeded_loop_of_kills_ends_with_exactly_the_trials_asked_for(backend, request, sample_dir, tmp_path):
    url = f"sqlite:///{tmp_path / 'kills.db'}" if backend == "sqlite" else request.getfixturevalue("database")
    rng = random.Random(13)
    for k in range(KILLS):
        process = fault_search(url, tmp_path, sample_dir, seed=k)
        sent = SIGNALS[k % len(SIGNALS)]
        kill_mid_trial(process, url, rng, sent)
        code = process.wait(timeout=120 * HANG_GUARD)
        assert code == (-sent if sent == signal.SIGKILL else 128 + sent), (sent, code, process.stderr.read()[-2000:])
    assert sum(t.state in FINISHED for t in trials(url, "kills")) < KILL_TRIALS  # the kills left work to do
    last = fault_search(url, tmp_path, sample_dir, seed=KILLS)
    assert last.wait(timeout=300 * HANG_GUARD) == 0, last.stderr.read()[-3000:]
    done = trials(url, "kills")
    finished = [t for t in done if t.state in FINISHED]
    assert len(finished) == KILL_TRIALS and not [t for t in done if t.state == TrialState.RUNNING]
    runs = [t.user_attrs["run_dir"] for t in finished if t.state == TrialState.COMPLETE]
    assert len(set(runs)) == len(runs) and all(Path(r).is_dir() for r in runs)  # no trial counted twice
    assert not list((tmp_path / "runs" / "kills").glob(".*partial"))
    study = optuna.load_study(study_name="kills", storage=store(url))
    assert all(failure_reason(study, t) for t in done if t.state == TrialState.FAIL)  # every failure says why


# ---------------------------------------------------------------------------------- bad stores
def run_cli(*args: str, **env: str):
    return CliRunner(env=env or None).invoke(cli, list(args), catch_exceptions=False)


def search_with(tmp: Path, url: str):
    """The storage is opened before any data is read: a missing dataset folder is fine here."""
    return run_cli("search", "--regime", "scratch", "--trials", "1", "--data", str(tmp / "none"), "--storage", url)


def one_line_error(result, *expected: str) -> None:
    text = result.stderr
    assert result.exit_code == 2, result.output
    assert len(text.strip().splitlines()) == 1 and "Traceback" not in text, text
    assert PASSWORD not in result.output + text
    for part in expected:
        assert part in text, text


def test_unreachable_server_is_one_line(tmp_path):
    url = f"postgresql+psycopg2://{USER}:{PASSWORD}@127.0.0.1:{_free_port()}/fer"
    one_line_error(search_with(tmp_path, url), "cannot reach a database server at 127.0.0.1:", "start PostgreSQL",
                   f"{USER}:***@")


@pytest.mark.parametrize("url, expected", [
    (f"postgresql+nosuchdriver://{USER}:{PASSWORD}@127.0.0.1/fer", "SQLAlchemy has no postgresql driver 'nosuchdriver'"),
    (f"nosuchdb://{USER}:{PASSWORD}@127.0.0.1/fer", "unknown database kind 'nosuchdb'"),
], ids=["unknown-driver", "unknown-database"])  # ids: the URLs hold the password
def test_unknown_driver_is_one_line(tmp_path, url, expected):
    one_line_error(search_with(tmp_path, url), expected)


def test_missing_driver_names_the_package(tmp_path):
    if importlib.util.find_spec("psycopg") is not None:
        pytest.skip("psycopg (3) is installed here: its absence cannot be shown")
    one_line_error(search_with(tmp_path, f"postgresql+psycopg://{USER}:{PASSWORD}@127.0.0.1/fer"),
                   "pip install psycopg psycopg-binary")


def test_corrupt_sqlite_file_is_one_line(tmp_path):
    (tmp_path / "studies.db").write_bytes(os.urandom(4096))
    one_line_error(search_with(tmp_path, f"sqlite:///{tmp_path / 'studies.db'}"), "is not a readable SQLite database")


def test_locked_sqlite_file_is_one_line(tmp_path, monkeypatch):
    import sqlite3

    from study.store import connect

    url = f"sqlite:///{tmp_path / 'studies.db'}"
    storage_mod.open_storage(url)
    monkeypatch.setattr(connect, "SQLITE_TIMEOUT", 1)
    holder = sqlite3.connect(tmp_path / "studies.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        one_line_error(run_cli("studies", "--storage", url), "stayed locked by another process",
                       "use PostgreSQL for several workers")
    finally:
        holder.close()


@pytest.mark.postgres
def test_refused_credentials_are_one_line(server, tmp_path):
    one_line_error(search_with(tmp_path, server.url("fer", password="wrong-Pa55")),
                   f"refused the password of user '{USER}'", "PGPASSWORD")
    missing = run_cli("studies", "--storage", server.url("fer", password=None), PGPASSWORD="",
                      PGPASSFILE=str(tmp_path / "none"))
    one_line_error(missing, "wants a password", "~/.pgpass")
    one_line_error(search_with(tmp_path, server.url("nope")), 'database "nope" does not exist', "createdb")


@pytest.mark.postgres
def test_password_from_pgpass_and_url_from_the_environment(server, tmp_path):
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"127.0.0.1:{server.port}:fer:{USER}:{PASSWORD}\n")
    pgpass.chmod(0o600)
    listed = run_cli("studies", PGPASSFILE=str(pgpass), PGPASSWORD="", **{STORAGE_ENV: server.url("fer", None)})
    assert listed.exit_code == 0, listed.output


@pytest.mark.postgres
def test_a_server_lost_mid_search_is_one_line(monkeypatch, sample_dir, tmp_path):
    """The server stops during a trial (its heartbeat thread loses it too): one line, no traceback."""
    from study.tuning import objective as objective_mod

    own = start_server()

    def train(config, data, run_dir, **kwargs):
        stop_server(own)
        time.sleep(1.5)  # a heartbeat or two fails meanwhile
        return RunResult(Path(run_dir), config, pd.DataFrame(), {"val": dict.fromkeys(("accuracy", "loss", "macro_f1"),
                                                                                     0.5)}, 1, 0.1)

    monkeypatch.setattr(objective_mod, "train", train)
    result = run_cli("search", "--regime", "scratch", "--trials", "2", "--data", str(sample_dir), "--heartbeat", "1",
                     "--grace", "3", "--runs-dir", str(tmp_path / "runs"), "--storage", own.url("fer"))
    one_line_error(result, "lost the study storage", f"{USER}:***@", "cannot reach a database server")


# ------------------------------------------------------------------------------ secrets, options
def test_urls_are_masked_wherever_shown():
    url = f"postgresql+psycopg2://{USER}:{PASSWORD}@db.example:5432/fer"
    assert mask_url(url) == f"postgresql+psycopg2://{USER}:***@db.example:5432/fer"
    line = f"python cli.py search --storage={url} --trials 3"
    assert PASSWORD not in mask_text(line) and "--trials 3" in mask_text(line)
    assert mask_text(f"refused {PASSWORD}!", url) == "refused ***!"
    assert mask_url("sqlite:///studies/studies.db") == "sqlite:///studies/studies.db"


# Every shape of a storage value that holds a password: well-formed, with an unencoded "@" in the
# password, a missing or a single slash, an option written with "=".
MALFORMED = [f"{USER}:{PASSWORD}@db.example:5433/fer", f"postgresql+psycopg2:/{USER}:{PASSWORD}@db.example/fer",
             f"postgresql+psycopg2://{USER}:x@{PASSWORD}@db.example/fer",
             f"postgresql+psycopg2://{USER}:{PASSWORD}@db.example:port/fer",
             f"postgresql+psycopg2://{USER}:{PASSWORD}@db.example:5433/fer?sslmode=bogus", f"{USER}:{PASSWORD}@db"]


# The ids name each shape with the password masked: a test id that held the random password would differ
# between pytest-xdist's workers, which then refuse to run.
@pytest.mark.parametrize("url", MALFORMED, ids=[url.replace(PASSWORD, "PASSWORD") for url in MALFORMED])
def test_no_shape_of_a_storage_value_shows_its_password(tmp_path, url):
    assert PASSWORD not in mask_text(f"python cli.py search --storage={url} --trials 3")
    assert PASSWORD not in mask_url(url) and PASSWORD not in mask_text(f"got '{url}'")
    for args in (["studies"], ["show", "s"], ["report", "--out", str(tmp_path / "r")], ["train", "--from-study", "s"],
                 ["search", "--regime", "scratch", "--trials", "1", "--data", str(tmp_path / "none")]):
        result = run_cli(*args, "--storage", url)
        assert result.exit_code == 2 and PASSWORD not in result.output + result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "did you mean 'postgresql+psycopg2://'" in run_cli("studies", "--storage", MALFORMED[1]).stderr


def test_interrupted_search_masks_the_password_in_its_resume_command(monkeypatch):
    from command_line.search import resume_command

    url = f"postgresql+psycopg2://{USER}:{PASSWORD}@db:5432/fer"
    monkeypatch.setattr(sys, "argv", ["cli.py", "search", "--storage", url])
    assert resume_command() == f"python cli.py search --storage 'postgresql+psycopg2://{USER}:***@db:5432/fer'"


def test_storage_defaults_to_the_environment(tmp_path):
    url = f"sqlite:///{tmp_path / 'from-env.db'}"
    listed = run_cli("studies", **{STORAGE_ENV: url})
    assert listed.exit_code == 0 and "no studies yet" in listed.output
    assert not (tmp_path / "from-env.db").exists()  # a read creates no store


def test_commands_that_need_a_study_create_no_store_and_a_read_only_one_says_so(tmp_path):
    missing = f"sqlite:///{tmp_path / 'none.db'}"
    for args in (["train", "--from-study", "nosuch"], ["show", "nosuch"], ["studies"]):
        result = run_cli(*args, "--storage", missing)
        assert result.exit_code == (0 if args == ["studies"] else 2), result.output
        assert not (tmp_path / "none.db").exists(), args
    assert "no study store at" in run_cli("train", "--from-study", "nosuch", "--storage", missing).stderr
    port = run_cli("studies", "--storage", "postgresql+psycopg2://fer@localhost:abc/fer")
    one_line_error(port, "the port in the URL is not a number ('abc')")


def test_a_read_only_sqlite_store_says_how_to_fix_it(tmp_path, sample_dir):
    folder = tmp_path / "ro"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)], capture_output=True).returncode:
        pytest.skip("needs a read-only mount (mount -t tmpfs, as root)")
    try:
        url = f"sqlite:///{folder / 's.db'}"
        writer = storage_mod.open_storage(url)
        optuna.create_study(study_name="s", storage=writer)
        writer.engine.dispose()  # a file held open would keep the mount busy
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        result = run_cli("search", "--regime", "scratch", "--trials", "1", "--data", str(sample_dir), "--study", "s",
                         "--storage", url)
        one_line_error(result, "cannot write to the study storage", "is read-only", "pass the copy as --storage")
        assert run_cli("studies", "--storage", url).exit_code == 0  # reading it still works
    finally:  # lazily: this process may still hold the file open
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_keras_tuner_refuses_workers(tmp_path):
    result = run_cli("search", "--regime", "scratch", "--trials", "2", "--backend", "keras-tuner", "--workers", "2",
                     "--storage", f"sqlite:///{tmp_path / 's.db'}")
    assert result.exit_code == 2 and "--workers needs --backend optuna" in result.stderr


def test_grace_must_exceed_the_heartbeat(tmp_path):
    bad = run_cli("search", "--regime", "scratch", "--trials", "1", "--heartbeat", "10", "--grace", "5",
                  "--storage", f"sqlite:///{tmp_path / 's.db'}")
    assert bad.exit_code == 2 and "--grace (5 s) must exceed --heartbeat (10 s)" in bad.stderr


def pool_call(monkeypatch, *args: str) -> dict:
    """``search ... --workers N`` as the command line runs it, with the pool replaced by a recorder."""
    import command_line.search as search_commands

    seen: dict = {}

    def run_pool(request, workers, command, console):
        seen.update(request=request, workers=workers, command=command)
        raise KeyboardInterrupt  # stop there: nothing to summarize

    monkeypatch.setattr(search_commands, "run_pool", run_pool)
    run_cli("search", *args)
    return seen


def test_worker_command_line_carries_no_storage_url(monkeypatch, tmp_path):
    """A worker is started as `cli.py search-worker`; its request (the storage URL with it) is data in
    its environment, where other users cannot read it (ps shows command lines)."""
    url = f"postgresql://{USER}:{PASSWORD}@db/fer"
    seen = pool_call(monkeypatch, "--regime", "scratch", "--trials", "12", "--storage", url, "--max-epochs", "1",
                     "--runs-dir", "out", "--workers", "2")
    command = seen["command"]
    assert command[-1] == "search-worker" and Path(command[-2]).name == "cli.py"
    assert PASSWORD not in " ".join(command) and "--storage" not in command
    started = []
    monkeypatch.setattr(subprocess, "Popen", lambda args, **kwargs: started.append((args, kwargs)))
    from study.tuning import pool

    pool._start(command, seen["request"], 1, 2, [], tmp_path)
    [(args, kwargs)] = started
    assert args == command and kwargs["env"][pool.WORKER_ENV] == "1"
    request = from_json(kwargs["env"][REQUEST_ENV])
    assert request == seen["request"] and request.storage == url and request.study_name == "scratch-optuna"
    assert (request.trials, request.max_epochs, request.runs_dir) == (12, 1, "out")


@pytest.mark.parametrize("jit, flag", [(True, "--jit"), (False, "--no-jit")])
def test_worker_command_line_parses_back_to_the_same_request(monkeypatch, jit, flag):
    seen = pool_call(monkeypatch, "--regime", "transfer", "--trials", "4", "--precision", "mixed_float16", flag,
                     "--frozen-augmentation", "views", "--frozen-feature-views", "3", "--max-epochs", "2",
                     "--workers", "2")
    request = seen["request"]
    assert request.base == {"precision": "mixed_float16", "jit": jit, "frozen_augmentation": "views",
                            "frozen_feature_views": 3}
    assert from_json(to_json(request)) == request
    assert request.config.jit is jit and request.config.frozen_feature_views == 3


def test_workers_are_pinned_to_visible_gpus(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    assert gpu_ids() == ["0", "1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert gpu_ids() == []


def test_a_worker_that_opens_the_study_mid_creation_joins_it(tmp_path, monkeypatch):
    """Workers started together: one creates the study and writes its attributes one at a time while
    another loads it. "regime" is written last, so a reader that sees it sees them all; a reader that
    comes earlier writes the same values and joins (CI once caught a worker refused with fingerprint=None)."""
    storage = storage_mod.open_storage(f"sqlite:///{tmp_path / 'mid.db'}")
    spec = storage_mod.StudySpec("mid", "scratch", "optuna", "accuracy", "data/sample", "f1",
                                 {"backbone": "mini_xception"}, 2)
    written: list[str] = []
    original = optuna.Study.set_user_attr
    monkeypatch.setattr(optuna.Study, "set_user_attr", lambda self, k, v: (written.append(k), original(self, k, v)))
    storage_mod.open_study(spec, storage)
    assert written[-1] == "regime" and set(written) == set(spec.attrs())

    half = optuna.create_study(storage=storage, study_name="half", direction="maximize")
    for key, value in list(spec.attrs().items())[1:4]:  # a creator stopped mid-write, before "regime"
        original(half, key, value)
    joined = storage_mod.open_study(dataclasses.replace(spec, name="half"), storage)
    assert joined.user_attrs["fingerprint"] == "f1" and joined.user_attrs["regime"] == "scratch"
    with pytest.raises(storage_mod.StorageError, match="fingerprint='f1', this search has fingerprint='f2'"):
        storage_mod.open_study(dataclasses.replace(spec, name="half", fingerprint="f2"), storage)
