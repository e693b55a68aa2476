"""An ``Events`` that records what the core told it, for tests that check what a caller would show."""
from __future__ import annotations

from typing import Any, Mapping

from study.events import Events


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
