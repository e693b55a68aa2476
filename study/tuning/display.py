"""What a search shows while it runs: a progress bar over trials and a live table of the last ones.

On a terminal, ``rich.live`` redraws both; elsewhere (CI logs, a pipe) one line is printed per
finished trial and the table once at the end.
"""
from __future__ import annotations

import time
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from study.store import FINISHED

# Sampled epoch counts are left out: --max-epochs caps them, so the "epochs" column shows what ran.
KEY_PARAMS = ("optimizer", "learning_rate", "frozen_learning_rate", "l2", "momentum", "batch_size", "unfreeze")
_ABBREVIATIONS = {"learning_rate": "lr", "frozen_learning_rate": "frozen_lr", "batch_size": "batch"}
_SHOWN_ROWS = 12
_STATE_STYLES = {"COMPLETE": "green", "PRUNED": "yellow", "FAIL": "red", "RUNNING": "cyan"}


def format_params(params: dict[str, Any]) -> str:
    """The few parameters that matter most, compactly (the full set is in the store)."""
    return "  ".join(f"{_ABBREVIATIONS.get(k, k)}={_short(params[k])}" for k in KEY_PARAMS if k in params)


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def format_value(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


class SearchDisplay:
    """Receives trial events from either backend and renders them; also a rich renderable."""

    def __init__(self, console: Console, study: optuna.Study, total: int) -> None:
        self.console = console
        self.direction = study.direction
        self.rows: dict[int, dict[str, Any]] = {}
        self.best: tuple[float, int] | None = None
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console,
        )
        done = study.get_trials(deepcopy=False, states=FINISHED)
        self.task = self.progress.add_task(f"study {study.study_name}", total=total, completed=len(done))
        for trial in study.get_trials(deepcopy=False)[-_SHOWN_ROWS:]:
            self._record(trial)
        self.live = Live(self, console=console, refresh_per_second=2)

    def __enter__(self) -> "SearchDisplay":
        self.live.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.live.stop()
        if not self.console.is_terminal:
            self.console.line()  # the final render ends without one off a terminal

    # ------------------------------------------------------------------------------- events
    def trial_started(self, number: int, params: dict[str, Any]) -> None:
        self.rows[number] = {"params": params, "state": "RUNNING", "value": None, "started": time.time(), "epoch": 0}

    def epoch_ended(self, number: int, epoch: int, logs: dict[str, Any]) -> None:
        if number in self.rows:
            self.rows[number]["epoch"] = epoch

    def trial_finished(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """An optuna ``study.optimize`` callback; the keras-tuner backend calls it after ``tell``."""
        self._record(trial)
        if trial.state in FINISHED:
            self.progress.advance(self.task)
        if not self.console.is_terminal:
            self.console.print(self._line(trial), highlight=False)

    def _record(self, trial: FrozenTrial) -> None:
        self.rows[trial.number] = {
            "params": trial.params,
            "state": trial.state.name,
            "value": trial.value if trial.state == TrialState.COMPLETE else None,
            "seconds": None if trial.duration is None else trial.duration.total_seconds(),
            "error": trial.user_attrs.get("error", ""),
            "epochs": trial.user_attrs.get("epochs"),
        }
        if trial.state == TrialState.COMPLETE and self._better(trial.value):
            self.best = (trial.value, trial.number)

    def _better(self, value: float | None) -> bool:
        if value is None or self.best is None:
            return value is not None
        return value > self.best[0] if self.direction == optuna.study.StudyDirection.MAXIMIZE else value < self.best[0]

    # ------------------------------------------------------------------------------ drawing
    def _line(self, trial: FrozenTrial) -> str:
        row = self.rows[trial.number]
        best = f"best {self.best[0]:.4f} (#{self.best[1]})" if self.best else "no best yet"
        value = format_value(row["value"]) or row["error"]
        return f"trial {trial.number} {row['state'].lower()} {value}  [{format_params(row['params'])}]  {best}"

    def __rich__(self) -> Group:
        return Group(self.table(), self.progress)

    def table(self) -> Table:
        best = f"best {self.best[0]:.4f} (trial {self.best[1]})" if self.best else "no complete trial yet"
        table = Table(title=best, title_justify="left", expand=False)
        for column in ("trial", "key params", "epochs", "value", "state", "duration"):
            table.add_column(column, justify="left" if column in ("key params", "state") else "right")
        for number in sorted(self.rows)[-_SHOWN_ROWS:]:
            table.add_row(*self._cells(number))
        return table

    def _cells(self, number: int) -> tuple[str | Text, ...]:
        row = self.rows[number]
        state = row["state"]
        seconds = row.get("seconds")
        if state == "RUNNING" and "started" in row:
            seconds = time.time() - row["started"]
            state = f"RUNNING (epoch {row['epoch']})" if row["epoch"] else state
        if row.get("error"):
            state = f"{state}: {row['error'][:60]}"
        duration = "" if seconds is None else f"{seconds:.0f}s"
        style = _STATE_STYLES.get(row["state"], "")
        star = " *" if self.best and self.best[1] == number else ""
        epochs = row.get("epochs") or row.get("epoch") or ""
        # Text, not markup: a state without a style (WAITING, a re-queued trial) or an error message
        # with brackets must print as it is, not be parsed (it raised MarkupError and killed a worker).
        return (f"{number}{star}", Text(format_params(row["params"])), str(epochs), format_value(row["value"]),
                Text(state, style=style), duration)
