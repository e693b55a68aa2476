"""Command start-up: the wall time of the read-only commands, each in a fresh process, against a baseline.

    python -m benchmarks.startup [--quick] [--against OTHER_CHECKOUT] [--write README.md]

Each command runs ``REPEATS`` times (``--quick``: 2) as ``python cli.py ...`` in a subprocess, after
one warm-up run, on a study store of one small study that the benchmark writes itself (optuna
directly, no training); a row gives the fastest run (as ``timeit`` does: the run the machine's load
disturbed least) and the median. Bytecode is cached as on a user's machine, under a temporary
``PYTHONPYCACHEPREFIX``. The baseline is ``python -c pass``, the interpreter's own start-up; with
``--against DIR`` it is the same command of another checkout (e.g. ``git worktree add ../before
HEAD~1``), run alternately with ours so that both see the same load, and the ratio is theirs over
ours (above 1: ours starts faster). One more run with ``python -X importtime`` tells whether the
command imported TensorFlow or Keras; the goal of each row is an answer within a second with
neither imported. A last row times the import of the study store alone: the floor of the commands
that read it. Timings depend on the machine and its load (the header says both); what the commands
import does not. ``--write FILE`` puts the output between ``<!-- startup:start -->`` and
``<!-- startup:end -->`` in FILE.

It starts no TensorFlow itself, so it takes a minute or two, apart from ``python -m benchmarks``.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

from benchmarks.common import Row, between, cpu_model, existing_file, median, table
from study.store import StudySpec, open_storage, open_study, records

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 7
GOAL_SECONDS = 1.0
HEAVY = ("tensorflow", "keras")  # top-level packages a read-only command must not import
STUDY = "startup-scratch"
START, END = "<!-- startup:start -->", "<!-- startup:end -->"


def commands(storage: str) -> list[tuple[str, list[str]]]:
    """(label, arguments of cli.py) for every command timed."""
    return [
        ("cli.py --help", ["--help"]),
        ("cli.py --version", ["--version"]),
        ("cli.py studies", ["studies", "--storage", storage]),
        (f"cli.py show {STUDY}", ["show", STUDY, "--storage", storage]),
        ("cli.py space --regime scratch", ["space", "--regime", "scratch"]),
    ]


def make_store(folder: Path) -> str:
    """A SQLite store holding one scratch study of three finished trials, as a search leaves it."""
    url = f"sqlite:///{folder / 'studies.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = StudySpec(STUDY, "scratch", "optuna", "accuracy", "data/sample", "0" * 16, {"backbone": "mini_xception"}, 2)
    study = open_study(spec, open_storage(url))
    lr = optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)
    optimizer = optuna.distributions.CategoricalDistribution(["sgd", "adam"])
    for number, value in enumerate((0.31, 0.44, 0.38)):
        trial = study.ask({"optimizer": optimizer, "learning_rate": lr})
        records.record_result(trial, f"runs/{STUDY}/trial-{number}", epochs=2, seconds=60.0, val={"accuracy": value})
        study.tell(trial, value)
    return url


def wall(argv: list[str], env: dict[str, str], cwd: Path = ROOT) -> float | None:
    """Seconds from start to exit; None when the command fails (another checkout may lack it)."""
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started if done.returncode == 0 else None


def heavy_imports(argv: list[str], env: dict[str, str]) -> list[str]:
    """The packages of ``HEAVY`` that ``python -X importtime`` saw imported."""
    done = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    names = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in done.stderr.splitlines()
             if line.startswith("import time:")}
    return [name for name in HEAVY if name in names]


def timed(times: list[float | None]) -> tuple[float, float] | None:
    """(fastest, median), or None when any run failed."""
    return None if not times or None in times else (min(times), median(times))


def run(quick: bool, against: Path | None = None) -> list[Row]:
    repeats = 2 if quick else REPEATS
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="fer-startup-") as folder:
        storage = make_store(Path(folder))
        # Bytecode cached as on a user's machine (a warm-up run writes it), in the temporary folder, not the tree.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(Path(folder) / "pycache")
        bare = timed([wall([python, "-c", "pass"], env) for _ in range(repeats)])
        assert bare is not None
        rows = []
        for label, args in commands(storage):
            ours_argv = [python, str(ROOT / "cli.py"), *args]
            ours: list[float | None] = []
            theirs: list[float | None] = []
            runs = [(ours_argv, ROOT, ours)]
            if against is not None:
                runs.append(([python, str(against / "cli.py"), *args], against, theirs))
            for argv, cwd, _ in runs:
                wall(argv, env, cwd)  # the warm-up: bytecode written, files in the page cache
            for _ in range(repeats):  # alternately, so that both see the same load
                for argv, cwd, times in runs:
                    times.append(wall(argv, env, cwd))
            mine = timed(ours)
            if mine is None:
                raise RuntimeError(f"{label} failed")
            base = timed(theirs) if against else bare
            rows.append(_row(label, mine, base, against, heavy_imports(ours_argv, env)))
        store = timed([wall([python, "-c", "import study.store"], env) for _ in range(repeats)])
        rows.append(Row("reference: python -c 'import study.store' (what studies and show must load: optuna, "
                        "SQLAlchemy)", f"python -c pass {bare[0]:.2f} s", _seconds(store), None,
                        ratio_text=f"{store[0] / bare[0]:.0f}x the interpreter"))
    return rows


def _row(label: str, ours: tuple[float, float], base: tuple[float, float] | None, against: Path | None,
         heavy: list[str]) -> Row:
    loaded = f"imports {' and '.join(heavy)}" if heavy else "no TensorFlow, no Keras"
    goal = dict(goal=f"<= {GOAL_SECONDS:.1f} s, no TensorFlow", met=ours[0] <= GOAL_SECONDS and not heavy)
    name = f"start-up: {label} ({loaded})"
    if against is None:
        return Row(name, f"python -c pass {base[0]:.2f} s", _seconds(ours), None,
                   ratio_text=f"{ours[0] / base[0]:.0f}x the interpreter", **goal)
    if base is None:
        return Row(name, f"{against.name}: fails", _seconds(ours), None, **goal)
    return Row(name, f"{against.name}: {_seconds(base)}", _seconds(ours), base[0] / ours[0], **goal)


def _seconds(times: tuple[float, float]) -> str:
    return f"{times[0]:.2f} s (median {times[1]:.2f} s)"


def header(repeats: int, against: Path | None) -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    versus = f"; baseline: {against}" if against else ""
    return (f"Machine: {cpu_model()}, {os.cpu_count()} cores; load average at start {load}; "
            f"Python {platform.python_version()}; fastest and median of {repeats} runs per command{versus}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.startup", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 runs per command instead of 7 (CI smoke test)")
    parser.add_argument("--against", type=Path, metavar="DIR",
                        help="another checkout (its cli.py) as the baseline, e.g. a git worktree of an older commit")
    parser.add_argument("--write", type=existing_file, metavar="FILE", help=f"also write the output between {START} and {END}")
    args = parser.parse_args(argv)
    if args.write:
        between(args.write.read_text(), "", START, END)  # a file without the markers fails now, not after the run
    against = args.against.resolve() if args.against else None
    if against is not None and not (against / "cli.py").is_file():
        parser.error(f"--against {args.against}: no cli.py there")
    top = header(2 if args.quick else REPEATS, against)
    rows = run(args.quick, against)
    command = "python -m benchmarks.startup" + (" --quick" if args.quick else "") + (
        f" --against {args.against}" if args.against else "")
    output = "\n".join([top, f"Command: {command}", "", table(rows)])
    print(output, flush=True)
    if args.write:
        args.write.write_text(between(args.write.read_text(), f"```text\n{output}\n```\n", START, END))
    return 0 if all(r.met is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
