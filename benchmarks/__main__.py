"""``python -m benchmarks [--quick] [--only NAME ...] [--write FILE]``: every benchmark in one process, one table.

A benchmark that fails does not hide the others: its row says so and the exit status is 1.
``--write README.md`` also puts the output, exactly as printed, between the file's
``<!-- benchmarks:start -->`` and ``<!-- benchmarks:end -->`` lines (the README's Performance section).
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback

from benchmarks import BENCHMARKS
from benchmarks.common import Row, between, existing_file, log, machine, quiet, table
from study.backend import releasing_traced_graphs


def run_all(names: tuple[str, ...], quick: bool) -> tuple[list[Row], bool]:
    rows: list[Row] = []
    ok = True
    for name in names:
        started = time.perf_counter()
        try:
            with releasing_traced_graphs():  # whatever a benchmark traced outside train() goes with it
                new = importlib.import_module(f"benchmarks.{name}").run(quick)
            rows += new
            log(f"{name}:\n{table(new)}")  # as it comes: a long run that is stopped still shows its rows
        except Exception as exc:  # noqa: BLE001 - reported in the table, the run goes on
            traceback.print_exc()
            rows.append(Row(f"{name}: FAILED ({type(exc).__name__}: {str(exc).splitlines()[0][:80] if str(exc) else ''})",
                            "-", "-", None, met=False))
            ok = False
        log(f"{name} took {time.perf_counter() - started:.0f} s")
    return rows, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data and few steps (CI smoke test)")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run these benchmarks only")
    parser.add_argument("--write", type=existing_file, metavar="FILE",
                        help=f"also write the output between the {START} and {END} lines of FILE")
    args = parser.parse_args(argv)
    if args.write:
        between(args.write.read_text(), "", START, END)  # a file without the markers fails now, not after the run
    quiet()
    header = machine()
    started = time.perf_counter()
    rows, ok = run_all(tuple(args.only or BENCHMARKS), args.quick)
    command = "python -m benchmarks" + (" --quick" if args.quick else "") + (
        f" --only {' '.join(args.only)}" if args.only else "")
    output = "\n".join([header, f"Command: {command}; wall time {(time.perf_counter() - started) / 60:.1f} min", "",
                        table(rows)])
    print(output, flush=True)
    if args.write:
        args.write.write_text(between(args.write.read_text(), f"```text\n{output}\n```\n", START, END))
    return 0 if ok else 1


START, END = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"


if __name__ == "__main__":
    sys.exit(main())
