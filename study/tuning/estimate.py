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

Every search says the same line as it starts. A probe costs about a trial's fixed time, so a search
does not run one: it **keeps** what it measures. The projection is made from a probe this machine has
kept for the same cost-relevant settings (backbone, regime, batch size, precision, augmentation, the
frozen phase's mode, validation's share, CPU, cores and TensorFlow: ``probe_key``), and when it has
none, from the search's own first finished trial, said as soon as that trial ends and kept for the
next search. ``--estimate`` always probes afresh (and keeps the result). Frozen features computed
once per search (``frozen_augmentation`` "none" or "views") are counted once, not per trial.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import optuna

from search_spaces import Space, defaults_over, from_optuna, pin, to_config
from study import backend
from study.config import TrainConfig
from study.data import Dataset, Split, cache_dir
from study.training import RunResult, schedule, train

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
    shared: float = 0.0  # seconds a search pays once (frozen features), at the probe's images
    source: str = ""  # what measured it, for the line: "a 40 s probe run of the defaults", "trial 0 of S"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"per_image": dict(self.per_image)}


@dataclass(frozen=True)
class SearchEstimate:
    trials: int
    train_images: int
    epochs: Mapping[str, float]  # phase -> mean epochs of a sampled trial (after the cap)
    default_epochs: Mapping[str, int]  # trial 0's, when the search trains the defaults first
    probe: Probe
    pruner: str
    default_trial: bool
    # phase -> mean of a sampled trial's epochs x (its input_size / the probe's)^2: the work of a space that
    # upsamples faces for the backbone (None: every trial at the probe's size, the work is the epochs)
    work: Mapping[str, float] | None = None
    sizes: tuple[int, ...] = ()  # the input sizes the space draws, when it draws more than the probe's

    @property
    def shared(self) -> float:
        """Seconds paid once by the whole search (frozen features), scaled to its training images."""
        return self.probe.shared * self.train_images / self.probe.images

    def trial_seconds(self, epochs: Mapping[str, float]) -> float:
        return self.probe.fixed + sum(self.probe.per_image[p] * self.train_images * n for p, n in epochs.items())

    @property
    def unpruned(self) -> float:
        """Every trial run to its end: what the search costs at most (early stopping aside)."""
        sampled = self.trials - (1 if self.default_trial else 0)
        first = self.trial_seconds(self.default_epochs) if self.default_trial else 0.0
        return self.shared + first + sampled * self.trial_seconds(self._work)

    @property
    def _work(self) -> Mapping[str, float]:
        return self.work or self.epochs

    @property
    def pruned(self) -> float | None:
        """With a pruner: the assumed share of the later trials stopped part way (None without one)."""
        if self.pruner == "none":
            return None
        judged = max(0, self.trials - PRUNER_STARTUP)
        epochs = {p: n * PRUNED_AT for p, n in self._work.items()}
        saved = judged * PRUNED_SHARE * (self.trial_seconds(self._work) - self.trial_seconds(epochs))
        return self.unpruned - saved

    def line(self) -> str:
        phases = ", ".join(f"{p} {n:.1f}" for p, n in self.epochs.items())
        text = (f"estimate: {self.trials} trials on {self.train_images:,} training images, a trial trains on "
                f"average {phases} epochs{self._sizes_note()}; about {_duration(self.trial_seconds(self._work))} a trial "
                f"on this machine "
                f"-> at most {_duration(self.unpruned)} with every trial trained to its end")
        if self.pruned is not None:
            text += (f", about {_duration(self.pruned)} if the {self.pruner} pruner stops half of the trials after "
                     f"the first {PRUNER_STARTUP} halfway (an assumption)")
        source = self.probe.source or f"a {_duration(self.probe.seconds)} probe run of the defaults"
        return text + f" (measured by {source})"

    def _sizes_note(self) -> str:
        if not self.sizes:
            return ""
        shown = ", ".join(f"{s}x{s}" for s in self.sizes)
        return (f", its backbone seeing faces upsampled to {shown} (an epoch at size s counted as (s / the probe's)^2 "
                f"of the probe's: {sum(self._work.values()) / max(sum(self.epochs.values()), 1e-9):.1f}x the work of "
                "its epochs, an assumption)")


@dataclass(frozen=True)
class Plan:
    """What a search will run, as the estimate reads it: the space, the base, the data and the budget."""

    space: Space
    base: Mapping[str, Any]
    data: Dataset
    trials: int
    max_epochs: int | None
    pruner: str  # "none" without one
    default_trial: bool  # trial 0 trains the defaults
    seed: int = 0

    @property
    def defaults(self) -> TrainConfig:
        space = pin(self.space, {k: v for k, v in self.base.items() if k in self.space.names})
        return to_config(space.regime, defaults_over(space, self.base), self.base, max_epochs=self.max_epochs)

    def project(self, probe: Probe) -> SearchEstimate:
        space = pin(self.space, {k: v for k, v in self.base.items() if k in self.space.names})
        configs = sampled_configs(space, self.base, self.max_epochs, self.seed)
        probed = self.defaults.input_size
        sizes = tuple(sorted({c.input_size for c in configs}))
        upsampled = sizes != (probed,)
        return SearchEstimate(self.trials, len(self.data.train.y), _mean_epochs(configs), _phase_epochs(self.defaults),
                              probe, self.pruner, self.default_trial,
                              work=_mean_epochs(configs, probed) if upsampled else None,
                              sizes=sizes if upsampled else ())


def estimate_search(plan: Plan) -> SearchEstimate:
    """Probe this machine with the defaults (and keep the probe), draw the space's epochs, and project
    the search's wall time."""
    defaults = plan.defaults
    probe = measure(defaults, plan.data)
    remember(defaults, plan.data, probe)
    return plan.project(probe)


class Forecast:
    """The estimate line at the start of a search: from a probe this machine kept for these settings,
    else from the search's first finished trial (``trial_finished``), said when it ends and kept."""

    def __init__(self, plan: Plan, say: Callable[[str], None]) -> None:
        self.plan, self.say = plan, say
        self.estimate: SearchEstimate | None = None

    def start(self) -> None:
        kept = recall(self.plan.defaults, self.plan.data)
        if kept is not None:
            self.estimate = self.plan.project(kept)
            self.say(self.estimate.line())
            return
        config = self.plan.defaults
        self.say(f"estimate: this machine has not measured {config.backbone} {config.regime} with these settings; "
                 "the search's first trial measures it and the estimate follows it (an estimate-only search "
                 "probes first)")

    def trial_finished(self, number: int, result: RunResult, study_name: str) -> None:
        if self.estimate is not None:
            return
        probe = probe_of(result, len(self.plan.data.train.y), f"trial {number} of study {study_name}")
        if probe is None or set(probe.per_image) != set(_phase_epochs(self.plan.defaults)):
            return  # stopped before a phase (the stall guard): the next finished trial measures it
        remember(result.config, self.plan.data, probe)
        self.estimate = self.plan.project(probe)
        self.say(self.estimate.line())


def sampled_epochs(space: Space, base: Mapping[str, Any], max_epochs: int | None, seed: int = 0) -> dict[str, float]:
    """Mean epochs per phase of ``EPOCH_SAMPLES`` configurations drawn at random from the space, capped."""
    return _mean_epochs(sampled_configs(space, base, max_epochs, seed))


def sampled_configs(space: Space, base: Mapping[str, Any], max_epochs: int | None, seed: int = 0) -> list[TrainConfig]:
    """``EPOCH_SAMPLES`` configurations drawn at random from the space, capped, as a search would train them."""
    configs: list[TrainConfig] = []

    def draw(trial: optuna.Trial) -> float:
        configs.append(to_config(space.regime, from_optuna(space, trial), base, max_epochs=max_epochs))
        return 0.0

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # "A new study created in memory", once per draw
    try:
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
        study.optimize(draw, n_trials=EPOCH_SAMPLES)
    finally:
        optuna.logging.set_verbosity(verbosity)
    return configs


def _mean_epochs(configs: list[TrainConfig], probed_size: int | None = None) -> dict[str, float]:
    """Mean epochs per phase; with ``probed_size``, each weighted by (its input_size / probed_size)^2."""
    counts: dict[str, list[float]] = {}
    for config in configs:
        scale = (config.input_size / probed_size) ** 2 if probed_size else 1.0
        for phase, epochs in _phase_epochs(config).items():
            counts.setdefault(phase, []).append(epochs * scale)
    return {phase: statistics.fmean(values) for phase, values in counts.items()}


def measure(config: TrainConfig, data: Dataset) -> Probe:
    """Train ``config`` for ``PROBE_EPOCHS`` a phase on proportional slices of train and val, and time it."""
    share = min(1.0, max(PROBE_IMAGES, config.batch_size) / len(data.train.y))
    probe_data = dataclasses.replace(data, train=_head(data.train, share), val=_head(data.val, share))
    probe_config = config.replace(epochs=PROBE_EPOCHS, frozen_epochs=PROBE_EPOCHS, frozen_patience=PROBE_EPOCHS,
                                  stall_epochs=0)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fer-study-probe-") as folder:
        result = train(probe_config, probe_data, Path(folder) / "probe")
    result.seconds = time.perf_counter() - started
    probe = probe_of(result, len(probe_data.train.y))
    assert probe is not None  # the probe trains every phase of its schedule
    return probe


def probe_of(result: RunResult, images: int, source: str = "") -> Probe | None:
    """A finished run's seconds per training image of each phase (a steady epoch: the median after its
    first, which traces the graph), its frozen features' seconds (once per search) and the rest (the
    trial's fixed cost). None for a run that trained no epoch or timed none."""
    history = result.history
    if not {"phase", "seconds"} <= set(getattr(history, "columns", ())) or history["seconds"].isna().any():
        return None
    per_image, steady = {}, 0.0
    for phase in dict.fromkeys(history["phase"]):
        rows = history[history["phase"] == phase]["seconds"].to_numpy()
        epoch = float(np.median(rows[1:])) if len(rows) > 1 else float(rows[0])
        per_image[phase] = epoch / images  # seconds per training image, its share of validation included
        steady += epoch * len(rows)
    if not per_image:
        return None
    shared = float(result.timings.get("features", 0.0))
    return Probe(per_image, max(0.0, result.seconds - steady - shared), images, result.seconds, shared, source)


# ------------------------------------------------------------------------------- kept probes
COST_FIELDS = ("regime", "backbone", "input_size", "batch_size", "precision", "jit", "frozen_augmentation",
               "frozen_feature_views", "feature_cache", "unfreeze", "finetune_batchnorm")


def probe_key(config: TrainConfig, data: Dataset) -> str:
    """What a step's cost depends on, and the machine: probes agree only where all of it does."""
    settings = {name: getattr(config, name) for name in COST_FIELDS}
    settings["augmented"] = bool(config.rotation or config.zoom or config.flip or config.shift or config.brightness
                                 or config.contrast)
    settings["val_per_train"] = round(len(data.val.y) / max(1, len(data.train.y)), 2)
    settings["machine"] = _machine()
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:20]


def probes_dir() -> Path:
    return cache_dir() / "probes"


def remember(config: TrainConfig, data: Dataset, probe: Probe) -> None:
    """Keep a probe for the next search with the same settings on this machine (best effort: a cache)."""
    path = probes_dir() / f"{probe_key(config, data)}.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({**probe.to_dict(), "measured": time.strftime("%Y-%m-%d %H:%M")}))
        tmp.replace(path)
    except OSError:
        pass


def recall(config: TrainConfig, data: Dataset) -> Probe | None:
    """The probe kept for these settings on this machine, if any (a damaged file counts as none)."""
    path = probes_dir() / f"{probe_key(config, data)}.json"
    try:
        kept = json.loads(path.read_text())
        source = kept.get("source") or f"a {_duration(kept['seconds'])} probe run of the defaults"
        return Probe({str(k): float(v) for k, v in kept["per_image"].items()}, float(kept["fixed"]),
                     int(kept["images"]), float(kept["seconds"]), float(kept.get("shared", 0.0)),
                     f"{source}, kept from {kept.get('measured', 'an earlier search')}")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _machine() -> dict[str, Any]:
    return {"cpu": backend.cpu_model(), "cores": os.cpu_count(), "device": backend.device(), "backend": backend.name(),
            backend.name(): backend.version()}


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
