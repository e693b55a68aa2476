"""The core's events (``study.events``) drawn on the terminal: the command line's only progress renderer.

Training: a rich progress bar per epoch with live metrics, and one printed line per finished epoch.
Keras's ``loss`` and ``val_loss`` are the training objective: the cross-entropy plus the head's L2
penalty, so they are shown as ``loss+L2`` and ``val_loss+L2`` (the evaluated loss of a run's
metrics is the cross-entropy alone). A search: ``command_line.search_display.SearchDisplay`` (a
live table of the trials over a bar). Warnings are in bold red.
"""
from __future__ import annotations

from typing import Any, Mapping

import optuna
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from command_line.search_display import SearchDisplay
from study.events import Events


class ConsoleEvents(Events):
    """News lines and a search's live table on ``console`` (stdout by default: beside the command's
    results, where the live table ends as the search's); training's bars and epoch lines, and
    warnings, on ``stderr``."""

    def __init__(self, console: Console | None = None, stderr: Console | None = None) -> None:
        self.console = console or Console(soft_wrap=True)
        self.stderr = stderr or Console(stderr=True, soft_wrap=True)
        self._progress: Progress | None = None
        self._task: Any = None
        self._phase, self._last_epoch, self._steps = "", 0, None

    # ------------------------------------------------------------------------------ messages
    def say(self, line: str) -> None:
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def warn(self, line: str) -> None:
        self.stderr.print(line, style="bold red", markup=False, highlight=False, soft_wrap=True)

    # ------------------------------------------------------------------------------ training
    def phase_started(self, phase: str, first_epoch: int, last_epoch: int, steps: int | None) -> None:
        self.phase_ended()  # a phase that ended without saying so (it cannot, but a bar must never leak)
        self._phase, self._last_epoch, self._steps = phase, last_epoch, steps
        if not self.stderr.is_terminal:
            return  # a log or a pipe gets the epoch lines alone: a bar is redrawn, and there it cannot be
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[metrics]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.stderr,
            transient=True,
        )
        self._progress.start()

    def epoch_started(self, epoch: int) -> None:
        if self._progress is not None:
            self._task = self._progress.add_task(f"{self._phase} epoch {epoch}/{self._last_epoch}",
                                                 total=self._steps, metrics="")

    def batch_ended(self, step: int, logs: Mapping[str, Any]) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=step, metrics=format_logs(logs, ("loss", "accuracy")))

    def epoch_ended(self, epoch: int, logs: Mapping[str, Any]) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None
        text = format_logs(logs, ("loss", "accuracy", "val_loss", "val_accuracy"))
        self.stderr.print(f"{self._phase} {epoch}/{self._last_epoch}  {text}", highlight=False)

    def phase_ended(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress, self._task = None, None

    # ------------------------------------------------------------------------------ a search
    def search_started(self, study: optuna.Study, total: int) -> SearchDisplay:
        return SearchDisplay(self.console, study, total)


def format_logs(logs: Mapping[str, Any] | None, keys: tuple[str, ...]) -> str:
    logs = logs or {}
    return "  ".join(f"{_SHORT.get(k, k)} {float(logs[k]):.3f}" for k in keys if k in logs)


_SHORT = {"accuracy": "acc", "val_accuracy": "val_acc", "loss": "loss+L2", "val_loss": "val_loss+L2"}
