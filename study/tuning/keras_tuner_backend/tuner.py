"""The keras-tuner backend's search: its oracles over the same search space (names in ``TUNERS``).

keras-tuner's three roles, with ours filled in: the oracle proposes values (keras-tuner's own),
``SpaceHyperModel.build`` reads them through the space's keras-tuner adapter (declaring
``hp.Choice/Int/Float/Fixed`` with the paper's defaults) and ``SpaceHyperModel.fit`` trains them with
the same ``Objective`` -- so the same ``study.training.train`` -- as the optuna backend.

Every keras-tuner trial is an optuna trial of the study too: ``fit`` asks the study for a trial whose
parameters are pinned to keras-tuner's values (``PartialFixedSampler``), runs the objective on it and
tells the result, so the trial has its number (and run directory ``runs/<study>/trial-<number>``)
while it runs, shows as RUNNING in the store, and a killed one is failed on resume like any other.
keras-tuner's own project (oracle state, for resuming its Bayesian model or Hyperband brackets)
lives in ``runs/<study>/keras_tuner/<tuner>``.

Hyperband: keras-tuner gives each trial a budget ``tuner/epochs`` (up to ``max_epochs`` = the
longest phase after the search's epoch cap). A trial trains each phase for at most that many epochs, from
fresh weights: a later round does not continue the previous round's checkpoint, so every trial is a
complete, independent run of the one training path (rounds cost a little more than keras-tuner's
warm start). The search's ``trials`` caps the total number of trials across brackets.
"""
from __future__ import annotations

import contextlib
import io
import time
import warnings
from pathlib import Path
from typing import Any

import keras_tuner as kt
import optuna
from keras_tuner.engine.base_tuner import BaseTuner
from keras_tuner.src import config as kt_config

from search_spaces import Space, distributions, from_keras_tuner
from study.errors import ConfigError, TrialFailed, UserError
from study.store import FINISHED, last_failure, records
from study.events import SearchEvents
from study.tuning.keras_tuner_backend import TUNERS
from study.tuning.objective import Objective


class _UserErrorStop(kt.errors.FatalError):
    """Carries a UserError through keras-tuner, which would otherwise only fail the trial."""

    def __init__(self, error: UserError) -> None:
        super().__init__(str(error))
        self.error = error


class _Done(Exception):
    """Raised before a new trial when the study is full or time is up; ends ``tuner.search``."""


class SpaceHyperModel(kt.HyperModel):
    """Builds no model: ``build`` reads the space's values, ``fit`` trains them through the objective."""

    def __init__(self, space: Space, study: optuna.Study, objective: Objective, events: SearchEvents) -> None:
        super().__init__(name=f"{space.regime}_space")
        self.space, self.study, self.objective, self.events = space, study, objective, events
        self.sampler = study.sampler

    def build(self, hp: kt.HyperParameters) -> dict[str, Any]:
        return from_keras_tuner(self.space, hp)

    def fit(self, hp: kt.HyperParameters, values: dict[str, Any], *args: Any, **kwargs: Any) -> float:
        trial = self._ask(values)
        budget = {k: v for k, v in hp.values.items() if k.startswith("tuner/")}
        if budget:
            records.set_keras_tuner_budget(trial, budget)  # Hyperband's bracket, round and epochs
        try:
            value = self.objective.evaluate(trial, hp.values.get("tuner/epochs"))
        except BaseException as exc:
            self._tell(trial, state=optuna.trial.TrialState.FAIL)
            mapped = _for_keras_tuner(exc)
            if mapped is exc:
                raise
            raise mapped from exc
        self._tell(trial, values=value)
        return value

    def _ask(self, values: dict[str, Any]) -> optuna.Trial:
        """A new optuna trial whose parameters are keras-tuner's (active) values, suggested at once."""
        searched = distributions(self.space, values)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.study.sampler = optuna.samplers.PartialFixedSampler({k: values[k] for k in searched}, self.sampler)
        try:
            return self.study.ask(fixed_distributions=searched)
        finally:
            self.study.sampler = self.sampler

    def _tell(self, trial: optuna.Trial, **result: Any) -> None:
        frozen = self.study.tell(trial, **result)
        self.events.trial_finished(self.study, frozen)


def _for_keras_tuner(exc: BaseException) -> BaseException:
    """keras-tuner's consequences: FatalError stops the search, FailedTrialError fails one trial."""
    if isinstance(exc, UserError):
        return _UserErrorStop(exc)
    if isinstance(exc, TrialFailed):
        return kt.errors.FailedTrialError(str(exc))
    return exc


class TrainTuner(BaseTuner):
    """The thin pairing of an oracle with our hypermodel; ``run_trial`` returns the objective."""

    def __init__(self, *args: Any, total: int, deadline: float | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.total, self.deadline = total, deadline

    def run_trial(self, trial: kt.engine.trial.Trial, *args: Any, **kwargs: Any) -> dict[str, float]:
        hp = trial.hyperparameters
        value = self.hypermodel.fit(hp, self.hypermodel.build(hp))
        return {self.oracle.objective.name: value}

    def pre_create_trial(self) -> None:
        """Stop at the study's total (other workers count too) or at the search's timeout."""
        study = self.hypermodel.study
        if len(study.get_trials(deepcopy=False, states=FINISHED)) >= self.total:
            raise _Done()
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise _Done()


def make_oracle(name: str, metric: str, direction: str, *, max_epochs: int, seed: int | None,
                failures: int) -> kt.Oracle:
    """``failures``: failed trials in a row after which the search stops, as the optuna backend does.
    ``seed`` 0 is a seed like any other: keras-tuner takes a false one for none (``seed or
    random.randint(1, 10000)``), so it is given ``seed + 1``."""
    if name not in TUNERS:
        raise ConfigError(f"«tuner» must be one of {', '.join(TUNERS)}, got {name!r}")
    objective = kt.Objective(f"val_{metric}", "max" if direction == "maximize" else "min")
    common = {"objective": objective, "seed": None if seed is None else seed + 1, "max_consecutive_failed_trials": failures}
    oracle = getattr(kt.oracles, TUNERS[name])
    if name == "hyperband":
        return oracle(max_epochs=max(max_epochs, 1), factor=3, hyperband_iterations=None, **common)
    return oracle(max_trials=None, **common)


def run(study: optuna.Study, objective: Objective, oracle: kt.Oracle, *, tuner_name: str, trials: int,
        total: int, timeout: float | None, events: SearchEvents) -> str | None:
    """Run keras-tuner trials until ``trials`` more have finished, resuming keras-tuner's own project
    when there is one; returns why it stopped short (None when the study is full)."""
    kt_config.DEBUG = False  # else every failed trial prints its traceback; the study records it (error, traceback)
    hypermodel = SpaceHyperModel(objective.space, study, objective, events)
    deadline = None if timeout is None else time.monotonic() + timeout
    directory = str(Path(objective.runs_dir) / study.study_name / "keras_tuner")
    with contextlib.redirect_stdout(io.StringIO()):  # "Reloading Tuner from ..." would tear the live table
        tuner = TrainTuner(oracle, hypermodel, directory=directory, project_name=tuner_name, overwrite=False,
                           total=total, deadline=deadline)
    # A trial a dead or interrupted process left behind is already FAIL in the study; keras-tuner
    # would re-run it on reload, one trial more than the search asks for.
    tuner.oracle._retry_queue.clear()
    # Failed trials do not count: each finished one may follow up to max_consecutive_failed_trials - 1
    # failed ones; pre_create_trial stops at the study's total.
    tuner.oracle.max_trials = len(tuner.oracle.trials) + trials * oracle.max_consecutive_failed_trials
    try:
        tuner.search(verbose=0)
    except _Done:
        pass
    except RuntimeError as exc:  # the oracle's "Number of consecutive failures exceeded the limit"
        if "consecutive failures" not in str(exc):
            raise
        return f"{oracle.max_consecutive_failed_trials} trials failed in a row, the last: {last_failure(study)}"
    except _UserErrorStop as stop:
        raise stop.error from None
