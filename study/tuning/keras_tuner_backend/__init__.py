"""The keras-tuner backend: its random, Bayesian and Hyperband oracles over the same search space.

This package's ``__init__`` is its registry, cheap to import (keras-tuner itself loads TensorFlow,
seconds of start-up): ``TUNERS`` maps each tuner name to its keras-tuner oracle class. The search
itself is ``study.tuning.keras_tuner_backend.tuner.run``, which ``KerasTunerBackend.run`` calls.
"""
import optuna

from search_spaces.regimes import max_phase_epochs
from study.store import OBJECTIVES

TUNERS: dict[str, str] = {
    "random": "RandomSearchOracle",
    "bayesian": "BayesianOptimizationOracle",
    "hyperband": "HyperbandOracle",
}
DEFAULT_TUNER = "bayesian"


class KerasTunerBackend:
    """keras-tuner's oracle proposes, and every trial lands in the optuna study as an ask/tell trial
    (``study.tuning.backends.TunerBackend``; the oracle itself is ``tuner.run``'s, in this process)."""

    name = "keras-tuner"
    options = ("tuner",)  # the request fields only this backend reads
    # why several workers cannot share its study (a local pool refuses it)
    pool = "keras-tuner's oracle keeps its state in one process (see docs/scaling-out.md)"
    heartbeats = False  # its ask/tell trials send none, so the store expects none
    single_objective = "keras-tuner's oracles optimise one objective (its multi-objective mode sums them)"

    def space(self, request, space):
        return space

    def estimate_plan(self, request, default_first: bool) -> tuple[str, bool]:
        return ("hyperband" if request.tuner_name == "hyperband" else "none"), False

    def enqueues_default(self, request) -> bool:
        return False  # the oracle proposes every trial

    def sampler(self, request, space, seed: int):
        return optuna.samplers.RandomSampler(seed=seed)  # never consulted: keras-tuner pins every value

    def pruner(self, request, space):
        return optuna.pruners.NopPruner()  # its trials report every epoch, but only its Hyperband stops them

    def run(self, request, study, objective, remaining: int, events) -> str | None:
        from study.tuning.keras_tuner_backend import tuner  # deferred: keras_tuner loads TensorFlow's tuner stack

        oracle = tuner.make_oracle(request.tuner_name, request.objective, OBJECTIVES[request.objective],
                                   max_epochs=max_phase_epochs(objective.space, request.max_epochs),
                                   seed=request.seed + len(study.get_trials(deepcopy=False)),
                                   failures=request.max_failures)
        return tuner.run(study, objective, oracle, tuner_name=request.tuner_name, trials=remaining,
                         total=request.trials, timeout=request.timeout, events=events)
