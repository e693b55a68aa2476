"""Accuracy on real faces: the default configuration, and a CPU-sized search's best, each beside the
test split's majority-class rate.

    python -m benchmarks.accuracy [--quick] [--write README.md]

(a) ``default``: the default scratch run of mini_xception (``TrainConfig`` as it stands, only
    ``backbone`` and ``epochs`` set) on the whole training split of ``../shared/fer2013``, evaluated
    on its test folder.
(b) ``search``: ``cli.py search``'s path (``study.tuning.search.run_search``): a scratch search of
    mini_xception, ``TRIALS`` trials on a stratified ``SUBSET`` of the training split, each phase
    capped at ``MAX_EPOCHS`` epochs, TPE with median pruning; then ``train --from-study``'s path
    (``study.tuning.final.train_from_study``): the best trial's configuration retrained on the whole
    training split with ``SEEDS`` seeds for ``FINAL_EPOCHS`` epochs, evaluated on test.

Every run is the toolkit's one training path; no figure is typed in. Rows are ratios of accuracy to
the majority rate (a model that answers one class scores 1.00x). With ``--quick`` (the CI smoke
test) the generated sample and a few epochs stand in and the goals are not judged. ``--write FILE``
puts the output between ``<!-- accuracy:start -->`` and ``<!-- accuracy:end -->`` in FILE.
"""
from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from benchmarks.common import Row, faces, log, machine, quiet, sample, scratch_dir, table
from benchmarks.common import between as generic_between
from study.config import TrainConfig
from study.data import load_dataset
from study.training import train
from study.tuning.final import train_from_study
from study.tuning.request import SearchRequest
from study.tuning.search import run_search

START, END = "<!-- accuracy:start -->", "<!-- accuracy:end -->"
DEFAULT_EPOCHS = 12
TRIALS, SUBSET, MAX_EPOCHS = 20, 0.25, 10
SEEDS, FINAL_EPOCHS = 3, 30
GOALS = {"default": 0.50, "search": 0.60}  # test accuracy; (b)'s is the mean over seeds


@dataclass(frozen=True)
class Sizes:
    default_epochs: int
    trials: int
    subset: float
    max_epochs: int
    seeds: int
    final_epochs: int
    judged: bool  # are the goals judged (real faces, full sizes)?


FULL = Sizes(DEFAULT_EPOCHS, TRIALS, SUBSET, MAX_EPOCHS, SEEDS, FINAL_EPOCHS, judged=True)
QUICK = Sizes(1, 2, 0.5, 1, 1, 1, judged=False)


def default_run(data_path: Path, sizes: Sizes) -> Row:
    config = TrainConfig(regime="scratch", backbone="mini_xception", epochs=sizes.default_epochs)
    data = load_dataset(data_path)
    log(f"accuracy (a): the default mini_xception scratch run, {sizes.default_epochs} epochs")
    started = time.perf_counter()
    result = train(config, data, scratch_dir() / "accuracy-default", evaluate_test=True, progress=False)
    test = result.metrics["test"]
    name = (f"accuracy (a): the default scratch run, mini_xception, {sizes.default_epochs} epochs, whole training "
            f"split ({len(data.train.y):,} faces); test ({test['n']:,} faces)")
    goal = GOALS["default"] if sizes.judged else None
    return _row(name, [test], time.perf_counter() - started, goal)


def searched_runs(data_path: Path, sizes: Sizes) -> list[Row]:
    folder = scratch_dir() / "accuracy-search"
    storage = f"sqlite:///{folder}/studies.db"
    folder.mkdir(parents=True, exist_ok=True)
    request = SearchRequest(regime="scratch", trials=sizes.trials, data=str(data_path),
                            base={"backbone": "mini_xception", "subset": sizes.subset, "seed": 0},
                            max_epochs=sizes.max_epochs, pruner="median", storage=storage,
                            study="accuracy-scratch", runs_dir=str(folder / "runs"))
    log(f"accuracy (b): search, {sizes.trials} trials on {sizes.subset:.0%} of train, <= {sizes.max_epochs} epochs")
    started = time.perf_counter()
    study = run_search(request, Console(file=io.StringIO()))
    searched = time.perf_counter() - started
    default_trial = next(t for t in study.trials if t.user_attrs.get("default_config"))
    log(f"accuracy (b): retrain trial {study.best_trial.number} with {sizes.seeds} seed(s), {sizes.final_epochs} epochs")
    started = time.perf_counter()
    results = train_from_study(request.study_name, storage=storage, seeds=sizes.seeds, runs_dir=folder / "runs",
                               overrides={"epochs": sizes.final_epochs}, progress=False)
    final = time.perf_counter() - started
    tests = [r.metrics["test"] for r in results]
    best = study.best_trial
    search_row = Row(f"accuracy (b): the search, {sizes.trials} trials on a {sizes.subset:.0%} subset, <= "
                     f"{sizes.max_epochs} epochs each, TPE + median pruning; val accuracy of its trial 0 (the "
                     f"defaults) and of its best (trial {best.number})",
                     f"trial 0 {default_trial.value:.3f}" if default_trial.value is not None else "trial 0 pruned",
                     f"best {best.value:.3f}, {searched / 60:.1f} min", _ratio(best.value, default_trial.value))
    each = ", ".join(f"{t['accuracy']:.3f}" for t in tests)
    name = (f"accuracy (b): its best configuration retrained, {sizes.seeds} seed(s), {sizes.final_epochs} epochs, "
            f"whole training split; test, mean of the seeds ({each})")
    goal = GOALS["search"] if sizes.judged else None
    return [search_row, _row(name, tests, final, goal)]


def _ratio(value: float | None, reference: float | None) -> float | None:
    return None if not value or not reference else value / reference


def _row(name: str, tests: list[dict], seconds: float, goal: float | None) -> Row:
    """``tests``: each run's test metrics (one split, so one majority rate); a goal is met only when every
    run learned (beat the majority rate)."""
    base = tests[0]["baseline"]
    majority = base["majority_rate"]
    accuracy, f1 = statistics.mean(t["accuracy"] for t in tests), statistics.mean(t["macro_f1"] for t in tests)
    learned = all(t["learned"] for t in tests)
    return Row(name, f"majority rate {majority:.3f} ({base['majority_class']})",
               f"accuracy {accuracy:.3f}, macro-F1 {f1:.3f}, {seconds / 60:.1f} min", accuracy / majority,
               goal=f"accuracy >= {goal:.2f}" if goal is not None else "-",
               met=(accuracy >= goal and learned) if goal is not None else None)



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.accuracy", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the generated sample, a few epochs (CI smoke test)")
    parser.add_argument("--write", type=Path, metavar="FILE", help=f"also write the output between {START} and {END}")
    args = parser.parse_args(argv)
    if args.write:
        between(args.write.read_text(), "")
    quiet()
    path, note = faces(args.quick)
    if args.quick and not note:
        path, note = sample(per_class=30), "generated sample (--quick)"
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()
    rows = [default_run(path, sizes), *searched_runs(path, sizes)]
    command = "python -m benchmarks.accuracy" + (" --quick" if args.quick else "")
    output = "\n".join([machine(), f"Data: {note or path}",
                        f"Command: {command}; wall time {(time.perf_counter() - started) / 60:.1f} min", "",
                        table(rows)])
    print(output, flush=True)
    if args.write:
        args.write.write_text(between(args.write.read_text(), f"```text\n{output}\n```\n"))
    return 0 if all(r.met is not False for r in rows) else 1


def between(text: str, inner: str) -> str:
    return generic_between(text, inner, START, END)


if __name__ == "__main__":
    sys.exit(main())
