"""Trial overhead: the share of a trial spent before its first training step and after its last one.

A trial is one ``study.training.train`` call (what the tuning objective runs, less its bookkeeping).
"Before" runs from the call to the first step, counting the first step's tracing beyond a steady
step; "after" runs from the last step to the return (the last validation, predictions, metrics,
artifacts). The baseline is a study's first trial (nothing yet done once per study), ours a later
trial of the same study, which finds the decoded data, the input tensors and the frozen features
already in memory. A third trial writes no model.keras, as every trial outside a search's best
``--keep-models`` does: its time after the last step and its disk, against the second trial's.
A fourth trial leaves the optimizer's slots and the compiled metrics to Keras's first step, as
before ``study.training.build_training_state``: a ``tf.function`` that creates variables is traced
twice, so the phase's first step traced the model twice (before vs after, the time to each phase's
first step).
"""
from __future__ import annotations

import contextlib
import itertools
import statistics
import time
from collections.abc import Iterator

import keras

from benchmarks.common import Row, backbone_weights, faces, fresh_feature_cache, log, main, percent, sample, scratch_dir
from benchmarks.frozen_features import first
from study.config import TrainConfig
from study.data import Dataset, load_dataset
from study import training
from study.training import train


class Timeline(keras.callbacks.Callback):
    """Start and end of every training batch, grouped by fit (phase)."""

    def __init__(self) -> None:
        super().__init__()
        self.phases: list[list[tuple[float, float]]] = []

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.phases.append([])

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._begin = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.phases[-1].append((self._begin, time.perf_counter()))


def shares(timeline: Timeline, start: float, end: float) -> dict[str, float]:
    """Seconds before the first step, between phases and after the last step, and the trial total."""
    def excess(batches: list[tuple[float, float]]) -> float:
        durations = [b - a for a, b in batches]
        return durations[0] - statistics.median(durations[1:] or durations)

    phases = [p for p in timeline.phases if p]
    before = phases[0][0][0] - start + excess(phases[0])
    between = sum(p[0][0] - q[-1][1] + excess(p) for q, p in itertools.pairwise(phases))
    return {"before": before, "between": between, "after": end - phases[-1][-1][1], "total": end - start}


def timed_trial(config: TrainConfig, data: Dataset, name: str, keep_model: bool = True) -> dict[str, float]:
    """A trial's overhead shares, and the bytes its run directory takes; without ``keep_model`` it
    writes no model.keras, as a search trial outside the best ``--keep-models`` does."""
    timeline = Timeline()
    run_dir = scratch_dir() / "overhead" / name
    start = time.perf_counter()
    train(config, data, run_dir, callbacks=[timeline],
          model_dropped=None if keep_model else (lambda metrics: "not among the best trials"))
    return {**shares(timeline, start, time.perf_counter()),
            "bytes": sum(p.stat().st_size for p in run_dir.iterdir())}


def run(quick: bool) -> list[Row]:
    scratch = load_dataset(sample(per_class=20 if quick else 120))
    cases = [("mini_xception", "scratch", scratch, TrainConfig(backbone="mini_xception", epochs=2))]
    if not quick:
        folder, note = faces(quick)
        transfer = first(load_dataset(folder), 640, 160)
        cases.append(("densenet169", "transfer" + (f", {note}" if note else ""), transfer, TrainConfig(
            regime="transfer", backbone="densenet169", frozen_epochs=2, epochs=1,
            weights=str(backbone_weights("densenet169")), rotation=10.0, zoom=0.1, flip=True,
            frozen_augmentation="none")))
    rows = []
    for backbone, regime, data, config in cases:
        log(f"trial overhead: {backbone} {regime}")
        with fresh_feature_cache():
            cold = timed_trial(config, data, f"{backbone}-1")
            warm = timed_trial(config, data, f"{backbone}-2")
            lean = timed_trial(config, data, f"{backbone}-3", keep_model=False)
            with _state_built_in_first_step():
                before = timed_trial(config, data, f"{backbone}-4")
        label = f"{backbone} {regime} ({len(data.train.y)} images)"
        rows += _rows(label, cold, warm) + _model_rows(label, warm, lean) + _state_rows(label, before, warm)
    return rows


@contextlib.contextmanager
def _state_built_in_first_step() -> Iterator[None]:
    """The training path as it was: Keras creates the optimizer's and metrics' variables while tracing
    the first step (so it traces it twice)."""
    built = training.build_training_state
    training.build_training_state = lambda model, batches: None
    try:
        yield
    finally:
        training.build_training_state = built


def _state_rows(label: str, before: dict[str, float], after: dict[str, float]) -> list[Row]:
    part, text = ("between", "between phases") if after["between"] > 0 else ("before", "start to first step")
    return [Row(f"trial overhead, {text}: {label}; training state built in the first step's trace (before) vs "
                "before it (after: one trace)", f"{before[part]:.1f} s", f"{after[part]:.1f} s",
                before[part] / after[part] if after[part] > 0 else None)]


def _model_rows(label: str, kept: dict[str, float], lean: dict[str, float]) -> list[Row]:
    """What not writing a trial's model (``search --keep-models K``) saves: time after the last step,
    disk per trial, and the disk of a 30-trial study that keeps the best 3 models (reckoned from the
    two measured trials' files: a trial's files do not depend on its hyperparameters' values here)."""
    trials, keep = 30, 3
    study_all, study_kept = trials * kept["bytes"], keep * kept["bytes"] + (trials - keep) * lean["bytes"]
    return [
        Row(f"trial overhead, last step to end: {label}; model.keras written vs not (--keep-models)",
            f"{kept['after']:.1f} s", f"{lean['after']:.1f} s", kept["after"] / lean["after"] if lean["after"] else None),
        Row(f"disk per trial: {label}; with model.keras vs without", megabytes(kept["bytes"]),
            megabytes(lean["bytes"]), kept["bytes"] / lean["bytes"]),
        Row(f"disk of a {trials}-trial study: {label}; --keep-models all vs {keep} (from the trials' measured files)",
            megabytes(study_all), megabytes(study_kept), study_all / study_kept),
    ]


def megabytes(n: float) -> str:
    return f"{n / 1e6:,.1f} MB" if n >= 1e6 else f"{n / 1e3:,.1f} kB"


def _rows(label: str, cold: dict[str, float], warm: dict[str, float]) -> list[Row]:
    def cell(t: dict[str, float], part: str) -> str:
        return f"{t[part]:.1f} s = {percent(t[part] / t['total'])} of {t['total']:.1f} s"

    parts = [("before", "start to first step"), ("after", "last step to end")]
    if cold["between"] > 0:
        parts.insert(1, ("between", "between phases"))
    return [Row(f"trial overhead, {text}: {label}; first trial vs later trial", cell(cold, part), cell(warm, part),
                cold[part] / warm[part] if warm[part] > 0 else None) for part, text in parts]


if __name__ == "__main__":
    main(run)
