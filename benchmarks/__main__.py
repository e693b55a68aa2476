"""``python -m benchmarks [--quick] [--only NAME ...]``: every benchmark in one process, one table.

A benchmark that fails does not hide the others: its row says so and the exit status is 1.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback

from benchmarks import BENCHMARKS
from benchmarks.common import Row, log, machine, quiet, table
from study.training import releasing_traced_graphs


def run_all(names: tuple[str, ...], quick: bool) -> tuple[list[Row], bool]:
    rows: list[Row] = []
    ok = True
    for name in names:
        started = time.perf_counter()
        try:
            with releasing_traced_graphs():  # whatever a benchmark traced outside train() goes with it
                rows += importlib.import_module(f"benchmarks.{name}").run(quick)
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
    args = parser.parse_args(argv)
    quiet()
    header = machine()
    started = time.perf_counter()
    rows, ok = run_all(tuple(args.only or BENCHMARKS), args.quick)
    print(header)
    print(f"Command: python -m benchmarks{' --quick' if args.quick else ''}; wall time "
          f"{(time.perf_counter() - started) / 60:.1f} min")
    print()
    print(table(rows), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
