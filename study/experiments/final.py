"""Final training: the best trial's configuration, retrained once per seed and evaluated on test.

The configuration is rebuilt from the stored trial exactly as the search trained it (the dict
adapter over the study's base config, with the study's epoch cap), except for one key: final runs
train on the whole training split (``subset=1``), since a search on a subset (a ``subset`` in its base) is a cheap
proxy, not the model to confirm. ``overrides`` changes keys on purpose (e.g. ``{"epochs": 20}``
after a search capped at 2 epochs, or ``{"subset": 0.25}`` to keep the search's share).

Validation: final runs retrain on the same training split with the same validation share held out
as the search used ("holdout"). The transfer regime's frozen phase stops
early on validation loss; merging validation into training would leave that stop with no honest
data to read, and would make the final runs differ from the trials they are meant to confirm. The
choice is recorded in each run's manifest and in the study (``final_training``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import optuna
from optuna.study import StudyDirection
from optuna.trial import TrialState

from search_spaces import to_config
from study.config import TrainConfig
from study.data import Dataset, load_dataset, training_share
from study.errors import ConfigError, DataError
from study.events import SILENT, Events
from study.experiments.requests import FINAL
from study.runs import RunError
from study.store import DEFAULT_STORAGE, epoch_cap, load_existing, named_trial, open_storage, records, required_best
from study.tracking.callback import run_info, tracked
from study.training import RunResult, train
from study.tuning.tracked_trials import study_tracking

VALIDATION = "holdout"  # recorded with every final run: validation held out as in the search


def train_from_study(
    study_name: str,
    storage: str = DEFAULT_STORAGE,
    seeds: int | Sequence[int] = FINAL["seeds"],
    data: str | None = None,
    runs_dir: str | Path = "runs",
    overrides: Mapping[str, Any] | None = None,
    events: Events = SILENT,
    track: Sequence[str] = (),
    top: int = FINAL["top"],
    trial: int | None = None,
) -> list[RunResult]:
    """Retrain the study's best trial with each seed into ``runs/<study>/final-seed<k>``; returns RunResults.

    ``seeds``: a count N (the study's seed, +1, ... +N-1) or the seeds themselves. ``events`` hears
    one line before each run (which seed, how much of the training split, where), then the run's training. ``track``: the
    trackers (``study.tracking``) that also get each final run, in the study's experiment.
    ``top`` K > 1: the K best complete trials instead (the best first), each retrained with the seeds into
    ``runs/<study>/top-trial<n>-seed<k>`` and recorded as the study's top runs (an ensemble's members, the way
    the FER2013 records are made), not as its final runs.
    ``trial`` N: that trial instead of the best, into ``runs/<study>/final-trial<n>-seed<k>`` (a point of a
    multi-objective study's Pareto front: such a study has no single best).
    """
    if trial is not None and top != 1:
        raise ConfigError(f"«trial» {trial} names one trial and «top» {top} the best {top}: give one of them")
    study = load_existing(study_name, open_storage(storage, create=False))  # no empty store as a side effect
    plan = _plan(study, top, seeds, overrides, Path(runs_dir) / study_name, trial)
    datasets = _datasets(study, data, plan)  # before any training: a wrong dataset is refused at once
    kind = "final run" if top == 1 else f"top-{top} run"
    results = []
    tracking = study_tracking(track, study, runs_dir, events.say)
    try:
        for k, (trial, config, run_dir) in enumerate(plan, start=1):
            dataset = datasets[(config.val_fraction, config.subset)]
            events.say(f"{'seed' if top == 1 else 'run'} {k}/{len(plan)}: {kind} of study {study_name} (trial "
                       f"{trial.number}) with seed {config.seed}, "
                       f"{training_share(config.subset, len(dataset.train.y))} -> {run_dir}")
            run = run_info(run_dir.name, "final", config, {**trial.params, "seed": config.seed}, trial.number)
            extra = {"study": study_name, "trial": trial.number,
                     "final_training": {"use_validation": VALIDATION,
                                        "search_subset": records.base(study).get("subset", 1.0),
                                        **({"top": top} if top > 1 else {})}}
            results.append(tracked(tracking, run, lambda callbacks: train(
                config, dataset, run_dir, callbacks=callbacks, evaluate_test=True, events=events,
                extra_manifest=extra)))
            if top == 1:
                _link(study, run_dir, trial.number)
            else:
                records.add_top_run(study, str(run_dir))
    finally:
        tracking.close()
    return results


def _plan(study: optuna.Study, top: int, seeds: int | Sequence[int], overrides: Mapping[str, Any] | None,
          folder: Path, named: int | None = None) -> list[tuple[optuna.trial.FrozenTrial, TrainConfig, Path]]:
    """(trial, its configuration with one seed, run directory) for every run, each directory checked free."""
    plan = []
    trials = [named_trial(study, named)] if named is not None else ranked_trials(study, top)
    for trial in trials:
        config = best_config(study, trial, {"subset": 1.0, **(overrides or {})})
        for seed in _seeds(seeds, config.seed):
            if named is not None:
                name = f"final-trial{trial.number}-seed{seed}"
            else:
                name = f"final-seed{seed}" if top == 1 else f"top-trial{trial.number}-seed{seed}"
            plan.append((trial, config.replace(seed=seed), folder / name))
    _free_run_dirs([run_dir for _, _, run_dir in plan])
    return plan


def _datasets(study: optuna.Study, data: str | None, plan: Sequence[tuple[Any, TrainConfig, Path]]
              ) -> dict[tuple[float, float], Dataset]:
    """The study's data as each planned configuration splits it (one load per validation share and subset)."""
    loaded: dict[tuple[float, float], Dataset] = {}
    for _, config, _ in plan:
        key = (config.val_fraction, config.subset)
        if key not in loaded:
            loaded[key] = _load(study, data, config)
    return loaded


def ranked_trials(study: optuna.Study, top: int = 1) -> list[optuna.trial.FrozenTrial]:
    """The study's best trial, then the next best complete ones (ties: the earlier trial), ``top`` in all."""
    if top < 1:
        raise ConfigError(f"«top» must be at least 1, got {top}")
    best = required_best(study)
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.number != best.number]
    sign = -1.0 if study.direction == StudyDirection.MAXIMIZE else 1.0
    ranked = [best, *sorted(complete, key=lambda t: (sign * t.value, t.number))]
    if top > len(ranked):
        raise ConfigError(f"«top» {top} asks for more trials than study {study.study_name} has complete "
                          f"({len(ranked)})")
    return ranked[:top]


def best_config(study: optuna.Study, trial: optuna.trial.FrozenTrial,
                overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """The configuration ``trial`` trained: its params over the study's base config, epochs capped
    by the study's epoch cap and, for keras-tuner's Hyperband, by the trial's budget."""
    config = to_config(records.regime(study), trial.params, records.base(study), max_epochs=epoch_cap(study, trial))
    return config.replace(**overrides) if overrides else config


def _seeds(seeds: int | Sequence[int], first: int) -> list[int]:
    if isinstance(seeds, int):
        if seeds < 1:
            raise ConfigError(f"«seeds» must be at least 1, got {seeds}")
        return list(range(first, first + seeds))
    return [int(s) for s in seeds]


def _free_run_dirs(dirs: list[Path]) -> list[Path]:
    """Checked before any training, so a second call does not fail after an hour of the first seed."""
    taken = [str(d) for d in dirs if d.exists()]
    if taken:
        raise RunError(f"run(s) already exist: {', '.join(taken)}; remove them or pass other seeds")
    return dirs


def _load(study: optuna.Study, data: str | None, config: TrainConfig) -> Dataset:
    """The study's data (or ``data``), split as the search split it; other data is refused."""
    path = data or records.data(study)
    dataset = load_dataset(path, val_fraction=config.val_fraction, subset=config.subset)
    if dataset.fingerprint != records.fingerprint(study):
        raise DataError(
            f"{path} is not the data study {study.study_name} searched "
            f"(fingerprint {dataset.fingerprint}, study {records.fingerprint(study)})"
        )
    return dataset


def _link(study: optuna.Study, run_dir: Path, trial: int) -> None:
    """The study lists its final runs (each run's manifest names the study)."""
    records.add_final_run(study, str(run_dir), {"use_validation": VALIDATION, "trial": trial})
