"""The train and evaluate commands: one run from a config (or a study's best), and a run's metrics.

train     one run with the paper's settings (or a config), evaluated on test; or, with --from-study,
          a study's best configuration retrained once per seed
evaluate  every metric of the paper from a run's stored predictions, with its figures
pretrain  a transfer source trained from scratch on a share of the faces (named later with --weights)
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from command_line.options import config_options, config_values, storage_option, track_option
from command_line.console_tables import metrics_tables, run_summary
from command_line.progress import ConsoleEvents
from study import config as config_mod
from study.config import DEFAULT_DATA, TrainConfig
from study.model_files import check_weights_source
from study.data import CLASSES, Dataset, load_dataset, training_share
from study.ensembles import ensemble
from study.experiments.requests import FINAL
from study.pretraining import DEFAULT_FRACTION
from study.pretraining import pretrain as pretrain_run
from study.runs import Run
from study.tracking import check_trackers

console = Console(soft_wrap=True)  # long paths stay copyable when output is piped
events = ConsoleEvents(console)  # training's progress, drawn (the core only tells it)
TRAIN_SHORTCUTS = ("regime", "backbone", "weights", "epochs", "frozen_epochs", "batch_size", "seed", "subset",
                   "precision", "jit")


@click.command()
@click.option("--data", "data_path", default=DEFAULT_DATA, show_default=True, help="Dataset folder or fer2013.csv.")
@config_options(*TRAIN_SHORTCUTS)
@click.option("--out", type=click.Path(), help="Run directory (default runs/<regime>-<backbone>-<time>).")
@click.option("--strict", is_flag=True, help="Fail on unreadable images instead of skipping them.")
@click.option("--from-study", help="Retrain the best trial of this study (see `search`).")
@click.option("--trial", type=click.IntRange(min=0), metavar="N",
              help="With --from-study: retrain trial N instead of the best (e.g. a point of an edge search's Pareto "
                   "front, which has no single best: `show STUDY` lists it).")
@click.option("--seeds", default=FINAL["seeds"], show_default=True, type=click.IntRange(min=1), help="With --from-study: runs, one per seed.")
@click.option("--top", default=FINAL["top"], show_default=True, type=click.IntRange(min=1), metavar="K",
              help="With --from-study: retrain the K best trials (each with --seeds seeds) as one ensemble's members, "
                   "kept as the study's top runs (the report shows their ensemble), not as its final runs.")
@storage_option
@track_option
def train(data_path: str, config_file: str | None, overrides: tuple[str, ...], out: str | None, strict: bool,
          from_study: str | None, trial: int | None, seeds: int, top: int, storage: str, track: tuple[str, ...],
          **options: Any) -> None:
    """Train one run with the paper's settings (or a config), evaluate it on test, save every artifact."""
    values = config_values(config_file, overrides, options, TRAIN_SHORTCUTS)
    check_trackers(track)  # mlflow without its package is refused before anything loads
    if from_study:
        data = data_path if data_path != DEFAULT_DATA else None
        _train_from_study(from_study, seeds, storage, data, values, track, top, trial)
        return
    if top != 1:
        raise click.UsageError("--top K retrains a study's K best trials: it needs --from-study")
    if trial is not None:
        raise click.UsageError("--trial N retrains a study's trial: it needs --from-study")
    config = config_mod.from_dict(values)
    train_and_report(config, data_path, Path(out) if out else default_run_dir(config), strict=strict, track=track)


def _train_from_study(name: str, seeds: int, storage: str, data_path: str | None, overrides: dict,
                      track: tuple[str, ...] = (), top: int = 1, trial: int | None = None) -> None:
    from study.experiments.final import train_from_study  # deferred: training loads TensorFlow

    results = train_from_study(name, storage=storage, seeds=seeds, data=data_path, overrides=overrides or None,
                               events=events, track=track, top=top, trial=trial)
    for result in results:
        test = result.metrics["test"]
        console.print(f"{'final' if top == 1 else f'top-{top}'} run {result.run_dir}: test accuracy {test['accuracy']:.4f} (majority-class rate "
                      f"{test['baseline']['majority_rate']:.4f}), macro-F1 {test['macro_f1']:.4f}")
    if len(results) > 1:
        events.say(_ensemble_line([Run.load(result.run_dir) for result in results]))


def _ensemble_line(runs: list[Run]) -> str:
    """The final runs as one ensemble (the mean of their probabilities) on test, beside their mean."""
    from study.evaluation import compute_metrics  # deferred: keras, through study.learning

    members = ensemble(runs, "test")
    metrics = compute_metrics(members.labels, members.probs)
    mean = sum(run.metrics["test"]["accuracy"] for run in runs) / len(runs)
    return (f"ensemble of the {len(runs)} runs (the mean of their probabilities): test accuracy "
            f"{metrics['accuracy']:.4f} ({metrics['accuracy'] - mean:+.4f} on the runs' mean {mean:.4f}), macro-F1 "
            f"{metrics['macro_f1']:.4f}; `python cli.py report` compares it with the other regime's")


def default_run_dir(config: TrainConfig) -> Path:
    return Path("runs") / f"{config.regime}-{config.backbone}-{time.strftime('%Y%m%d-%H%M%S')}"


def train_and_report(config: TrainConfig, data_path: str, run_dir: Path, *, strict: bool = False,
                     track: tuple[str, ...] = ()):
    """Load data, train with progress, evaluate on test, print a summary table."""
    from study.tracking.callback import train_tracked  # deferred: training loads TensorFlow

    check_weights_source(config.weights)  # before the data is read
    dataset = load_dataset(data_path, val_fraction=config.val_fraction, subset=config.subset, strict=strict)
    _describe_start(config, dataset, run_dir)
    result = train_tracked(config, dataset, run_dir, track, events=events, evaluate_test=True)
    tta = f", test-time augmentation {config.tta}" if config.tta != "none" else ""
    console.print(run_summary(result.metrics, result.history, title=f"{config.regime} / {config.backbone}{tta}"))
    console.print(f"run saved to [bold]{run_dir}[/]; evaluate it with: python cli.py evaluate {run_dir}")
    return result


def _describe_start(config: TrainConfig, dataset: Dataset, run_dir: Path) -> None:
    sizes = ", ".join(f"{name} {len(getattr(dataset, name).y)}" for name in ("train", "val", "test"))
    banner = " [bold yellow](SYNTHETIC sample: drawn faces, not real data)[/]" if dataset.synthetic else ""
    console.print(f"data {dataset.source}{banner}: {sizes}; fingerprint {dataset.fingerprint}")
    console.print(training_share(config.subset, len(dataset.train.y)))
    if dataset.report.skipped:
        console.print(f"[yellow]skipped {len(dataset.report.skipped)} unreadable file(s)[/], e.g. {dataset.report.skipped[0]}")
    console.print(f"{config.regime} regime, backbone {config.backbone}, weights {config.weights} -> {run_dir}")


@click.command()
@click.argument("run_dir", type=click.Path())
@click.option("--split", type=click.Choice(["auto", "val", "test"]), default="auto", show_default=True,
              help="auto: test when the run has it (final runs), else validation.")
@click.option("--out", type=click.Path(), help="Figures folder (default RUN_DIR/figures).")
def evaluate(run_dir: str, split: str, out: str | None) -> None:
    """Every metric of the paper from a run's stored predictions, with its figures."""
    evaluate_run(Path(run_dir), split, Path(out) if out else None)


def evaluate_run(run_dir: Path, split: str, out: Path | None) -> None:
    """Metrics recomputed by scikit-learn from the stored probabilities, printed and drawn."""
    from reports import figures  # deferred: matplotlib
    from study.evaluation import compute_metrics, curves  # deferred: keras, through study.learning

    run = Run.load(run_dir)
    if split == "auto":
        split = "test" if "test_labels" in run.predictions else "val"
    labels, probs = run.split(split)
    metrics = compute_metrics(labels, probs)
    tta = f", test-time augmentation {run.config.tta}" if run.config.tta != "none" else ""
    for table in metrics_tables(metrics, title=f"{run_dir} ({split}, {metrics['n']} images{tta})"):
        console.print(table)
    out = out or run_dir / "figures"
    lines = curves(labels, probs)
    paths = [
        figures.training_curves(run.history, out / "history.png", title=f"{run.config.regime} / {run.config.backbone}"),
        figures.confusion_matrix(metrics["confusion_matrix"], CLASSES, out / f"confusion_{split}.png"),
        figures.roc_curves(lines["roc"], metrics["roc_auc"], out / f"roc_{split}.png"),
        figures.pr_curves(lines["pr"], metrics["average_precision"], out / f"pr_{split}.png"),
    ]
    console.print("figures: " + ", ".join(str(p) for p in paths))


PRETRAIN_SHORTCUTS = ("backbone", "epochs", "batch_size", "seed", "precision", "jit")


@click.command()
@click.option("--data", "data_path", default=DEFAULT_DATA, show_default=True, help="Dataset folder or fer2013.csv.")
@click.option("--fraction", default=DEFAULT_FRACTION, show_default=True, type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Stratified share of the training split to pretrain on; later runs on these weights leave it out.")
@config_options(*PRETRAIN_SHORTCUTS)
@click.option("--out", type=click.Path(), help="Run directory (default runs/pretrained-<backbone>-<time>).")
@click.option("--strict", is_flag=True, help="Fail on unreadable images instead of skipping them.")
def pretrain(data_path: str, fraction: float, config_file: str | None, overrides: tuple[str, ...], out: str | None,
             strict: bool, **options: Any) -> None:
    """Pretrain a backbone from scratch on a share of the faces: a transfer source where ImageNet is out of reach.

    Then: train --regime transfer --weights OUT. Runs on those weights train without the faces the
    backbone saw (matched by content), and their manifest says how many were left out.
    """
    values = config_values(config_file, overrides, options, PRETRAIN_SHORTCUTS)
    config = config_mod.from_dict({**values, "regime": "scratch", "weights": "none"})
    run_dir = Path(out) if out else Path("runs") / f"pretrained-{config.backbone}-{time.strftime('%Y%m%d-%H%M%S')}"
    dataset = load_dataset(data_path, val_fraction=config.val_fraction, strict=strict)
    _describe_start(config, dataset, run_dir)
    console.print(f"pretraining on a stratified {fraction:.0%} of the training split "
                  f"({round(fraction * len(dataset.train.y)):,} of {len(dataset.train.y):,} faces)")
    result = pretrain_run(config, dataset, run_dir, fraction=fraction, events=events)  # loads TensorFlow only now
    console.print(run_summary(result.metrics, result.history, title=f"pretraining / {config.backbone}"))
    val = result.metrics["val"]
    if not val["learned"]:
        console.print(f"[bold red]this backbone did not learn[/] (validation accuracy {val['accuracy']:.3f}, majority "
                      f"rate {val['baseline']['majority_rate']:.3f}): it is no transfer source")
    console.print(f"transfer from it with: python cli.py train --regime transfer --backbone {config.backbone} "
                  f"--weights {run_dir} --data {data_path}")


COMMANDS: list[click.Command] = [train, evaluate, pretrain]
