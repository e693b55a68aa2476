"""The GPU check: DenseNet169's training throughput, the paper's scratch schedule on real faces and a short
search, on whatever Keras backend and device run it, each beside the same figure on our CPU.

    python -m benchmarks.gpu [--quick] [--data DIR] [--budget SECONDS] [--out DIR] [--write FILE]
    python -m benchmarks.gpu --reference          # this CPU's figures, into benchmarks/gpu_reference.json
    python -m benchmarks.gpu --reference --missing  # only the figures that file skipped, labelled with this CPU
    python -m benchmarks.gpu --read gpu.json --write README.md   # the GPU machine's figures, written here

It is made to run on the lent GPU machine (one H100; JAX and PyTorch there, no TensorFlow, no network)
under ``KERAS_BACKEND=jax``, from what ``python -m benchmarks.gpu_pack`` packs (the wheels that machine
lacks and ``../shared/fer2013``'s faces); ``.gpu/run.sh`` is the command. Parts, in order, each one
skipped (and said so) once ``--budget`` seconds are spent, so a slow machine still returns a table:

1. images/s of one DenseNet169 training step (SGD, a resident batch) at batch 64 and 256, float32 and
   mixed bfloat16, compiled (``jit_compile=True``) and not;
2. the paper's scratch schedule with every default (``train``'s code path, the whole training split,
   20 epochs): wall time, epochs, test accuracy against the majority rate;
3. a short search (``SEARCH``: scratch, TPE with median pruning, capped epochs, a share of the
   training split): wall time and the best validation accuracy.

The CPU column is ``benchmarks/gpu_reference.json``: throughput and the short search measured here by
``--reference``, and the schedule's figures read from ``benchmarks.accuracy``'s kept DenseNet169 run (c)
on the same faces. A reference whose budget skipped some figures is completed by ``--reference --missing``,
which measures only those and labels each with the CPU that measured it (``measured_on``; the table says
"(on CPU)" beside such a figure), so a reference measured in parts never passes one machine's figure off
as another's.
Every part also writes what it measured to ``OUT/gpu.json`` as soon as it has it.

A lent machine is had for one call, so the run on it (``GPU_PARTS``) holds its figures to the budget, not the
other way round, and measures what matters most first: the compiled throughput configurations, new ones
started only in the first ``THROUGHPUT_SHARE`` of the budget; the schedule, stopped at the end of the epoch in
which the budget runs out (its row then says how many of its epochs it trained, and the ratio is per epoch);
the search, which starts no trial after it (optuna's timeout; the ratio is per trial where the trial counts
differ); last the configurations with jit off, which under JAX run each operation alone and compile it on its
first call, so their first step is the slowest of all to come (and it is never how the toolkit trains under JAX).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import keras
import numpy as np
import optuna

from benchmarks.common import Row, between, cpu_model, existing_file, faces, log, machine, quiet, sample, scratch_dir
from benchmarks.common import table
from study import backend
from study.config import TrainConfig
from study.data import cache_dir, load_dataset
from study.model import build_model
from study.runs import Run
from study.training import train
from study.tuning.request import SearchRequest
from study.tuning.search import run_search

REFERENCE = Path(__file__).with_name("gpu_reference.json")
START, END = "<!-- benchmarks-gpu:start -->", "<!-- benchmarks-gpu:end -->"
BACKBONE = "densenet169"
BATCHES, PRECISIONS, JITS = (64, 256), ("float32", "mixed_bfloat16"), (True, False)
STEPS = {True: 10, False: 3}  # timed steps after the warm-up (uncompiled ones are slow under JAX: fewer)
SEARCH = {"trials": 6, "max_epochs": 3, "subset": 0.25}
BUDGET = 420.0  # seconds: the run script's 8 minutes, less the unpacking and a margin
THROUGHPUT_SHARE = 0.4  # of the budget on the GPU machine: later throughput configurations leave it to the schedule
# seconds on this CPU before a part is no longer started: the throughput (XLA's compiles of DenseNet169 are slow
# here) takes most of it; the search (about 20 minutes here) starts if it is not spent by then
REFERENCE_BUDGET = 1200.0
QUICK = {"backbone": "mini_xception", "batches": (16,), "steps": {True: 2, False: 1}, "epochs": 1,
         "search": {"trials": 2, "max_epochs": 1, "subset": 0.5}}


def throughput(backbone: str, batch: int, precision: str, jit: bool, steps: int) -> float:
    """Training images/s of one step on a resident batch, after two warm-up steps (the compile)."""
    keras.mixed_precision.set_dtype_policy(precision)
    try:
        keras.utils.set_random_seed(0)
        model = build_model(TrainConfig(backbone=backbone, precision=precision), num_classes=7)
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="categorical_crossentropy", jit_compile=jit)
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (batch, 48, 48, 1)).astype(np.float32)
        y = np.eye(7, dtype=np.float32)[rng.integers(0, 7, batch)]
        for _ in range(2):
            model.train_on_batch(x, y)  # returns a float: the step has finished
        started = time.perf_counter()
        for _ in range(steps):
            model.train_on_batch(x, y)
        return steps * batch / (time.perf_counter() - started)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
        keras.backend.clear_session()


class StopAt(keras.callbacks.Callback):
    """Stops training at the end of the epoch in which ``until`` (a ``time.perf_counter()`` reading) has passed."""

    def __init__(self, until: float | None) -> None:
        super().__init__()
        self.until, self.stopped = until, False

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.until is not None and time.perf_counter() >= self.until:
            self.model.stop_training = self.stopped = True


def schedule(data_path: Path, backbone: str, epochs: int | None, until: float | None = None) -> dict:
    """The paper's scratch schedule with every default (``epochs`` overrides only for --quick), stopped at the
    end of the epoch in which ``until`` passes."""
    data = load_dataset(data_path)
    config = TrainConfig(regime="scratch", backbone=backbone, **({"epochs": epochs} if epochs else {}))
    stop = StopAt(until)
    started = time.perf_counter()
    result = train(config, data, scratch_dir() / "gpu-schedule", callbacks=[stop], evaluate_test=True)
    test, epochs = result.metrics["test"], int(len(result.history))
    return {"seconds": time.perf_counter() - started, "epochs": epochs, "planned_epochs": config.epochs,
            "stopped_at_limit": stop.stopped and epochs < config.epochs,  # not when the last epoch ran late
            "test_accuracy": test["accuracy"], "majority_rate": test["baseline"]["majority_rate"],
            "learned": bool(test["learned"]), "test_faces": int(test["n"]), "fingerprint": data.fingerprint}


def search(data_path: Path, backbone: str, sizes: dict, timeout: float | None = None) -> dict:
    """A short scratch search (TPE, median pruning) of ``sizes``' trials, capped epochs, on a share of train;
    no trial starts after ``timeout`` seconds."""
    folder = scratch_dir() / "gpu-search"
    folder.mkdir(parents=True, exist_ok=True)
    request = SearchRequest(regime="scratch", trials=sizes["trials"], data=str(data_path),
                            base={"backbone": backbone, "subset": sizes["subset"], "seed": 0},
                            max_epochs=sizes["max_epochs"], pruner="median", storage=f"sqlite:///{folder}/studies.db",
                            study="gpu-scratch", runs_dir=str(folder / "runs"), timeout=timeout)
    started = time.perf_counter()
    study = run_search(request)
    finished = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return {**sizes, "seconds": time.perf_counter() - started, "trials": len(study.trials),
            "best": study.best_value if finished else None}


def key(batch: int, precision: str, jit: bool) -> str:
    return f"{batch}/{precision}/{'jit' if jit else 'nojit'}"


def configurations(batches: tuple[int, ...]) -> list[tuple[int, str, bool]]:
    """The throughput configurations, compiled ones first: they are how the toolkit trains under JAX."""
    return [(batch, precision, jit) for jit in JITS for batch in batches for precision in PRECISIONS]


# the parts of the run, in the order measure() runs them: the throughput's configurations compiled and op by op,
# the paper's schedule, the short search
PARTS = ("compiled", "op-by-op", "schedule", "search")
GPU_PARTS = ("compiled", "schedule", "search", "op-by-op")  # on the lent machine: what matters most first
REFERENCE_PARTS = ("compiled", "op-by-op", "search")  # this CPU: the schedule is read from a kept run


def measure(data_path: Path, quick: bool, budget: float, out: Path | None, parts: tuple[str, ...] = PARTS,
            only: frozenset[str] | None = None, throughput_share: float = 1.0, stop_at_budget: bool = False) -> dict:
    """Every part of ``parts``, in that order, within ``budget`` seconds (a part not started in time is recorded as
    skipped); ``only``: just these parts, named as ``skipped`` names them (``"throughput 256/float32/nojit"``,
    ``"search"``). No compiled throughput configuration starts after ``throughput_share`` of the budget; with
    ``stop_at_budget`` the schedule and the search also stop when the budget is spent (at an epoch's, a trial's
    end)."""
    started = time.perf_counter()
    backbone = QUICK["backbone"] if quick else BACKBONE
    found: dict = {"machine": machine(), "backend": backend.describe(), "device": backend.device(),
                   "backbone": backbone, "quick": quick, "throughput": {}, "skipped": []}

    def save() -> None:
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            (out / "gpu.json").write_text(json.dumps(found, indent=1))

    def in_time(what: str, within: float = budget) -> bool:
        if only is not None and what not in only:
            return False
        if time.perf_counter() - started < within:
            return True
        found["skipped"].append(what)
        log(f"gpu: {what} skipped: {within:.0f} s of the budget are spent")
        save()
        return False

    def rates(compiled: bool, within: float) -> None:
        for batch, precision, jit in configurations(QUICK["batches"] if quick else BATCHES):
            name = key(batch, precision, jit)
            if jit == compiled and in_time(f"throughput {name}", within):
                log(f"gpu: throughput {backbone} {name}")
                found["throughput"][name] = throughput(backbone, batch, precision, jit,
                                                       (QUICK["steps"] if quick else STEPS)[jit])
                save()

    sizes = QUICK["search"] if quick else SEARCH
    for part in parts:
        if part in ("compiled", "op-by-op"):
            rates(part == "compiled", throughput_share * budget if part == "compiled" else budget)
        elif part == "schedule" and in_time("schedule"):
            log("gpu: the paper's scratch schedule, every default")
            found["schedule"] = schedule(data_path, backbone, QUICK["epochs"] if quick else None,
                                         until=started + budget if stop_at_budget else None)
            save()
        elif part == "search" and in_time("search"):
            log(f"gpu: a search of {sizes['trials']} trials")
            left = budget - (time.perf_counter() - started)
            found["search"] = search(data_path, backbone, sizes, timeout=max(left, 1.0) if stop_at_budget else None)
            save()
    found["seconds"] = time.perf_counter() - started
    save()
    return found


def rows(found: dict, reference: dict | None) -> list[Row]:
    """This machine's figures beside the CPU's (``reference``), the ratio a speed-up."""
    where = f"{found['backend']['name']} on {found['device']}"
    cpu = reference or {}
    out = []

    def on(what: str) -> str:  # a reference figure measured on another CPU than the reference's says which
        other = cpu.get("measured_on", {}).get(what)
        return f" (on {other['cpu']})" if other else ""

    for name, rate in found["throughput"].items():
        base = cpu.get("throughput", {}).get(name)
        out.append(Row(f"gpu: {found['backbone']} training step, batch/precision/compile {name} ({where})",
                       f"{base:,.0f} img/s{on(f'throughput {name}')}" if base else "not measured",
                       f"{rate:,.0f} img/s", rate / base if base else None))
    for what in found["skipped"]:
        out.append(Row(f"gpu: {what}", "-", "skipped (time budget)", None))
    if "schedule" in found:
        s, base = found["schedule"], cpu.get("schedule")
        epochs = (f"{s['epochs']} of {s['planned_epochs']} epochs (stopped at the time limit), ratio per epoch"
                  if s.get("stopped_at_limit") else _count(s["epochs"], "epoch"))
        out.append(Row(f"gpu: the paper's scratch schedule, every default, {epochs}; test ({s['test_faces']:,} "
                       f"faces; majority rate {s['majority_rate']:.3f}) ({where})",
                       _schedule_text(base) if base else "not measured", _schedule_text(s),
                       _per(base, s, "epochs") if base else None,
                       "-" if found.get("quick") else "learned", None if found.get("quick") else bool(s["learned"])))
    if "search" in found:
        s, base = found["search"], cpu.get("search")
        per_trial = ", ratio per trial" if base and base["trials"] != s["trials"] else ""
        out.append(Row(f"gpu: search, {_count(s['trials'], 'trial')}{per_trial}, <= {_count(s['max_epochs'], 'epoch')}, "
                       f"{s['subset']:.0%} of train, TPE + median pruning ({where})",
                       _search_text(base) + on("search") if base else "not measured",
                       _search_text(s), _per(base, s, "trials") if base else None))
    return out


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _per(base: dict, ours: dict, unit: str) -> float:
    """The speed-up per epoch (per trial): the ratio of the seconds when both ran as many."""
    return (base["seconds"] / base[unit]) / (ours["seconds"] / ours[unit])


def _schedule_text(s: dict) -> str:
    return f"{s['seconds'] / 60:.1f} min, test accuracy {s['test_accuracy']:.3f}"


def _search_text(s: dict) -> str:
    best = "no trial finished" if s["best"] is None else f"best val accuracy {s['best']:.3f}"
    return f"{s['seconds'] / 60:.1f} min, {best}"


# ------------------------------------------------------------------------------------ this CPU
def reference_figures(data_path: Path, quick: bool, budget: float = REFERENCE_BUDGET) -> dict:
    """This CPU's throughput and short search (measured now, the search if the budget leaves time to start it),
    and the schedule from ``benchmarks.accuracy``'s kept run (c): 20 epochs of DenseNet169 take hours here."""
    found = measure(data_path, quick, budget, None, parts=REFERENCE_PARTS)
    kept = _kept_scratch_run()
    if kept is not None:
        test = kept.metrics["test"]
        found["schedule"] = {"seconds": float(kept.manifest["timings_seconds"]["total"]),
                             "epochs": int(len(kept.history)), "test_accuracy": test["accuracy"],
                             "majority_rate": test["baseline"]["majority_rate"], "learned": bool(test["learned"]),
                             "test_faces": int(test["n"]), "fingerprint": kept.manifest["data"]["fingerprint"],
                             "run": str(kept.path)}
    return found


def fill_reference(reference: dict, data_path: Path, budget: float) -> dict:
    """``reference`` with the figures it skipped measured now on this CPU, each labelled with this machine
    (``measured_on``): a reference measured in parts, on two machines, says which figure came from which."""
    missing = frozenset(reference.get("skipped", ()))
    found = measure(data_path, False, budget, None, parts=REFERENCE_PARTS, only=missing)
    filled = dict(reference, throughput={**reference.get("throughput", {}), **found["throughput"]},
                  measured_on=dict(reference.get("measured_on", {})))
    measured = [f"throughput {name}" for name in found["throughput"]] + (["search"] if "search" in found else [])
    if "search" in found:
        filled["search"] = found["search"]
    for what in measured:
        filled["measured_on"][what] = {"cpu": cpu_model(), "machine": found["machine"]}
    filled["skipped"] = [what for what in reference.get("skipped", ()) if what not in measured]
    return filled


def _kept_scratch_run():
    """(c)'s run of ``python -m benchmarks.accuracy --only densenet169-scratch``, if this machine kept one."""
    kept = sorted((cache_dir() / "bench-accuracy").glob("densenet169-scratch-*"))
    return Run.load(kept[-1]) if kept else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="mini_xception, a generated sample, a few steps")
    parser.add_argument("--data", type=Path, help="the real faces (default ../shared/fer2013)")
    parser.add_argument("--budget", type=float, help=f"seconds; parts not started by then are skipped (default "
                        f"{BUDGET:.0f}; with --reference {REFERENCE_BUDGET:.0f})")
    parser.add_argument("--out", type=Path, help="also write gpu.json here, part by part")
    parser.add_argument("--reference", action="store_true", help=f"measure this CPU into {REFERENCE.name}")
    parser.add_argument("--missing", action="store_true",
                        help=f"with --reference: measure only what {REFERENCE.name} skipped, and add it (labelled "
                             "with this machine)")
    parser.add_argument("--read", type=Path, metavar="GPU_JSON",
                        help="measure nothing: the table of a gpu.json another machine wrote (with --write: into FILE)")
    parser.add_argument("--write", type=existing_file, metavar="FILE", help=f"also write the table between {START} and {END}")
    args = parser.parse_args(argv)
    if args.write:
        between(args.write.read_text(), "", START, END)  # a file without the markers fails now, not after the run
    quiet()
    if args.missing and (not args.reference or args.quick or not REFERENCE.is_file()):
        parser.error(f"--missing adds to {REFERENCE.name}: it needs --reference, that file, and no --quick")
    if args.reference:
        data_path = args.data or (sample(per_class=20) if args.quick else faces(False)[0])
        budget = args.budget or REFERENCE_BUDGET
        found = (fill_reference(json.loads(REFERENCE.read_text()), data_path, budget) if args.missing
                 else reference_figures(data_path, args.quick, budget))
        if not args.quick:
            REFERENCE.write_text(json.dumps(found, indent=1) + "\n")
        print(json.dumps(found, indent=1))
        return 0
    if args.read:  # a GPU machine's gpu.json, brought back: its table, written here
        found = json.loads(args.read.read_text())
    else:
        data_path = args.data or (sample(per_class=20) if args.quick else faces(False)[0])
        found = measure(data_path, args.quick, args.budget or BUDGET, args.out, parts=GPU_PARTS,
                        throughput_share=THROUGHPUT_SHARE, stop_at_budget=True)
    reference = json.loads(REFERENCE.read_text()) if REFERENCE.is_file() and not found.get("quick") else None
    wall = f"wall time {found['seconds'] / 60:.1f} min" if "seconds" in found else "stopped before its end"
    output = f"{found['machine']}\nCommand: python -m benchmarks.gpu{' --quick' if found.get('quick') else ''}; " \
             f"{wall}; CPU column: {REFERENCE.name} " \
             f"({(reference or {}).get('machine', 'none')})\n\n{table(rows(found, reference))}"
    print(output, flush=True)
    if args.out and not args.read:
        (args.out / "table.md").write_text(output + "\n")
    if args.write:
        args.write.write_text(between(args.write.read_text(), f"```text\n{output}\n```\n", START, END))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
