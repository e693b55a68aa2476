"""Memory across trials: peak RSS of 20 consecutive search trials in one process.

The trials are real: optuna (random sampler, seeded) calls the tuning objective, which calls
``study.training.train`` on mini_xception. The baseline runs the first few of the same trials with
``train``'s release of the traced graphs switched off, which is how every trial leaked before:
Keras's TF optimizer all-reduces gradients through ``tf.custom_gradient`` even on one device, and
in graph mode each trace registers a gradient function in TensorFlow's global registry that keeps
the traced step's whole graph alive (tensorflow#97697), about 25 MiB per compiled model.

Each series runs in a fresh Python process: in a process that has already held more (the other
benchmarks of ``python -m benchmarks``), a leak first fills memory the allocator freed earlier and
the RSS hides it.
"""
from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
from pathlib import Path
from unittest import mock

import numpy as np
import optuna
import psutil

from benchmarks.common import Row, log, main, percent, quiet, scratch_dir, tiny_images
from search_spaces import SCRATCH
from study import backend
from study.data import Dataset, LoadReport, Split
from study.tuning.objective import Objective

GOAL = 0.10
MIB = 2**20


class PeakRss:
    """The highest RSS seen while the block runs, sampled every 20 ms by a thread."""

    def __enter__(self) -> PeakRss:
        self.peak = psutil.Process().memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        process = psutil.Process()
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, process.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, psutil.Process().memory_info().rss)


def tiny_dataset(n: int = 56) -> Dataset:
    x, y = tiny_images(n)
    split = Split(x, y)
    return Dataset(split, split, split, "tiny", "memory", "arrays", True, LoadReport(0, 0, ()))


def peaks(trials: int, name: str) -> list[int]:
    """Peak RSS of each of ``trials`` consecutive trials of one study in this process."""
    objective = Objective(name, SCRATCH, {"backbone": "mini_xception", "rotation": 0.0, "zoom": 0.0, "flip": False},
                          tiny_dataset(), scratch_dir() / "memory", max_epochs=1)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0),
                                pruner=optuna.pruners.NopPruner())
    result = []
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for _ in range(trials):
        with PeakRss() as peak:
            study.optimize(objective, n_trials=1)
        result.append(peak.peak)
    return result


def peaks_in_child(trials: int, name: str, leak: bool = False) -> list[int]:
    """``peaks`` in a new Python process (with the traced-graph release switched off if ``leak``)."""
    command = [sys.executable, "-m", "benchmarks.memory", "--peaks", name, str(trials), *(["--leak"] if leak else [])]
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=Path(__file__).resolve().parents[1])
    if done.returncode != 0:
        raise RuntimeError(f"the memory child failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _child(argv: list[str]) -> None:
    quiet()
    name, trials, leak = argv[1], int(argv[2]), "--leak" in argv
    patch = (mock.patch.object(backend, "releasing_traced_graphs", contextlib.nullcontext) if leak
             else contextlib.nullcontext())
    with patch:
        print(json.dumps(peaks(trials, name)), flush=True)


def growth(values: list[int]) -> float:
    """From trial 2 (the first, warming up, allocates the process's one-time state) to the last."""
    return (values[-1] - values[1]) / values[1]


def run(quick: bool) -> list[Row]:
    trials, baseline_trials = (3, 0) if quick else (20, 5)
    log(f"memory: {trials} trials with the fix")
    ours = peaks_in_child(trials, "ours")
    ours_cell = f"{ours[1] / MIB:,.0f} -> {ours[-1] / MIB:,.0f} MiB ({percent(growth(ours))})"
    baseline_cell, projected = "not run (--quick)", None
    if baseline_trials:
        log(f"memory: {baseline_trials} trials without it")
        baseline = peaks_in_child(baseline_trials, "baseline", leak=True)
        leak = float(np.median(np.diff(baseline[1:])))
        projected = leak * (trials - 2) / baseline[1]
        baseline_cell = (f"{leak / MIB:.0f} MiB/trial over trials 2-{baseline_trials}: {percent(projected)} "
                         f"by trial {trials}")
    ratio = f"{percent(growth(ours))} vs {percent(projected)}" if projected is not None else percent(growth(ours))
    return [Row(f"memory: peak RSS growth, trial 2 -> trial {trials} of a mini_xception search", baseline_cell,
                ours_cell, None, f"growth < {percent(GOAL)}", growth(ours) < GOAL, ratio_text=ratio)]


if __name__ == "__main__":
    if sys.argv[1:2] == ["--peaks"]:
        _child(sys.argv[1:])
    else:
        main(run)
