"""An ``Events`` that records what the core told it, for tests that check what a caller would show."""
from __future__ import annotations

from typing import Any, Mapping

from study.events import Events, SearchEvents


class Told(Events):
    """Every event as a tuple, in order; ``said``/``warned`` hold the lines alone."""

    def __init__(self) -> None:
        self.heard: list[tuple[Any, ...]] = []
        self.said: list[str] = []
        self.warned: list[str] = []

    def say(self, line: str) -> None:
        self.said.append(line)

    def warn(self, line: str) -> None:
        self.warned.append(line)

    def phase_started(self, phase: str, first_epoch: int, last_epoch: int, steps: int | None) -> None:
        self.heard.append(("phase_started", phase, first_epoch, last_epoch, steps))

    def epoch_started(self, epoch: int) -> None:
        self.heard.append(("epoch_started", epoch))

    def batch_ended(self, step: int, logs: Mapping[str, Any]) -> None:
        self.heard.append(("batch_ended", step, sorted(logs)))

    def epoch_ended(self, epoch: int, logs: Mapping[str, Any]) -> None:
        self.heard.append(("epoch_ended", epoch, sorted(logs)))

    def phase_ended(self) -> None:
        self.heard.append(("phase_ended",))

    def search_started(self, study: Any, total: int) -> SearchEvents:
        self.heard.append(("search_started", study.study_name, total))
        return _ToldTrials(self)


class _ToldTrials(SearchEvents):
    """A search's trial events, recorded in the ``Told`` that started it."""

    def __init__(self, told: Told) -> None:
        self.told = told

    def trial_started(self, number: int, params: Mapping[str, Any]) -> None:
        self.told.heard.append(("trial_started", number))

    def epoch_ended(self, number: int, epoch: int, logs: Mapping[str, Any]) -> None:
        self.told.heard.append(("trial_epoch", number, epoch))

    def trial_finished(self, study: Any, trial: Any) -> None:
        self.told.heard.append(("trial_finished", trial.number, trial.state.name))

    def study_finished(self, count: int) -> None:
        self.told.heard.append(("study_finished", count))
