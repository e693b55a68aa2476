"""What a search will cost on this machine, said before it starts (``search --estimate``).

The estimate is measured, not modelled: a **probe** trains the study's trial 0 (the defaults over the
base) with the real ``train()`` for ``PROBE_EPOCHS`` epochs a phase, on a slice of the training and
validation splits of the same proportions (``PROBE_IMAGES`` training images; a whole batch at least).
Its steady epochs (the first of each phase traces the graph) give each phase's seconds per training
image, validation included; the rest of the probe run (building, tracing, evaluating, writing) is a
trial's fixed cost. The epochs come from the space: ``EPOCH_SAMPLES`` configurations drawn as the
random sampler draws them, each capped by ``--max-epochs``; a new study's trial 0 trains the
defaults. Pruning only shortens trials, so the projection is an upper bound with every trial run to
its end; with a pruner, a second figure assumes it stops half of the trials after its start-up
trials at half their epochs (an assumption, said as one). Early stopping in the frozen phase can
only make trials shorter too.
"""
from __future__ import annotations

import dataclasses
import math
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import optuna

from search_spaces import Space, from_optuna, pin, to_config
from study.config import TrainConfig
from study.data import Dataset, Split
from study.training import schedule, train

PROBE_IMAGES = 1024  # training images a probe epoch sees (validation scaled alike): seconds on a CPU
PROBE_EPOCHS = 2  # per phase: the first traces the graph, the second is the steady one
EPOCH_SAMPLES = 200
PRUNED_SHARE, PRUNED_AT = 0.5, 0.5  # with a pruner: half of the trials after its start-up ones, at half their epochs
PRUNER_STARTUP = 5  # the median pruner judges no trial before 5 have finished (optuna_backend.PRUNERS)


@dataclass(frozen=True)
class Probe:
    """Seconds per training image of each phase (its validation pass included) and a trial's fixed cost."""

    per_image: Mapping[str, float]  # phase -> seconds per training image per epoch, at the probe's proportions
    fixed: float  # seconds of a trial outside its steady epochs: build, trace, evaluate, write
    images: int  # training images of the probe
    seconds: float  # the probe's own wall time


@dataclass(frozen=True)
class SearchEstimate:
    trials: int
    train_images: int
    epochs: Mapping[str, float]  # phase -> mean epochs of a sampled trial (after the cap)
    default_epochs: Mapping[str, int]  # trial 0's, when the search trains the defaults first
    probe: Probe
    pruner: str
    default_trial: bool

    def trial_seconds(self, epochs: Mapping[str, float]) -> float:
        return self.probe.fixed + sum(self.probe.per_image[p] * self.train_images * n for p, n in epochs.items())

    @property
    def unpruned(self) -> float:
        """Every trial run to its end: what the search costs at most (early stopping aside)."""
        sampled = self.trials - (1 if self.default_trial else 0)
        first = self.trial_seconds(self.default_epochs) if self.default_trial else 0.0
        return first + sampled * self.trial_seconds(self.epochs)

    @property
    def pruned(self) -> float | None:
        """With a pruner: the assumed share of the later trials stopped part way (None without one)."""
        if self.pruner == "none":
            return None
        judged = max(0, self.trials - PRUNER_STARTUP)
        epochs = {p: n * PRUNED_AT for p, n in self.epochs.items()}
        saved = judged * PRUNED_SHARE * (self.trial_seconds(self.epochs) - self.trial_seconds(epochs))
        return self.unpruned - saved

    def line(self) -> str:
        phases = ", ".join(f"{p} {n:.1f}" for p, n in self.epochs.items())
        text = (f"estimate: {self.trials} trials on {self.train_images:,} training images, a trial trains on "
                f"average {phases} epochs; about {_duration(self.trial_seconds(self.epochs))} a trial on this machine "
                f"-> at most {_duration(self.unpruned)} with every trial trained to its end")
        if self.pruned is not None:
            text += (f", about {_duration(self.pruned)} if the {self.pruner} pruner stops half of the trials after "
                     f"the first {PRUNER_STARTUP} halfway (an assumption)")
        return text + f" (measured by a {_duration(self.probe.seconds)} probe run of the defaults)"


def estimate_search(space: Space, base: Mapping[str, Any], data: Dataset, trials: int, max_epochs: int | None,
                    pruner: str, default_trial: bool, seed: int = 0) -> SearchEstimate:
    """Probe this machine with the defaults, draw the space's epochs, and project the search's wall time."""
    space = pin(space, {k: v for k, v in base.items() if k in space.names})
    defaults = to_config(space.regime, space.defaults(), base, max_epochs=max_epochs)
    probe = measure(defaults, data)
    return SearchEstimate(trials, len(data.train.y), sampled_epochs(space, base, max_epochs, seed),
                          _phase_epochs(defaults), probe, pruner, default_trial)


def sampled_epochs(space: Space, base: Mapping[str, Any], max_epochs: int | None, seed: int = 0) -> dict[str, float]:
    """Mean epochs per phase of ``EPOCH_SAMPLES`` configurations drawn at random from the space, capped."""
    counts: dict[str, list[int]] = {}

    def draw(trial: optuna.Trial) -> float:
        config = to_config(space.regime, from_optuna(space, trial), base, max_epochs=max_epochs)
        for phase, epochs in _phase_epochs(config).items():
            counts.setdefault(phase, []).append(epochs)
        return 0.0

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # "A new study created in memory", once per draw
    try:
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
        study.optimize(draw, n_trials=EPOCH_SAMPLES)
    finally:
        optuna.logging.set_verbosity(verbosity)
    return {phase: statistics.fmean(values) for phase, values in counts.items()}


def measure(config: TrainConfig, data: Dataset) -> Probe:
    """Train ``config`` for ``PROBE_EPOCHS`` a phase on proportional slices of train and val, and time it."""
    share = min(1.0, max(PROBE_IMAGES, config.batch_size) / len(data.train.y))
    probe_data = dataclasses.replace(data, train=_head(data.train, share), val=_head(data.val, share))
    probe_config = config.replace(epochs=PROBE_EPOCHS, frozen_epochs=PROBE_EPOCHS, frozen_patience=PROBE_EPOCHS,
                                  stall_epochs=0)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fer-study-probe-") as folder:
        result = train(probe_config, probe_data, Path(folder) / "probe", progress=False)
    seconds = time.perf_counter() - started
    history = result.history
    per_image, steady = {}, 0.0
    for phase in [p.name for p in schedule(probe_config)]:
        rows = history[history["phase"] == phase]["seconds"].to_numpy()
        if len(rows) == 0:
            continue
        epoch = float(np.median(rows[1:])) if len(rows) > 1 else float(rows[0])
        per_image[phase] = epoch / len(probe_data.train.y)  # seconds per training image, its share of val included
        steady += epoch * len(rows)
    return Probe(per_image, max(0.0, seconds - steady), len(probe_data.train.y), seconds)


def _head(split: Split, share: float) -> Split:
    """The first ``share`` of a split (splits come seeded-shuffled, so any head has every class)."""
    n = max(1, math.ceil(len(split.y) * share))
    return Split(split.x[:n], split.y[:n])


def _phase_epochs(config: TrainConfig) -> dict[str, int]:
    return {phase.name: phase.epochs for phase in schedule(config)}


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
