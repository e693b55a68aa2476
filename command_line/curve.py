"""The curve command: what transfer buys as training data grows (``study.experiments.curve``).

curve  both regimes trained on nested fractions of the training split, several seeds each, every run
       evaluated on the same test split and recorded in the study store; ``report`` draws it
"""
from __future__ import annotations

from typing import Any

import click
from rich.console import Console

from command_line.options import config_options, config_values, storage_option, track_option
from command_line.progress import ConsoleEvents
from command_line.train import TRAIN_SHORTCUTS
from study.config import DEFAULT_DATA
from study.errors import TrialFailed
from study.experiments.requests import CurveRequest, curve_default
from study.store import DEFAULT_STORAGE, mask_url
from study.tracking import check_trackers

console = Console(soft_wrap=True)  # long paths stay copyable when output is piped
CURVE_SHORTCUTS = tuple(k for k in TRAIN_SHORTCUTS if k not in ("regime", "subset"))


def _fractions(ctx: click.Context, param: click.Parameter, value: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of numbers such as 0.05,0.1,0.25") from None


@click.command()
@click.option("--data", "data_path", default=DEFAULT_DATA, show_default=True, help="Dataset folder or fer2013.csv.")
@click.option("--fractions", default=",".join(f"{f:g}" for f in curve_default("fractions")), show_default=True,
              callback=_fractions,
              help="Shares of the training pool, nested: each seed's 5% lies inside its 10%.")
@click.option("--seeds", default=curve_default("seeds"), show_default=True, type=click.IntRange(min=1),
              help="Runs per regime and fraction (the configuration's seed, +1, ...).")
@click.option("--regimes", default=",".join(curve_default("regimes")), show_default=True, help="Which regimes, comma-separated.")
@click.option("--from-study", "from_studies", multiple=True, metavar="STUDY",
              help="Train a regime with its study's best configuration (once per regime; else its defaults).")
@click.option("--pretrain-fraction", default=curve_default("pretrain_fraction"), show_default=True, type=click.FloatRange(0, 1, max_open=True),
              help="Set this share of the training split aside, pretrain the transfer backbone on it from "
                   "scratch, and use that run as transfer's weights (for where ImageNet cannot be had); the "
                   "curve draws from the rest.")
@click.option("--name", default="curve", show_default=True, help="The curve's study in the store; a rerun resumes it.")
@click.option("--runs", "runs_dir", default=curve_default("runs_dir"), show_default=True, type=click.Path(),
              help="Runs go to RUNS/NAME/<regime>-f<fraction>-seed<seed>.")
@config_options(*CURVE_SHORTCUTS)
@storage_option
@track_option
def curve(data_path: str, fractions: tuple[float, ...], seeds: int, regimes: str, from_studies: tuple[str, ...],
          pretrain_fraction: float, name: str, runs_dir: str, config_file: str | None, overrides: tuple[str, ...],
          storage: str, track: tuple[str, ...], **options: Any) -> None:
    """Both regimes on nested fractions of the training data, evaluated on the same test split.

    Every other option is train's: --set KEY=VALUE and --config reach both regimes (over a study's best
    with --from-study). Resumable: run the same command again after an interruption.

    \b
    python cli.py curve --data data/fer --fractions 0.05,0.1,0.25,0.5,1 --seeds 3
    python cli.py curve --data data/fer --backbone mini_xception --pretrain-fraction 0.5 --fractions 0.02,0.05,0.1,0.25 --seeds 2
    python cli.py curve --data data/fer --from-study scratch-optuna --from-study transfer-optuna
    python cli.py report
    """
    check_trackers(track)  # mlflow without its package is refused before TensorFlow loads
    from study.experiments.curve import plan_curve, run_curve  # deferred: training loads TensorFlow

    values = config_values(config_file, overrides, options, CURVE_SHORTCUTS)
    chosen = tuple(r.strip() for r in regimes.split(",") if r.strip())  # plan_curve refuses an unknown one
    plan = plan_curve(CurveRequest(name, data_path, fractions, seeds, chosen, values, from_studies, storage,
                                   pretrain_fraction, runs_dir))
    cells = len(plan.cells())
    console.print(f"curve {name}: {', '.join(plan.configs)} x fractions {', '.join(f'{f:g}' for f in plan.fractions)} "
                  f"x seeds {', '.join(map(str, plan.seeds))} = {cells} runs"
                  + (f", after pretraining on {pretrain_fraction:.0%} of the training split" if pretrain_fraction else ""))
    for regime, source in plan.sources.items():
        console.print(f"  {regime}: {source}; weights {plan.configs[regime]['weights']}", highlight=False)
    done = run_curve(plan, storage, events=ConsoleEvents(console), track=track)
    console.print(f"curve {name}: {len(done.trained)} runs trained now, {len(done.found)} found done; "
                  f"its runs are in {plan.folder}. Draw it with: python cli.py report"
                  + (f" --storage {mask_url(storage)}" if storage != DEFAULT_STORAGE else ""), highlight=False)
    if done.failed:
        raise TrialFailed(f"{len(done.failed)} run(s) of curve {name} failed ({done.failed[0][1]}); the report shows "
                          "the curve without them, and the same command retries them")


COMMANDS: list[click.Command] = [curve]
