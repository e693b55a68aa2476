"""A study's trials as tracked runs (``study.tracking``): their names, and a resumed study's catch-up.

A trial is the run ``trial-<number>`` of the experiment named after its study; its parameters are
its sampled values. ``catch_up`` runs when a search starts: every finished trial the trackers lack
(it ran untracked, or its tracker failed) is given to them from the store (its parameters, state,
value, validation results, reason of failure, and its epochs from history.csv when its run directory
exists, else the pruner's per-epoch values), and a trial a tracker still shows running (its process
died) is ended as the store ended it. A trial either tracker already holds to its end is left alone:
a resumed study adds to the same experiment, without duplicates.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator, Mapping

import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from search_spaces import space_for
from study.store import Objectives, records
from study.store.records import StudyKey
from study.tracking import Outcome, RunInfo, Tracking, open_tracking
from study.tuning.callbacks import MONITORS
from study.tuning.optuna_backend import WORKER_ENV, was_surplus

_ENDED = {TrialState.COMPLETE: "COMPLETE", TrialState.PRUNED: "PRUNED", TrialState.FAIL: "FAIL"}


def trial_key(number: int) -> str:
    return f"trial-{number}"


def trial_run(number: int, params: Mapping[str, Any], config: Mapping[str, Any] | None = None,
              started: float | None = None) -> RunInfo:
    extra = {} if started is None else {"started": started}
    return RunInfo(trial_key(number), "trial", dict(params), dict(config or {}), number, **extra)


def study_tracking(names: tuple[str, ...] | list[str], study: optuna.Study, runs_dir: str | Path,
                   say: Any = None) -> Tracking:
    """The trackers of a study's experiment, tagged with what the study searches."""
    attrs = records.search_attrs(study)
    tags = {"fer_study.kind": records.CURVE_KIND if records.is_curve(study) else "search",
            "fer_study.study": study.study_name,
            **{f"fer_study.{k}": attrs[k] for k in (StudyKey.REGIME, StudyKey.BACKEND, StudyKey.OBJECTIVE,
                                                    StudyKey.DIRECTION, StudyKey.DATA) if k in attrs}}
    regime = records.regime(study)
    hparams = [*(space_for(regime).names if regime else ()), "seed"]  # a final run's seed too
    shown = ("optimizer", "learning_rate", "frozen_learning_rate" if regime == "transfer" else "l2", "batch_size")
    return open_tracking(names, study.study_name, runs_dir=runs_dir, say=say, tags=tags, hparams=hparams, shown=shown)


def catch_up(tracking: Tracking, study: optuna.Study) -> int:
    """Give the trackers the finished trials they lack; returns how many trials some tracker was told.
    Only one process of a local pool does it (the first), so its workers do not add a trial twice."""
    if not tracking or os.environ.get(WORKER_ENV, "0") != "0":
        return 0
    told = 0
    for trial in study.get_trials(deepcopy=False, states=tuple(_ENDED)):
        if was_surplus(trial):
            continue  # never ran: it lost the race for the study's last slot
        if tracking.replay(_run(trial), _epochs(trial, study), _outcome(trial, study)):
            told += 1
    return told


def _run(trial: FrozenTrial) -> RunInfo:
    started = trial.datetime_start.timestamp() if trial.datetime_start else None
    return trial_run(trial.number, trial.params, _config(trial), started)


def _config(trial: FrozenTrial) -> dict[str, Any]:
    run_dir = records.run_dir(trial)
    path = Path(run_dir) / "config.json" if run_dir else None
    if path is not None and path.is_file():
        return json.loads(path.read_text())
    return {}


def _outcome(trial: FrozenTrial, study: optuna.Study) -> Outcome:
    state = _ENDED[trial.state]
    metrics: dict[str, float] = {}
    if trial.state == TrialState.COMPLETE and trial.values:  # an edge study's trial has two: metric, cost
        metrics["objective"] = float(trial.values[0])
        cost = Objectives.parse(records.objective(study)).cost if len(trial.values) > 1 else None
        if cost is not None:
            metrics[f"cost_{cost}"] = float(trial.values[1])
        val = records.val_metrics(trial)
        metrics.update({f"val_{k}": float(val[k]) for k in ("accuracy", "loss", "macro_f1") if k in val})
    ended = trial.datetime_complete.timestamp() if trial.datetime_complete else None
    epochs = records.epochs(trial)
    if epochs is None and trial.intermediate_values:
        epochs = max(trial.intermediate_values) + 1
    return Outcome(state, metrics, epochs, records.error(trial) if state == "FAIL" else None,
                   records.run_dir(trial) if state == "COMPLETE" else None,
                   **({"ended": ended} if ended else {}))


def _epochs(trial: FrozenTrial, study: optuna.Study) -> Iterator[tuple[int, str | None, dict[str, Any]]]:
    """The trial's epochs: history.csv's rows when its run directory is there, else what the pruner
    was told (the objective's per-epoch validation metric, at optuna's step + 1)."""
    run_dir = records.run_dir(trial)
    history = Path(run_dir) / "history.csv" if run_dir else None
    if history is not None and history.is_file():
        for row in pd.read_csv(history).to_dict("records"):
            yield int(row["epoch"]), row.get("phase"), row
        return
    monitor = MONITORS.get(records.objective(study), "val_accuracy")
    for step, value in sorted(trial.intermediate_values.items()):
        yield step + 1, None, {monitor: value}
