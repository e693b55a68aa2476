"""The search commands.

search         run or resume a hyperparameter search (optuna or keras-tuner) into the study store;
               --workers N runs N worker processes on one study (docs/scaling-out.md)
search-worker  (hidden) one worker of --workers: its request comes as JSON in the environment
studies        the studies in a store, with their trial counts and best values
show           one study's trials and its best parameters beside the paper's
space          a regime's search space
"""
from __future__ import annotations

import os
import shlex
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
import optuna
from rich.console import Console

from command_line.options import (
    SHORTCUTS,
    config_options,
    config_values,
    storage_option,
    study_option,
    table_console,
    track_option,
)
from reports.budget import budget_line, study_budget
from search_spaces import edge_backbones, space_for
from study.config import DEFAULT_DATA, REGIMES
from study.errors import ConfigError
from study.store import (
    DEFAULT_STORAGE,
    COSTS,
    OBJECTIVES,
    NoStore,
    Objectives,
    STORAGE_ENV,
    load_existing,
    mask_text,
    mask_url,
    open_storage,
    records,
    study_row,
    study_rows,
    trial_records,
)
from study.tuning.keras_tuner_backend import DEFAULT_TUNER, TUNERS
from study.tuning.optuna_backend import PRUNERS, SAMPLERS
from study.tuning.pool import REQUEST_ENV, run_pool
from study.tuning.request import (
    BACKENDS,
    BASE_KEYS,
    DEFAULT_PRUNER,
    DEFAULT_SAMPLER,
    SearchIncomplete,
    SearchRequest,
    from_json,
    request_default,
    validate,
)
from command_line.progress import ConsoleEvents
from command_line.views import best_table, front_table, settings_table, space_table, studies_table, trials_table

CLI_PY = Path(__file__).resolve().parents[1] / "cli.py"  # beside this package, in a checkout or an install
WORKER_COMMAND = "search-worker"
# The shortcut options of TrainConfig keys that search offers: the keys every study records in its base that
# have a shortcut (any other key: --set KEY=VALUE).
SEARCH_SHORTCUTS = tuple(key for key in BASE_KEYS if key in SHORTCUTS)


def _keep_models(ctx: click.Context, param: click.Parameter, value: str) -> int | None:
    if value == "all":
        return None
    if not value.isdigit():
        raise click.BadParameter(f"{value!r} is neither a number of trials (0 or more) nor 'all'")
    return int(value)


@click.command()
@click.option("--regime", type=click.Choice(REGIMES), required=True, help="Which paper regime to search.")
@click.option("--trials", type=click.IntRange(min=1), required=True,
              help="Finished (complete or pruned) trials the study should hold; a rerun runs only the rest.")
@click.option("--data", help=f"Dataset folder or fer2013.csv (default {DEFAULT_DATA}).")
@click.option("--backend", type=click.Choice(tuple(BACKENDS)), default=request_default("backend"), show_default=True)
@click.option("--sampler", type=click.Choice(tuple(SAMPLERS)),
              help=f"optuna sampler (default {DEFAULT_SAMPLER}); grid: every combination of the choice parameters, "
                   "ranges at the paper's values.")
@click.option("--pruner", type=click.Choice(tuple(PRUNERS)),
              help=f"optuna pruner, judged per epoch (default {DEFAULT_PRUNER}).")
@click.option("--tuner", type=click.Choice(tuple(TUNERS)), help=f"keras-tuner tuner (default {DEFAULT_TUNER}).")
@click.option("--objective", default=request_default("objective"), show_default=True, metavar="METRIC[,COST]",
              help=f"Validation metric to optimize ({', '.join(OBJECTIVES)}; loss is minimized), or a metric and a "
                   f"measured cost ({', '.join(COSTS)}) for an edge search: e.g. accuracy,latency weighs accuracy "
                   "against each trained model's single-face TFLite time, varies the backbone and shows the Pareto "
                   "front (no pruning).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Start no new trial after this long.")
@click.option("--max-epochs", type=click.IntRange(min=1), metavar="N",
              help="Cap each phase's epochs (epochs, frozen_epochs) for a cheap search.")
@click.option("--keep-models", default=str(request_default("keep_models")), show_default=True, metavar="K|all", callback=_keep_models,
              help="Only the best K trials keep their model.keras (about 50 MB each for DenseNet169); every trial "
                   "keeps its predictions, metrics and history, and final runs always keep their models.")
@config_options(*SEARCH_SHORTCUTS)
@storage_option
@study_option
@click.option("--runs-dir", default=request_default("runs_dir"), show_default=True, type=click.Path(),
              help="Trials go to RUNS_DIR/<study>/.")
@click.option("--workers", type=click.IntRange(min=1), metavar="N",
              help="Start N worker processes here on the one study (one GPU each when there are GPUs); "
                   "other machines may join with the same --study and --storage. Optuna backend only.")
@click.option("--heartbeat", type=click.IntRange(min=1), default=request_default("heartbeat"), show_default=True, metavar="SECONDS",
              help="A running trial's heartbeat interval (optuna backend).")
@click.option("--grace", type=click.IntRange(min=1), default=request_default("grace"), show_default=True, metavar="SECONDS",
              help="A trial without a heartbeat for this long is failed (its worker died) and re-queued once.")
@click.option("--max-failures", type=click.IntRange(min=1), default=request_default("max_failures"), show_default=True, metavar="N",
              help="Stop after N failed trials in a row (a failed trial never counts toward --trials; the next "
                   "one samples anew).")
@click.option("--estimate", "estimate_only", is_flag=True,
              help="Print the search's projected wall time on this machine (a short probe run of the defaults, "
                   "the epochs the space allows, the pruner) and stop; nothing is written to the store.")
@click.option("--default-trial/--no-default-trial", default=request_default("default_trial"), show_default=True,
              help="Optuna backend: a new study's first trial trains the defaults (the paper's configuration), "
                   "so the study shows what the search bought.")
@track_option
def search(workers: int | None, config_file: str | None, overrides: tuple[str, ...], estimate_only: bool,
           **options: Any) -> None:
    """Search hyperparameters of a regime; every trial is one training run in RUNS_DIR/<study>/trial-<n>.

    Every trial trains the same TrainConfig base (--config, --set and the shortcut options); a key
    the search space also varies (e.g. --set optimizer=adam) is fixed at that value.
    """
    base = config_values(config_file, overrides, options, SEARCH_SHORTCUTS)
    request = SearchRequest(base=base, **options)
    if estimate_only:
        validate(request)  # bad settings are refused at once, before TensorFlow loads
        from study.tuning.search import estimate  # deferred: the probe trains, with TensorFlow

        Console().print(estimate(request).line(), highlight=False, soft_wrap=True)
        return
    if workers:
        _searching(lambda console: run_pool(request, workers, [sys.executable, str(CLI_PY), WORKER_COMMAND],
                                            ConsoleEvents(console)), request)
    else:
        _run_here(request)


@click.command(WORKER_COMMAND, hidden=True)
def search_worker() -> None:
    """One worker of a local pool (search --workers N): the request is JSON in FER_STUDY_REQUEST."""
    text = os.environ.get(REQUEST_ENV)
    if not text:
        raise ConfigError(f"{WORKER_COMMAND} is started by `search --workers N`, which sets {REQUEST_ENV}")
    _run_here(from_json(text))


def _run_here(request: SearchRequest) -> None:
    validate(request)  # bad settings are refused at once, before TensorFlow loads
    from study.tuning.search import run_search  # deferred: the objective loads TensorFlow

    _searching(lambda console: run_search(request, ConsoleEvents(console)), request)


def _searching(run: Any, request: SearchRequest) -> None:
    console = Console()
    try:
        study = run(console)
    except KeyboardInterrupt as exc:
        _interrupted(console, exc)
    except SearchIncomplete:
        _summarize(console, load_existing(request.study_name, open_storage(request.storage)), request.storage)
        console.print(f"complete it with: {resume_command()}", highlight=False, soft_wrap=True)
        raise
    _summarize(console, study, request.storage)


def _interrupted(console: Console, exc: KeyboardInterrupt) -> NoReturn:
    console.print("[yellow]interrupted[/]: the running trial is marked failed; finished trials are kept.")
    console.print(f"resume with: {resume_command()}", highlight=False, soft_wrap=True)
    sys.exit(128 + getattr(exc, "signum", signal.SIGINT))


def resume_command() -> str:
    """The command line that was run (a password in it masked): running it again resumes the study."""
    program, *args = sys.argv
    head = ["python", program] if program.endswith(".py") else [program.rsplit("/", 1)[-1]]
    return shlex.join([*head, *(mask_text(arg) for arg in args)])


def _summarize(console: Console, study: optuna.Study, storage: str) -> None:
    r = study_row(study)
    console.print(f"study {r['name']}: {r['complete']} complete, {r['pruned']} pruned, {r['failed']} failed")
    if r["best"] is not None:
        console.print(best_table(study))
    if r["front"] is not None:  # an edge search: its front, or why it has none
        console.print(front_table(study))
    implied = storage in (DEFAULT_STORAGE, os.environ.get(STORAGE_ENV))  # the default, or FER_STUDY_STORAGE's
    where = "" if implied else f" --storage {shlex.quote(mask_url(storage))}"
    which = " --trial N" if r["front"] is not None else " --seeds 3"  # a Pareto front has no single best
    console.print(f"next: python cli.py show {study.study_name}{where}  |  "
                  f"python cli.py train --from-study {study.study_name}{which}{where}", highlight=False,
                  soft_wrap=True)  # one line, never broken inside a command to copy


@click.command()
@storage_option
def studies(storage: str) -> None:
    """The studies in the store: regime, backend, trials complete/pruned/failed, best value."""
    try:
        rows = study_rows(open_storage(storage, read_only=True))
    except NoStore:
        rows = []  # nothing searched into it yet; a read creates no file
    empty = "no studies yet: run `python cli.py search --regime scratch --trials 10`"
    table_console().print(studies_table(rows) if rows else empty)


@click.command()
@click.argument("study_name", metavar="STUDY")
@storage_option
def show(study_name: str, storage: str) -> None:
    """One study's trials (state, value, epochs, run dir or error) and its best parameters; for an edge search
    (a metric against latency or size), its Pareto-optimal trials with their measured costs."""
    study = load_existing(study_name, open_storage(storage, read_only=True))
    console = table_console()
    console.print(trials_table(study))
    row = study_row(study)
    if row["best"] is not None:
        console.print(best_table(study))
    if row["front"] is not None:  # an edge search: its front, or why it has none
        console.print(front_table(study))
    budget = study_budget(trial_records(study), maximize=study.directions[0] == optuna.study.StudyDirection.MAXIMIZE)
    if budget is not None:
        metric = f"validation {Objectives.parse(records.objective(study)).metric.replace('_', '-')}"  # an edge search's too
        console.print(budget_line(budget, metric), markup=False, highlight=False)
    for run_dir in records.final_runs(study):
        console.print(f"final run: {run_dir}")


@click.command()
@click.option("--regime", type=click.Choice(REGIMES), required=True)
def space(regime: str) -> None:
    """The regime's search space: each parameter's kind, range or choices, scale and paper default; then
    every setting it does not vary, with its default and where that comes from."""
    searched = space_for(regime)
    table_console().print(space_table(searched))
    table_console().print(settings_table(searched))
    table_console().print(f"An edge search (--objective accuracy,latency or accuracy,size) also varies the backbone over "
                          f"{', '.join(edge_backbones(regime))} (unless --backbone pins one), each backbone's defaults "
                          "first; it prunes nothing.", highlight=False)


COMMANDS: list[click.Command] = [search, search_worker, studies, show, space]
