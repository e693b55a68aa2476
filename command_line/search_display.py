"""What a search shows while it runs: a progress bar over trials and a live table of the last ones.

On a terminal, ``rich.live`` redraws both (a running trial shows its epoch). Elsewhere (CI logs, a
pipe) nothing is redrawn: one line is printed per finished epoch of a running trial and one per
finished trial, each naming its metric, and the table once at the end::

      trial 3 epoch 4/10  val_accuracy 0.4100  loss+L2 1.2345
    trial 3 complete  val_accuracy 0.4417  [optimizer=sgd  lr=0.01]  best 0.4417 (#3)

A trial's value is the study's objective on validation (``val_<objective>``, as the run's
evaluation computes it). An edge search (``«objective» accuracy,latency`` or ``accuracy,size``) has two: the
table adds the measured cost, and instead of a best trial it names the Pareto front so far. Keras's per-epoch ``loss`` and ``val_loss`` include the head's L2 penalty,
so they are labelled ``loss+L2`` and ``val_loss+L2``. An epoch total is the most the trial may
train (both phases for transfer, after the study's epoch cap); transfer's frozen phase may stop
earlier.
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

from search_spaces import to_config
from study.errors import UserError
from study.events import SearchEvents
from study.store import FINISHED, Objectives, off_front, pareto_front, records, trial_cost, trial_value

# Sampled epoch counts are left out: --max-epochs caps them, so the "epochs" column shows what ran.
KEY_PARAMS = ("backbone", "optimizer", "learning_rate", "frozen_learning_rate", "l2", "momentum", "batch_size", "unfreeze")
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


def format_cost(cost: str | None, value: float | None) -> str:
    """A measured cost as shown: latency in ms, size in MB."""
    if value is None or cost is None:
        return ""
    return f"{value:.2f} ms" if cost == "latency" else f"{value / 1e6:.2f} MB"


def cost_label(cost: str) -> str:
    return {"latency": "latency (TFLite)", "size": "size (TFLite)"}.get(cost, cost)


def metric_label(key: str) -> str:
    """A Keras log key as shown: its loss terms include the L2 penalty (``loss+L2``, ``val_loss+L2``)."""
    return f"{key}+L2" if key in ("loss", "val_loss") else key


class SearchDisplay(SearchEvents):
    """Receives a search's trial events (``study.events.SearchEvents``) from either backend and renders
    them; also a rich renderable."""

    metric = "value"  # what a trial's value is called: val_<objective> once the study names its objective
    name: str | None = None  # the study's
    cost: str | None = None  # an edge search's second objective (latency or size)
    front: list[int] = []  # noqa: RUF012  an edge search's Pareto-optimal trials so far (replaced, never mutated)
    off_front: int = 0  # its complete trials that did not learn (never on the front)

    def __init__(self, console: Console, study: optuna.Study, total: int) -> None:
        self.console = console
        self.direction = study.directions[0]
        self.cost = Objectives.parse(records.objective(study)).cost if records.regime(study) else None
        # what the study searches
        self.regime, self.base, self.max_epochs = records.regime(study), records.base(study), records.max_epochs(study)
        if self.regime is not None:
            self.metric = f"val_{Objectives.parse(records.objective(study)).metric}"
        self.rows: dict[int, dict[str, Any]] = {}
        self.best: tuple[float, int] | None = None
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console,
        )
        done = study.get_trials(deepcopy=False, states=FINISHED)
        # The study's name heads the table, not the bar: a long one would cut the bar's counts ("…") at 80 columns.
        self.name = study.study_name
        self.task = self.progress.add_task("trials", total=total, completed=len(done))
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
        self.rows[number] = {"params": params, "state": "RUNNING", "value": None, "started": time.time(), "epoch": 0,
                             "epoch_total": self._epoch_total(params)}

    def epoch_ended(self, number: int, epoch: int, logs: dict[str, Any]) -> None:
        """``epoch`` counts from 1 across a trial's phases; off a terminal, one line per epoch."""
        row = self.rows.get(number)
        if row is None:
            return
        row["epoch"] = epoch
        if not self.console.is_terminal:
            self.console.print(self._epoch_line(number, row, logs), markup=False, highlight=False, soft_wrap=True)

    def trial_finished(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """An optuna ``study.optimize`` callback; the keras-tuner backend calls it after ``tell``."""
        self._record(trial)
        if self.cost is not None:
            self.front = sorted(t.number for t in pareto_front(study))
            self.off_front = len(off_front(study))
        if trial.state in FINISHED:
            self.progress.advance(self.task)
        if not self.console.is_terminal:
            # markup=False: "[optimizer=sgd ...]" is text, not a rich style tag to swallow
            self.console.print(self._line(trial), markup=False, highlight=False, soft_wrap=True)

    def study_finished(self, count: int) -> None:
        """The bar follows the study's count of finished trials (every worker's, not only this one's)."""
        self.progress.update(self.task, completed=count)

    def _record(self, trial: FrozenTrial) -> None:
        self.rows[trial.number] = {
            "params": trial.params,
            "state": trial.state.name,
            "value": trial_value(trial),
            "cost": trial_cost(trial),
            "seconds": None if trial.duration is None else trial.duration.total_seconds(),
            "error": records.error(trial) or "",
            "epochs": records.epochs(trial),
        }
        value = trial_value(trial)
        if self.cost is None and value is not None and self._better(value):
            self.best = (value, trial.number)

    def _epoch_total(self, params: dict[str, Any]) -> int | None:
        """The most epochs the trial trains: its config as the objective builds it (capped), all phases."""
        regime = self.regime
        if regime is None:
            return None
        try:
            config = to_config(regime, params, self.base, max_epochs=self.max_epochs)
        except UserError:  # the trial itself reports what is wrong
            return None
        return config.epochs + (config.frozen_epochs if regime == "transfer" else 0)

    def _better(self, value: float | None) -> bool:
        if value is None or self.best is None:
            return value is not None
        return value > self.best[0] if self.direction == optuna.study.StudyDirection.MAXIMIZE else value < self.best[0]

    # ------------------------------------------------------------------------------ drawing
    def _standing(self, long: bool = False) -> str:
        """The best trial so far, or an edge search's Pareto front."""
        if self.cost is not None:
            text = f"Pareto front: trial(s) {', '.join(map(str, self.front))}" if self.front else "no front yet"
            return text + (f" ({self.off_front} below the majority rate, off it)" if self.off_front else "")
        if self.best is None:
            return "no complete trial yet" if long else "no best yet"
        return f"best {self.best[0]:.4f} ({'trial ' if long else '#'}{self.best[1]})"

    def _line(self, trial: FrozenTrial) -> str:
        row = self.rows[trial.number]
        best = self._standing()
        if row["value"] is not None:
            outcome = f"{self.metric} {format_value(row['value'])}"
            if self.cost is not None:
                outcome += f"  {self.cost} {format_cost(self.cost, row.get('cost'))}"
        elif trial.state == TrialState.PRUNED and trial.intermediate_values:
            outcome = f"after epoch {max(trial.intermediate_values) + 1}"  # optuna's steps count epochs from 0
        else:
            outcome = row["error"]
        head = f"trial {trial.number} {row['state'].lower()}" + (f"  {outcome}" if outcome else "")
        return f"{head}  [{format_params(row['params'])}]  {best}"

    def _epoch_line(self, number: int, row: dict[str, Any], logs: dict[str, Any]) -> str:
        """The metric the pruner judges (Keras logs no per-epoch macro-F1: validation accuracy then), and the loss."""
        judged = self.metric if self.metric in logs else "val_accuracy"
        total = f"/{row['epoch_total']}" if row.get("epoch_total") else ""
        metrics = "  ".join(f"{metric_label(k)} {float(logs[k]):.4f}" for k in dict.fromkeys((judged, "loss"))
                            if k in logs)
        return f"  trial {number} epoch {row['epoch']}{total}" + (f"  {metrics}" if metrics else "")

    def __rich__(self) -> Group:
        return Group(self.table(), self.progress)

    def table(self) -> Table:
        best = self._standing(long=True)
        title = f"study {self.name}: {best}" if self.name else best
        table = Table(title=title, title_justify="left", expand=False)
        cost = (cost_label(self.cost),) if self.cost is not None else ()
        for column in ("trial", "key params", "epochs", self.metric, *cost, "state", "duration"):
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
            total = f"/{row['epoch_total']}" if row.get("epoch_total") else ""
            state = f"RUNNING (epoch {row['epoch']}{total})" if row["epoch"] else state
        if row.get("error"):
            state = f"{state}: {row['error'][:60]}"
        duration = "" if seconds is None else f"{seconds:.0f}s"
        style = _STATE_STYLES.get(row["state"], "")
        starred = number in self.front if self.cost is not None else bool(self.best and self.best[1] == number)
        star = " *" if starred else ""
        epochs = row.get("epochs") or row.get("epoch") or ""
        cost = (format_cost(self.cost, row.get("cost")),) if self.cost is not None else ()
        # Text, not markup: a state without a style (WAITING, a re-queued trial) or an error message
        # with brackets must print as it is, not be parsed (it raised MarkupError and killed a worker).
        return (f"{number}{star}", Text(format_params(row["params"])), str(epochs), format_value(row["value"]), *cost,
                Text(state, style=style), duration)
