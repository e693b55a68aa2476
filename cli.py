"""fer-study command line: data, train, evaluate, search, studies, report, demo.

Every command parses, validates, builds a config and calls one library function. Bad input ends
with a one-line error and exit status 2, never a traceback.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's C++ start-up chatter, not warnings we act on
# "triggered tf.function retracing": expected when every trial of a search builds a new model.
logging.getLogger("tensorflow").setLevel(logging.ERROR)

import click  # noqa: E402
from rich.console import Console  # noqa: E402

from reports.commands import COMMANDS as report_commands  # noqa: E402
from study.errors import TrialFailed, UserError  # noqa: E402
from study.inference.commands import COMMANDS as inference_commands  # noqa: E402
from study.tuning.commands import COMMANDS as search_commands  # noqa: E402

DEFAULT_DATA = "data/sample"
console = Console(soft_wrap=True)  # long paths stay copyable when output is piped
err_console = Console(stderr=True)


class Cli(click.Group):
    """Turns the toolkit's typed errors into one line on stderr and exit status 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (UserError, TrialFailed) as exc:
            err_console.print("error:", str(exc), style="bold red", markup=False, highlight=False, soft_wrap=True)
            sys.exit(2)


@click.group(cls=Cli, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def cli() -> None:
    """Hyperparameter studies of scratch vs transfer learning for facial emotion recognition."""


# ----------------------------------------------------------------------------------------- data
@cli.group()
def data() -> None:
    """Describe, generate or fetch a dataset."""


@data.command("describe")
@click.argument("path", type=click.Path())
@click.option("--out", default="class_distribution.png", show_default=True, help="PNG of the class distribution.")
@click.option("--strict", is_flag=True, help="Fail on the first unreadable image instead of skipping it.")
def data_describe(path: str, out: str, strict: bool) -> None:
    """Class counts per split, conversions and skipped files, and the class-distribution chart."""
    from reports import console_tables, figures
    from study.data import load_dataset

    dataset = load_dataset(path, strict=strict)
    console.print(console_tables.dataset_card(dataset))
    title = "Class distribution" + (" (synthetic sample)" if dataset.synthetic else "")
    console.print(f"chart: {figures.class_distribution(dataset.counts(), out, title=title)}")


@data.command("sample")
@click.argument("out", type=click.Path(), default=DEFAULT_DATA)
@click.option("--per-class", default=120, show_default=True, type=click.IntRange(min=1), help="Mean train images per class.")
@click.option("--seed", default=0, show_default=True, type=int)
def data_sample(out: str, per_class: int, seed: int) -> None:
    """Write the generated (synthetic) sample dataset in the real folder layout."""
    from study.sample import write_sample

    path = write_sample(out, per_class=per_class, seed=seed)
    console.print(f"wrote a synthetic sample dataset (drawn faces, not real people) to {path}")


@data.command("fetch")
@click.argument("dest", type=click.Path(), required=False)
def data_fetch(dest: str | None) -> None:
    """Download the Kaggle 'emotion-detection-fer' dataset with kagglehub (needs internet)."""
    from study.data import fetch

    console.print(f"dataset at {fetch(dest)}")


# ---------------------------------------------------------------------------------------- train
@cli.command()
@click.option("--regime", type=click.Choice(["scratch", "transfer"]), help="Paper regime (default scratch).")
@click.option("--data", "data_path", default=DEFAULT_DATA, show_default=True, help="Dataset folder or fer2013.csv.")
@click.option("--backbone", help="densenet169 (default), densenet121, densenet201, resnet50, vgg16, efficientnetb0, mobilenetv3small, mini_xception.")
@click.option("--weights", help="imagenet | none | a backbone weights file | a run's model.keras or run directory.")
@click.option("--config", "config_file", type=click.Path(), help="JSON file of config keys (see TrainConfig).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Any config key, e.g. --set epochs=5.")
@click.option("--epochs", type=click.IntRange(min=0), help="Scratch epochs, or transfer fine-tune epochs.")
@click.option("--frozen-epochs", type=click.IntRange(min=0), help="Transfer: max epochs of the frozen phase.")
@click.option("--batch-size", type=click.IntRange(min=1))
@click.option("--seed", type=int)
@click.option("--subset", type=click.FloatRange(0, 1, min_open=True), help="Stratified fraction of train.")
@click.option("--precision", type=click.Choice(["float32", "mixed_float16", "mixed_bfloat16"]))
@click.option("--jit/--no-jit", default=None, help="XLA-compile the training step.")
@click.option("--out", type=click.Path(), help="Run directory (default runs/<regime>-<backbone>-<time>).")
@click.option("--strict", is_flag=True, help="Fail on unreadable images instead of skipping them.")
@click.option("--from-study", help="Retrain the best trial of this study (see `search`).")
@click.option("--seeds", default=1, show_default=True, type=click.IntRange(min=1), help="With --from-study: runs, one per seed.")
@click.option("--storage", default=None, envvar="FER_STUDY_STORAGE",
              help="With --from-study: the study storage URL (env FER_STUDY_STORAGE).")
def train(data_path: str, config_file: str | None, overrides: tuple[str, ...], out: str | None, strict: bool,
          from_study: str | None, seeds: int, storage: str | None, **options) -> None:
    """Train one run with the paper's settings (or a config), evaluate it on test, save every artifact."""
    from study.cli_support import build_config, default_run_dir, parse_overrides, train_and_report

    if from_study:
        data = data_path if data_path != DEFAULT_DATA else None
        _train_from_study(from_study, seeds, storage, data, parse_overrides(overrides))
        return

    config = build_config(config_file, overrides, options)
    train_and_report(config, data_path, Path(out) if out else default_run_dir(config), strict=strict)


def _train_from_study(name: str, seeds: int, storage: str | None, data_path: str | None, overrides: dict) -> None:
    from study.tuning.final import train_from_study

    kwargs = {"storage": storage} if storage else {}
    results = train_from_study(name, seeds=seeds, data=data_path, overrides=overrides or None, announce=console.print,
                               **kwargs)
    for result in results:
        test = result.metrics["test"]
        console.print(f"final run {result.run_dir}: test accuracy {test['accuracy']:.4f} (majority-class rate "
                      f"{test['baseline']['majority_rate']:.4f}), macro-F1 {test['macro_f1']:.4f}")


# ------------------------------------------------------------------------------------- evaluate
@cli.command()
@click.argument("run_dir", type=click.Path())
@click.option("--split", type=click.Choice(["auto", "val", "test"]), default="auto", show_default=True,
              help="auto: test when the run has it (final runs), else validation.")
@click.option("--out", type=click.Path(), help="Figures folder (default RUN_DIR/figures).")
def evaluate(run_dir: str, split: str, out: str | None) -> None:
    """Every metric of the paper from a run's stored predictions, with its figures."""
    from study.cli_support import evaluate_run

    evaluate_run(Path(run_dir), split, Path(out) if out else None)


# ----------------------------------------------------------------------------------------- demo
@cli.command()
@click.option("--data", "data_path", default=DEFAULT_DATA, show_default=True, help="Sample to generate / use.")
@click.option("--runs", "runs_dir", default="runs", show_default=True, type=click.Path())
@click.option("--storage", default=None, help="Study storage URL (default: the search default).")
@click.option("--out", default=None, type=click.Path(), help="Report folder (default: the report default).")
def demo(data_path: str, runs_dir: str, storage: str | None, out: str | None) -> None:
    """Sample data, a search per regime, final runs with 3 seeds, and the report: on a CPU in minutes."""
    from reports.build import DEFAULT_OUT
    from study.demo import DemoPaths, run_demo
    from study.tuning.storage import DEFAULT_STORAGE

    data = Path(data_path)
    run_demo(DemoPaths(data=data, pretrain_data=data.with_name(data.name + "-pretrain"), runs=Path(runs_dir),
                       storage=storage or DEFAULT_STORAGE, report=Path(out or DEFAULT_OUT)))


def _register(commands: list[click.Command]) -> None:
    for command in commands:
        cli.add_command(command)


_register(search_commands)
_register(report_commands)
_register(inference_commands)

if __name__ == "__main__":
    cli()
