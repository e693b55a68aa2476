"""What the core tells whoever runs it, as events; the caller decides how (or whether) to show them.

Training (``study.training.train``), pretraining, final runs, curves, searches and worker pools take
an ``events`` argument and report their progress only through it: they never print. ``Events``
here hears everything and shows nothing (``SILENT``, the default: a library caller, a test or a
benchmark gets no output it did not ask for). The command line passes a subclass that draws
progress bars and lines with rich (``command_line/progress.py:ConsoleEvents``); another caller may
pass its own (a notebook widget, a log, a test that records what it heard).

The methods, by who calls them:

- every long task: ``say(line)`` for a line of news, ``warn(line)`` for one that must be seen (a
  stalled run, trials failed by a dead worker);
- one training run, per phase (``scratch``, ``frozen``, ``finetune``): ``phase_started``, then per
  epoch ``epoch_started``, ``batch_ended`` after every step, ``epoch_ended``, and ``phase_ended``
  last (also when the phase ends with an exception); epochs count from 1 across a run's phases;
- a search: ``search_started(study, total)`` returns the ``SearchEvents`` that hear its trials while
  it runs, used as a context manager (the display opens and closes with the search).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:  # optuna is light, but this module stays importable without it
    import optuna
    from optuna.trial import FrozenTrial


class SearchEvents:
    """A search's trials as they run, from either tuner backend; silent here."""

    def __enter__(self) -> "SearchEvents":
        return self

    def __exit__(self, *exc: Any) -> None:
        """The search ended (normally or not): a display that drew it may close; nothing to close here."""

    def trial_started(self, number: int, params: Mapping[str, Any]) -> None:
        """Trial ``number`` starts training with these sampled values."""

    def epoch_ended(self, number: int, epoch: int, logs: Mapping[str, Any]) -> None:
        """Trial ``number`` finished its ``epoch`` (from 1, across phases) with Keras's logs."""

    def trial_finished(self, study: "optuna.Study", trial: "FrozenTrial") -> None:
        """A trial of this process ended (COMPLETE, PRUNED or FAIL): an optuna ``study.optimize`` callback."""

    def study_finished(self, count: int) -> None:
        """The study holds ``count`` finished trials, whichever worker finished them."""


class Events:
    """Hears every event and shows nothing; subclass it and override what you want to show."""

    def say(self, line: str) -> None:
        """A line of news (what is being trained, a forecast, a pool's status)."""

    def warn(self, line: str) -> None:
        """A line the user must see (a stalled run, a dead worker's trials)."""

    def phase_started(self, phase: str, first_epoch: int, last_epoch: int, steps: int | None) -> None:
        """A training phase trains epochs ``first_epoch``..``last_epoch`` (from 1), ``steps`` batches each."""

    def epoch_started(self, epoch: int) -> None:
        """Epoch ``epoch`` (from 1, across the run's phases) begins."""

    def batch_ended(self, step: int, logs: Mapping[str, Any]) -> None:
        """Step ``step`` (from 1) of the current epoch is done; ``logs`` are Keras's running means."""

    def epoch_ended(self, epoch: int, logs: Mapping[str, Any]) -> None:
        """Epoch ``epoch`` is done; ``logs`` hold its training and validation metrics."""

    def phase_ended(self) -> None:
        """The phase ended, normally or not: a display that drew it may close."""

    def search_started(self, study: "optuna.Study", total: int) -> SearchEvents:
        """A search of ``study`` toward ``total`` finished trials begins; its trials are told to the result."""
        return SearchEvents()


SILENT = Events()
