"""Data-efficiency curves: each regime trained on nested fractions of the training split.

Transfer learning is expected to matter most when labelled faces are few; a curve shows where its
advantage ends. ``run_curve(plan)`` trains, for every seed, fraction and regime, one ordinary run
(``study.training.train``, the same code as a trial or a final run) and evaluates it on the same,
whole test split. The design:

* **The pool.** The training split (validation is held out as everywhere else). With a
  ``pretrain_fraction`` F, a stratified F of it (drawn with ``study.pretraining.PRETRAIN_DRAW``, the same for every seed)
  is set aside, one run of the transfer backbone is trained from scratch on it (``pretrain``), and
  that run is the transfer regime's source of weights for every fraction: transfer from *other
  faces*, which can be tried where ImageNet cannot be downloaded. The pool is the rest; no curve run
  ever sees a pretraining face.
* **Nested fractions.** For seed s, the fraction f is a stratified f of the pool drawn with
  ``[s, FRACTION_DRAW]`` (``study.data.stratified_share``): the 5% is inside the 10%, and both
  regimes of one seed train on the same images, so their predictions pair image by image.
* **The store.** A study named after the curve holds the plan (user attribute ``curve``) and the
  finished runs (``curve_runs``), as a search study holds its final runs; ``report`` finds it there.
  Re-running the same command resumes: a run whose directory exists is recorded and skipped (run
  directories appear only whole, and a killed run's staging folder is removed when it is retried).
  A different plan under the same name is refused.
* **Whole budgets.** Curve runs train every epoch they are given (``stall_action="warn"`` unless set):
  at 2% of the data a learner may leave the majority rate late, and a run the stall guard stopped
  would stand in the curve for a model that was never trained. A stall is still flagged.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import optuna

from study import config as config_mod
from study.config import REGIMES, TrainConfig
from study.data import Dataset, load_dataset, stratified_share, with_train
from study.errors import ConfigError, TrialFailed
from study.events import SILENT, Events
from study.model_files import check_weights_source
from study.pretraining import pretraining_indices
from study.runs import Run
from study.store import StorageError, load_existing, open_storage, records, required_best
from study.tracking import Tracking, open_tracking
from study.tracking.callback import run_info, tracked
from study.training import train
from study.experiments.final import best_config
from study.experiments.requests import CurveRequest
from study.tuning.search import quiet_optuna

KIND = records.CURVE_KIND
FRACTION_DRAW = 12  # a seed's nested fractions: stratified_share(pool, f, [seed, FRACTION_DRAW])
PRETRAIN_DIR = "pretrain"


@dataclass(frozen=True)
class CurvePlan:
    """What a curve trains; stored in its study and checked on every resume."""

    name: str
    data: str
    fractions: tuple[float, ...]
    seeds: tuple[int, ...]
    configs: Mapping[str, Mapping[str, Any]]  # regime -> TrainConfig values (seed replaced per run)
    sources: Mapping[str, str]  # regime -> where its configuration came from ("defaults", "study S, trial N")
    runs_dir: str = "runs"
    pretrain_fraction: float = 0.0
    pretrain_config: Mapping[str, Any] | None = None
    fingerprint: str = ""

    @property
    def folder(self) -> Path:
        return Path(self.runs_dir) / self.name

    @property
    def pretrain_dir(self) -> Path:
        return self.folder / PRETRAIN_DIR

    def cells(self) -> list[tuple[int, float, str]]:
        """(seed, fraction, regime) in training order: a seed's fractions, each for both regimes, so
        that an interrupted curve already holds complete, paired seeds."""
        return [(seed, fraction, regime) for seed in self.seeds for fraction in self.fractions for regime in self.configs]

    def run_dir(self, regime: str, fraction: float, seed: int) -> Path:
        return self.folder / f"{regime}-f{fraction:g}-seed{seed}"

    def attrs(self) -> dict[str, Any]:
        values = asdict(self)
        values["fractions"], values["seeds"] = list(self.fractions), list(self.seeds)
        values["configs"] = {k: dict(v) for k, v in self.configs.items()}
        values["sources"] = dict(self.sources)
        values["pretrain_config"] = dict(self.pretrain_config) if self.pretrain_config else None
        return values


@dataclass(frozen=True)
class CurveRun:
    regime: str
    fraction: float
    seed: int
    run_dir: str
    images: int  # training images the run saw

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CurveProgress:
    """What ``run_curve`` did: the runs it trained now and the ones it found done."""

    trained: list[CurveRun] = field(default_factory=list)
    found: list[CurveRun] = field(default_factory=list)
    failed: list[tuple[CurveRun, str]] = field(default_factory=list)  # (run, why); retried by the next call


# ------------------------------------------------------------------------------------- planning
def plan_curve(request: CurveRequest) -> CurvePlan:
    """Each regime's configuration (its study's best with ``from_studies``, else the defaults), with
    ``overrides`` (any TrainConfig key) over it, and ``regime_overrides[regime]`` over that (e.g. scratch
    12 epochs, transfer 6 + 6); the seeds are the configuration's seed, +1, ..."""
    name, data, seeds, regimes = request.name, request.data, request.seeds, request.regimes
    pretrain_fraction, runs_dir = request.pretrain_fraction, request.runs_dir
    fractions = _check_fractions(request.fractions)
    if seeds < 1:
        raise ConfigError(f"«seeds» must be at least 1, got {seeds}")
    if not 0.0 <= pretrain_fraction < 1.0:
        raise ConfigError(f"«pretrain_fraction» must be in [0, 1), got {pretrain_fraction}")
    unknown = [r for r in regimes if r not in REGIMES]
    if unknown or not regimes:
        raise ConfigError(f"«regimes» takes {', '.join(REGIMES)}, got {', '.join(regimes) or 'none'}")
    overrides = {"stall_action": "warn", **dict(request.overrides or {})}
    per_regime = {r: {**overrides, **dict((request.regime_overrides or {}).get(r, {}))} for r in REGIMES}
    for key in ("regime", "subset"):
        if any(key in values for values in per_regime.values()):
            raise ConfigError(f"a curve sets «{key}» itself (per regime, per fraction); leave it out")
    configs, sources = _regime_configs(list(dict.fromkeys(regimes)), per_regime, request.from_studies, request.storage)
    folder = Path(runs_dir) / name
    pretrain = None
    if pretrain_fraction > 0:
        if "transfer" not in configs:
            raise ConfigError("«pretrain_fraction» makes a transfer source: the curve needs the transfer regime")
        pretrain = _pretrain_config(configs, per_regime["scratch"])
        configs["transfer"] = configs["transfer"].replace(weights=str(folder / PRETRAIN_DIR))
    else:
        for config in configs.values():
            check_weights_source(config.weights)
    first = next(iter(configs.values())).seed
    return CurvePlan(name=name, data=str(data), fractions=fractions, seeds=tuple(range(first, first + seeds)),
                     configs={r: config_mod.to_dict(c) for r, c in configs.items()}, sources=sources,
                     runs_dir=str(runs_dir), pretrain_fraction=float(pretrain_fraction),
                     pretrain_config=config_mod.to_dict(pretrain) if pretrain else None)


def _check_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    values = sorted({float(f) for f in fractions})
    bad = [f for f in values if not 0.0 < f <= 1.0]
    if bad or not values:
        raise ConfigError(f"«fractions» must be in (0, 1], got {', '.join(f'{f:g}' for f in fractions) or 'none'}")
    return tuple(values)


def _regime_configs(regimes: list[str], overrides: Mapping[str, Mapping[str, Any]], from_studies: Sequence[str],
                    storage: str | None) -> tuple[dict[str, TrainConfig], dict[str, str]]:
    """Per regime: its study's best (or the defaults) with ``overrides[regime]`` over it."""
    configs: dict[str, TrainConfig] = {}
    sources: dict[str, str] = {}
    if from_studies:
        store = open_storage(storage, create=False) if storage else None
        for study_name in from_studies:
            if store is None:
                raise ConfigError("«from_study» needs a «storage»")
            study = load_existing(study_name, store)
            regime = records.regime(study)
            if regime not in regimes:
                raise ConfigError(f"study {study_name} searched the {regime} regime, which this curve does not train")
            if regime in configs:
                raise ConfigError(f"two {regime} studies given ({sources[regime]} and {study_name}): one per regime")
            best = required_best(study)
            configs[regime] = best_config(study, best, {"subset": 1.0, **overrides[regime]})
            sources[regime] = f"study {study_name}, trial {best.number}"
    for regime in regimes:
        if regime not in configs:
            configs[regime] = config_mod.from_dict({**overrides[regime], "regime": regime})
            sources[regime] = "defaults" + (f" with {_listed(overrides[regime])}" if overrides[regime] else "")
    return {r: configs[r] for r in regimes}, sources


def _listed(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())


def _pretrain_config(configs: Mapping[str, TrainConfig], scratch_overrides: Mapping[str, Any]) -> TrainConfig:
    """The transfer source: the scratch regime's configuration (its study's best, else the defaults)
    trained from random weights with the transfer backbone, on the set-aside faces."""
    transfer = configs["transfer"]
    base = configs.get("scratch") or config_mod.from_dict({**scratch_overrides, "regime": "scratch"})
    return base.replace(regime="scratch", backbone=transfer.backbone, weights="none")


# ------------------------------------------------------------------------------------- training
def run_curve(plan: CurvePlan, storage: str, data: Dataset | None = None, events: Events = SILENT,
              track: Sequence[str] = ()) -> CurveProgress:
    """Train every run of ``plan`` not yet done, recording each in the curve's study as it ends and telling
    ``events`` (one line before each run, then its training); ``track``: the trackers (``study.tracking``)
    that also get every run trained now, in the curve's experiment."""
    dataset = data or load_dataset(plan.data, val_fraction=_val_fraction(plan))
    plan = _with_fingerprint(plan, dataset)
    study = open_curve(plan, open_storage(storage))
    tracking = open_tracking(track, plan.name, runs_dir=plan.runs_dir, say=events.say,
                             tags={"fer_study.kind": KIND, "fer_study.data": plan.data},
                             hparams=("regime", "fraction", "seed", "images", "backbone"),
                             shown=("regime", "fraction", "seed", "images"))
    try:
        return _run_cells(plan, study, dataset, events, tracking)
    finally:
        tracking.close()


def _run_cells(plan: CurvePlan, study: optuna.Study, dataset: Dataset, events: Events,
               tracking: Tracking) -> CurveProgress:
    pool = _pool(plan, dataset)
    done = CurveProgress()
    if plan.pretrain_config:
        _pretrain(plan, study, dataset, pool, events, tracking)
    cells = plan.cells()
    for k, (seed, fraction, regime) in enumerate(cells, start=1):
        run_dir = plan.run_dir(regime, fraction, seed)
        picked = pool[stratified_share(dataset.train.y[pool], fraction, [seed, FRACTION_DRAW])]
        record = CurveRun(regime, fraction, seed, str(run_dir), int(len(picked)))
        if run_dir.exists():
            Run.load(run_dir)  # whole (directories appear only whole), or a clear error naming what is wrong
            done.found.append(record)
        else:
            events.say(f"curve {plan.name} {k}/{len(cells)}: {regime}, {fraction:.0%} of the pool "
                       f"({len(picked):,} images), seed {seed} -> {run_dir}")
            config = config_mod.from_dict({**plan.configs[regime], "seed": seed})
            extra = {"curve": {"name": plan.name, "fraction": fraction, "images": int(len(picked)),
                               "pool": int(len(pool)), "pretrain_fraction": plan.pretrain_fraction}}
            run = run_info(run_dir.name, "curve", config, {"regime": regime, "fraction": fraction, "seed": seed,
                                                           "images": int(len(picked))})
            try:
                tracked(tracking, run, lambda callbacks: train(
                    config, with_train(dataset, picked), run_dir, callbacks=callbacks, evaluate_test=True,
                    events=events, extra_manifest=extra))
            except TrialFailed as exc:  # a NaN loss, out of memory: the curve goes on without this point
                events.warn(f"curve {plan.name}: {regime} at {fraction:g}, seed {seed} failed: {exc}")
                done.failed.append((record, str(exc)))
                _record_failure(study, record, str(exc))
                continue
            done.trained.append(record)
        _record(study, record)
    return done


def open_curve(plan: CurvePlan, storage: optuna.storages.BaseStorage) -> optuna.Study:
    """The curve's study, created, or resumed when it holds the same plan."""
    with quiet_optuna():  # optuna's "Using an existing study" line: the command names the curve
        study = optuna.create_study(storage=storage, study_name=plan.name, load_if_exists=True)
    saved = records.curve_plan(study)
    if saved is None:
        if records.regime(study) or study.trials:
            raise StorageError(f"study {plan.name} is a search, not a curve: choose another «name»")
        records.write_curve_plan(study, plan.attrs())
        return study
    wanted = plan.attrs()
    differs = [k for k in wanted if _normal(saved.get(k)) != _normal(wanted[k])]
    if differs:
        shown = "; ".join(f"{k}: {saved.get(k)!r} there, {wanted[k]!r} here" for k in differs)
        raise StorageError(f"curve {plan.name} was started with other settings ({shown}): rerun it with its "
                           "settings or choose another «name»")
    return study


def curve_runs(study: optuna.Study) -> list[CurveRun]:
    return [CurveRun(**r) for r in records.curve_runs(study)]


def _record(study: optuna.Study, record: CurveRun) -> None:
    records.add_curve_run(study, record.to_dict())


def _record_failure(study: optuna.Study, record: CurveRun, why: str) -> None:
    """A failed run is named in the study (the report says which point is missing, and why)."""
    records.add_curve_failure(study, record.run_dir, why)


def _pretrain(plan: CurvePlan, study: optuna.Study, dataset: Dataset, pool: np.ndarray, events: Events,
              tracking: Tracking) -> None:
    run_dir = plan.pretrain_dir
    if not run_dir.exists():
        held = _pretrain_indices(plan, dataset)
        events.say(f"curve {plan.name}: pretraining the transfer source ({plan.pretrain_config['backbone']}, from "
                   f"scratch) on {len(held):,} faces set aside from the training split ({plan.pretrain_fraction:.0%}); "
                   f"the curve draws from the other {len(pool):,} -> {run_dir}")
        config = config_mod.from_dict(dict(plan.pretrain_config or {}))
        extra = {"curve": {"name": plan.name, "pretraining": True, "images": int(len(held)),
                           "pretrain_fraction": plan.pretrain_fraction}}
        run = run_info(run_dir.name, "pretrain", config, {"backbone": config.backbone, "images": int(len(held))})
        tracked(tracking, run, lambda callbacks: train(config, with_train(dataset, held), run_dir, callbacks=callbacks,
                                                       evaluate_test=False, events=events, extra_manifest=extra))
    else:
        Run.load(run_dir)
    records.set_curve_pretrain(study, str(run_dir))


def _pretrain_indices(plan: CurvePlan, dataset: Dataset) -> np.ndarray:
    return pretraining_indices(dataset, plan.pretrain_fraction)


def _pool(plan: CurvePlan, dataset: Dataset) -> np.ndarray:
    """Indices of the training split the curve draws from: all of it, or all but the pretraining faces."""
    everything = np.arange(len(dataset.train.y))
    if not plan.pretrain_config:
        return everything
    return np.setdiff1d(everything, _pretrain_indices(plan, dataset))


def _val_fraction(plan: CurvePlan) -> float:
    fractions = {c["val_fraction"] for c in plan.configs.values()}
    if len(fractions) > 1:
        raise ConfigError("the regimes' «val_fraction» differ: a curve evaluates every run on one validation split")
    return fractions.pop()


def _with_fingerprint(plan: CurvePlan, dataset: Dataset) -> CurvePlan:
    return replace(plan, fingerprint=dataset.fingerprint)


def _normal(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normal(v) for v in value]
    return value

