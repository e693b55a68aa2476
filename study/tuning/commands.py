"""Click commands of the tuning layer, registered on the CLI group by ``cli.py``: ``COMMANDS``.

search   run or resume a hyperparameter search (optuna or keras-tuner) into the study store;
         --workers N runs N worker processes on one study (docs/scaling-out.md)
studies  the studies in a store, with their trial counts and best values
show     one study's trials and its best parameters beside the paper's
space    a regime's search space
"""
from __future__ import annotations

import os
import shlex
import signal
import sys
from typing import Any, Callable

import click
from rich.console import Console

from study.config import FROZEN_AUGMENTATIONS, PRECISIONS, REGIMES
from study.tuning.search import BACKENDS, PRUNERS, SAMPLERS, TUNERS, SearchRequest, default_data
from study.tuning.secrets import STORAGE_ENV, mask_text, mask_url
from study.tuning.storage import DEFAULT_STORAGE, OBJECTIVES

storage_option = click.option(
    "--storage", default=DEFAULT_STORAGE, show_default=True, metavar="URL", envvar=STORAGE_ENV, show_envvar=True,
    help="Study store: an optuna storage URL (sqlite:///..., postgresql+psycopg2://USER@HOST:PORT/DB). Keep a "
         "password out of the command line: PGPASSWORD, ~/.pgpass, or the whole URL in the environment.",
)
study_option = click.option("--study", "study", metavar="NAME", help="Study name (default <regime>-<backend>).")


def study_options(command: Callable) -> Callable:
    """--storage and --study, shared by every command that opens a study."""
    return storage_option(study_option(command))


@click.command()
@click.option("--regime", type=click.Choice(REGIMES), required=True, help="Which paper regime to search.")
@click.option("--trials", type=click.IntRange(min=1), required=True,
              help="Finished (complete or pruned) trials the study should hold; a rerun runs only the rest.")
@click.option("--data", help=f"Dataset folder or fer2013.csv (default {default_data()}).")
@click.option("--backend", type=click.Choice(BACKENDS), default="optuna", show_default=True)
@click.option("--sampler", type=click.Choice(SAMPLERS),
              help="optuna sampler (default tpe); grid: every combination of the choice parameters, ranges at "
                   "the paper's values.")
@click.option("--pruner", type=click.Choice(PRUNERS), help="optuna pruner, judged per epoch (default median).")
@click.option("--tuner", type=click.Choice(TUNERS), help="keras-tuner tuner (default bayesian).")
@click.option("--objective", type=click.Choice(tuple(OBJECTIVES)), default="accuracy", show_default=True,
              help="Validation metric to optimize (loss is minimized).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Start no new trial after this long.")
@click.option("--max-epochs", type=click.IntRange(min=1), metavar="N",
              help="Cap each phase's epochs (epochs, frozen_epochs) for a cheap search.")
@click.option("--subset", type=click.FloatRange(0, 1, min_open=True), default=1.0, show_default=True,
              help="Stratified fraction of the training split.")
@click.option("--backbone", help="Backbone for every trial (default densenet169).")
@click.option("--weights", help="imagenet | none | a weights file | a run's model.keras (default per regime).")
@click.option("--precision", type=click.Choice(PRECISIONS),
              help="Every trial's dtype policy (default float32); docs/performance.md says which to use on a GPU.")
@click.option("--jit/--no-jit", default=None, help="XLA-compile every trial's training step (default off).")
@click.option("--frozen-augmentation", type=click.Choice(FROZEN_AUGMENTATIONS),
              help="Transfer phase 1: live (default, the paper's) augments through the frozen backbone every "
                   "epoch; none trains the head on backbone features computed once for the whole study (exact, "
                   "far faster); views caches --frozen-feature-views augmented views per image.")
@click.option("--frozen-feature-views", type=click.IntRange(min=1), metavar="K",
              help="With --frozen-augmentation views: augmented views cached per image (default 4).")
@study_options
@click.option("--seed", type=int, default=0, show_default=True, help="Training seed of every trial; seeds the sampler.")
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path(),
              help="Trials go to RUNS_DIR/<study>/.")
@click.option("--workers", type=click.IntRange(min=1), metavar="N",
              help="Start N worker processes here on the one study (one GPU each when there are GPUs); "
                   "other machines may join with the same --study and --storage. Optuna backend only.")
@click.option("--heartbeat", type=click.IntRange(min=1), default=60, show_default=True, metavar="SECONDS",
              help="A running trial's heartbeat interval (optuna backend).")
@click.option("--grace", type=click.IntRange(min=1), default=180, show_default=True, metavar="SECONDS",
              help="A trial without a heartbeat for this long is failed (its worker died) and re-queued once.")
@click.option("--default-trial/--no-default-trial", default=True, show_default=True,
              help="Optuna backend: a new study's first trial trains the defaults (the paper's configuration), "
                   "so the study shows what the search bought.")
def search(workers: int | None, **options: Any) -> None:
    """Search hyperparameters of a regime; every trial is one training run in RUNS_DIR/<study>/trial-<n>."""
    from study.tuning.search import run_search
    from study.tuning.workers import run_pool

    console = Console()
    request = SearchRequest(**options)
    try:
        study = run_pool(request, workers, console) if workers else run_search(request, console)
    except KeyboardInterrupt as exc:
        console.print("[yellow]interrupted[/]: the running trial is marked failed; finished trials are kept.")
        console.print(f"resume with: {resume_command()}", highlight=False, soft_wrap=True)
        sys.exit(128 + getattr(exc, "signum", signal.SIGINT))
    _summarize(console, study, request.storage)


def resume_command() -> str:
    """The command line that was run (a password in it masked): running it again resumes the study."""
    program, *args = sys.argv
    head = ["python", program] if program.endswith(".py") else [program.rsplit("/", 1)[-1]]
    return shlex.join([*head, *(mask_text(arg) for arg in args)])


def _summarize(console: Console, study: Any, storage: str) -> None:
    from study.tuning.views import best_table, study_row

    r = study_row(study)
    console.print(f"study {r['name']}: {r['complete']} complete, {r['pruned']} pruned, {r['failed']} failed")
    if r["best"] is not None:
        console.print(best_table(study))
    implied = storage in (DEFAULT_STORAGE, os.environ.get(STORAGE_ENV))  # the default, or FER_STUDY_STORAGE's
    where = "" if implied else f" --storage {shlex.quote(mask_url(storage))}"
    console.print(f"next: python cli.py show {study.study_name}{where}  |  "
                  f"python cli.py train --from-study {study.study_name} --seeds 3{where}", highlight=False)


@click.command()
@storage_option
def studies(storage: str) -> None:
    """The studies in the store: regime, backend, trials complete/pruned/failed, best value."""
    from study.tuning.storage import open_storage
    from study.tuning.views import studies_table, study_rows

    rows = study_rows(open_storage(storage))
    console = table_console()
    empty = "no studies yet: run `python cli.py search --regime scratch --trials 10`"
    console.print(studies_table(rows) if rows else empty)


@click.command()
@click.argument("study_name", metavar="STUDY")
@storage_option
def show(study_name: str, storage: str) -> None:
    """One study's trials (state, value, epochs, run dir or error) and its best parameters."""
    from study.tuning.storage import load_existing
    from study.tuning.views import best_table, best_trial, trials_table

    study = load_existing(study_name, storage)
    console = table_console()
    console.print(trials_table(study))
    if best_trial(study) is not None:
        console.print(best_table(study))
    for run_dir in study.user_attrs.get("final_runs", []):
        console.print(f"final run: {run_dir}")


@click.command()
@click.option("--regime", type=click.Choice(REGIMES), required=True)
def space(regime: str) -> None:
    """The regime's search space: each parameter's kind, range or choices, scale and paper default."""
    from search_spaces import space_for
    from study.tuning.views import space_table

    table_console().print(space_table(space_for(regime)))


def table_console() -> Console:
    """A terminal keeps its width; a pipe or CI log (80 columns by default) gets room for every column."""
    console = Console()
    return console if console.is_terminal else Console(width=160)


COMMANDS: list[click.Command] = [search, studies, show, space]
