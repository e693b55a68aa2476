"""Options several commands share: the study store, and the training settings (``TrainConfig``).

Every training setting is a ``TrainConfig`` key, and every command that trains takes all of them the
same way: ``--config FILE`` (a JSON object of keys) and ``--set KEY=VALUE`` (repeatable). A few
keys also have an option of their own (``SHORTCUTS``, e.g. ``--backbone``); each is only another
way to write ``--set``. Precedence: the paper's defaults < ``--config`` < shortcuts < ``--set``.
A new TrainConfig field needs nothing here: ``--set new_key=...`` reaches it.
"""
from __future__ import annotations

from typing import Any, Callable

import click
from rich.console import Console

from study import config as config_mod
from study.config import BACKBONE_NAMES, FROZEN_AUGMENTATIONS, PRECISIONS, REGIMES, TrainConfig
from study.errors import ConfigError
from study.store import DEFAULT_STORAGE, STORAGE_ENV
from study.tracking import TRACKERS

storage_option = click.option(
    "--storage", default=DEFAULT_STORAGE, show_default=True, metavar="URL", envvar=STORAGE_ENV, show_envvar=True,
    help="Study store: an optuna storage URL (sqlite:///..., postgresql+psycopg2://USER@HOST:PORT/DB). Keep a "
         "password out of the command line: PGPASSWORD, ~/.pgpass, or the whole URL in the environment.",
)
study_option = click.option("--study", "study", metavar="NAME", help="Study name (default <regime>-<backend>).")
track_option = click.option(
    "--track", "track", multiple=True, type=click.Choice(TRACKERS),
    help="Also log every run (per-epoch metrics, parameters, state, results) to TensorBoard (event files under "
         "RUNS/tensorboard/<study>) or MLflow (an experiment per study at MLFLOW_TRACKING_URI, else ./mlruns; "
         "pip install -e '.[mlflow]'). Repeatable. A tracker that fails warns once; training goes on.",
)

# TrainConfig keys with an option of their own: key -> click.option keyword arguments.
SHORTCUTS: dict[str, dict[str, Any]] = {
    "regime": {"type": click.Choice(REGIMES), "help": "Paper regime (default scratch)."},
    "backbone": {"help": f"{TrainConfig.backbone} (default), "
                 + ", ".join(n for n in BACKBONE_NAMES if n != TrainConfig.backbone) + "."},
    "weights": {"help": "imagenet | none | a backbone weights file | a run's model.keras or run directory "
                        "(default per regime)."},
    "epochs": {"type": click.IntRange(min=0), "help": "Scratch epochs, or transfer fine-tune epochs."},
    "frozen_epochs": {"type": click.IntRange(min=0), "help": "Transfer: max epochs of the frozen phase."},
    "batch_size": {"type": click.IntRange(min=1)},
    "seed": {"type": int, "help": "Training seed (default 0); a search's also seeds its sampler."},
    "subset": {"type": click.FloatRange(0, 1, min_open=True), "help": "Stratified fraction of train (default 1)."},
    "precision": {"type": click.Choice(PRECISIONS),
                  "help": "dtype policy (default float32); docs/performance.md says which to use on a GPU."},
    "jit": {"flag": True, "help": "XLA-compile the training step (default off)."},
    "frozen_augmentation": {
        "type": click.Choice(FROZEN_AUGMENTATIONS),
        "help": "Transfer phase 1: live (train's default, the paper's) augments through the frozen backbone every "
                "epoch; views (search's default: it matched live on real faces, README \"Speed\") caches "
                "--frozen-feature-views augmented views per image once; none trains the head on backbone features "
                "computed once (exact, fastest)."},
    "frozen_feature_views": {"type": click.IntRange(min=1), "metavar": "K",
                             "help": "With --frozen-augmentation views: augmented views cached per image (default 4)."},
}


def config_options(*keys: str) -> Callable[[Callable], Callable]:
    """``--config``, ``--set`` and the shortcut options of ``keys``; the command gets them as
    ``config_file``, ``overrides`` and one keyword per key (None when not given)."""
    def decorate(command: Callable) -> Callable:
        for key in reversed(keys):
            command = _shortcut(key)(command)
        command = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                               help="Any TrainConfig key, e.g. --set epochs=5 (repeatable).")(command)
        return click.option("--config", "config_file", type=click.Path(),
                            help="JSON file of TrainConfig keys.")(command)
    return decorate


def _shortcut(key: str) -> Callable[[Callable], Callable]:
    spec = dict(SHORTCUTS[key])
    name = "--" + key.replace("_", "-")
    if spec.pop("flag", False):
        return click.option(f"{name}/--no-{key.replace('_', '-')}", key, default=None, **spec)
    return click.option(name, key, **spec)


def config_values(config_file: str | None, overrides: tuple[str, ...], options: dict[str, Any],
                  shortcuts: tuple[str, ...]) -> dict[str, Any]:
    """The TrainConfig keys given, by precedence; the command's ``shortcuts`` are popped from ``options``."""
    values: dict[str, Any] = config_mod.read_file(config_file) if config_file else {}
    for key in shortcuts:
        value = options.pop(key, None)
        if value is not None:
            values[key] = value
    values.update(parse_overrides(overrides))
    return values


def parse_overrides(overrides: tuple[str, ...]) -> dict[str, str]:
    parsed = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        parsed[key.strip()] = value.strip()
    return parsed


def table_console() -> Console:
    """A terminal keeps its width; a pipe or CI log (80 columns by default) gets room for every column."""
    console = Console()
    return console if console.is_terminal else Console(width=160)
