"""The optuna backend: ``study.optimize`` with a sampler and a per-epoch pruner.

Samplers: ``tpe`` (default), ``random``, ``cmaes`` (CMA-ES on the numeric parameters; categorical
ones are sampled at random by its independent sampler) and ``grid``. The grid enumerates every
``Choice`` parameter while ``Int``/``Float`` ones stay at the paper's values (``grid_space``): a grid
over 17 continuous ranges cannot be enumerated, their categorical part can (a few thousand points).

Pruners judge a trial after every epoch on the objective's validation metric: ``median`` (default),
``halving`` (successive halving), ``hyperband`` (its max resource is the longest schedule in epochs)
and ``none``.
"""
from __future__ import annotations

import optuna

from search_spaces import Space, grid_space, grid_values
from search_spaces.regimes import max_schedule_epochs
from study.errors import ConfigError
from study.tuning.search import PRUNERS, SAMPLERS


def sampler_space(sampler: str, space: Space) -> Space:
    """The space the objective samples: the grid pins numeric parameters, other samplers see all."""
    return grid_space(space) if sampler == "grid" else space


def make_sampler(name: str, space: Space, seed: int | None) -> optuna.samplers.BaseSampler:
    """``space`` is what the objective samples (see ``sampler_space``)."""
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        return _cmaes(seed)
    if name == "grid":
        return optuna.samplers.GridSampler(grid_values(space), seed=seed)
    raise ConfigError(f"--sampler must be one of {', '.join(SAMPLERS)}, got {name!r}")


def _cmaes(seed: int | None) -> optuna.samplers.BaseSampler:
    try:
        import cmaes  # noqa: F401  optuna's CmaEsSampler needs it
    except ImportError:
        raise ConfigError("--sampler cmaes needs the cmaes package: pip install cmaes") from None
    return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)


def make_pruner(name: str, space: Space, max_epochs: int | None) -> optuna.pruners.BasePruner:
    """Median waits for 5 finished trials and 2 epochs: SGD's first epochs are too noisy to judge."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_schedule_epochs(space, max_epochs))
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"--pruner must be one of {', '.join(PRUNERS)}, got {name!r}")
