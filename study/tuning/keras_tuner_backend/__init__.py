"""The keras-tuner backend: its random, Bayesian and Hyperband oracles over the same search space.

This package's ``__init__`` is its registry, cheap to import (keras-tuner itself loads TensorFlow,
seconds of start-up): ``TUNERS`` maps each tuner name to its keras-tuner oracle class. The search
itself is ``study.tuning.keras_tuner_backend.tuner.run``.
"""
TUNERS: dict[str, str] = {
    "random": "RandomSearchOracle",
    "bayesian": "BayesianOptimizationOracle",
    "hyperband": "HyperbandOracle",
}
DEFAULT_TUNER = "bayesian"
