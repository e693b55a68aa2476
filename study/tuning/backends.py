"""The tuner backends, by name: what a search asks of one, and the registry a request's «backend» names.

A backend is one class in a module of its own: ``optuna_backend.OptunaBackend`` (``study.optimize`` in any
number of workers) and ``keras_tuner_backend.KerasTunerBackend`` (keras-tuner's oracles, one process).
Adding one is a new module with such a class and a line in ``BACKENDS``; nothing else in the search names a
backend (``tests/test_architecture.py`` checks that no module compares ``backend`` to a name). Both write
every trial to the same optuna study, so reports, ``show`` and final training never ask which ran it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from study.events import SearchEvents
from study.tuning.keras_tuner_backend import KerasTunerBackend
from study.tuning.optuna_backend import OptunaBackend

if TYPE_CHECKING:
    import optuna

    from search_spaces import Space


class TunerBackend(Protocol):
    name: str
    options: tuple[str, ...]  # the request fields only this backend reads (others must leave them unset)
    pool: str | None  # None when several workers may fill one study; else why they cannot
    heartbeats: bool  # whether its trials send heartbeats (the store then expects them)
    single_objective: str | None  # None when it can search a metric against a cost; else why it cannot

    def space(self, request: Any, space: Space) -> Space:
        """What the trials sample, as this backend's sampler reads the regime's space."""

    def estimate_plan(self, request: Any, default_first: bool) -> tuple[str, bool]:
        """(the pruner the estimate models, whether the first trial is the defaults)."""

    def enqueues_default(self, request: Any) -> bool:
        """Whether a new study's first trial is the defaults (``train``'s configuration)."""

    def sampler(self, request: Any, space: Space, seed: int) -> optuna.samplers.BaseSampler: ...

    def pruner(self, request: Any, space: Space) -> optuna.pruners.BasePruner: ...

    def run(self, request: Any, study: optuna.Study, objective: Any, remaining: int,
            events: SearchEvents) -> str | None:
        """Run the trials the study lacks, telling ``trials`` of each; returns why it stopped short of a full study (None when full)."""


BACKENDS: dict[str, TunerBackend] = {b.name: b for b in (OptunaBackend(), KerasTunerBackend())}
DEFAULT_BACKEND = "optuna"


def backend_for(name: str) -> TunerBackend:
    """The backend ``name`` (a request's «backend», validated by ``study.tuning.request.validate``)."""
    return BACKENDS[name]
