"""What the CLI's train and evaluate commands do, kept out of cli.py so it stays a thin parser."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console

from study import config as config_mod
from study.config import TrainConfig
from study.data import training_share
from study.errors import ConfigError

console = Console(soft_wrap=True)  # long paths stay copyable when output is piped

# CLI option name -> config key, for options that map one to one.
_OPTION_KEYS = ("regime", "backbone", "weights", "epochs", "frozen_epochs", "batch_size", "seed", "subset", "precision", "jit")


def build_config(config_file: str | None, overrides: tuple[str, ...], options: dict[str, Any]) -> TrainConfig:
    """Paper defaults < --config file < explicit options < --set KEY=VALUE."""
    values: dict[str, Any] = config_mod.read_file(config_file) if config_file else {}
    values.update({k: v for k in _OPTION_KEYS if (v := options.get(k)) is not None})
    values.update(parse_overrides(overrides))
    return config_mod.from_dict(values)


def parse_overrides(overrides: tuple[str, ...]) -> dict[str, str]:
    parsed = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        parsed[key.strip()] = value.strip()
    return parsed


def default_run_dir(config: TrainConfig) -> Path:
    return Path("runs") / f"{config.regime}-{config.backbone}-{time.strftime('%Y%m%d-%H%M%S')}"


def train_and_report(config: TrainConfig, data_path: str, run_dir: Path, *, strict: bool = False):
    """Load data, train with progress, evaluate on test, print a summary table."""
    from reports.console_tables import run_summary
    from study.data import load_dataset
    from study.training import train

    dataset = load_dataset(data_path, val_fraction=config.val_fraction, subset=config.subset, strict=strict)
    _describe_start(config, dataset, run_dir)
    result = train(config, dataset, run_dir, evaluate_test=True)
    console.print(run_summary(result.metrics, result.history, title=f"{config.regime} / {config.backbone}"))
    console.print(f"run saved to [bold]{run_dir}[/]; evaluate it with: python cli.py evaluate {run_dir}")
    return result


def _describe_start(config: TrainConfig, dataset, run_dir: Path) -> None:
    sizes = ", ".join(f"{name} {len(getattr(dataset, name).y)}" for name in ("train", "val", "test"))
    banner = " [bold yellow](SYNTHETIC sample: drawn faces, not real data)[/]" if dataset.synthetic else ""
    console.print(f"data {dataset.source}{banner}: {sizes}; fingerprint {dataset.fingerprint}")
    console.print(training_share(config.subset, len(dataset.train.y)))
    if dataset.report.skipped:
        console.print(f"[yellow]skipped {len(dataset.report.skipped)} unreadable file(s)[/], e.g. {dataset.report.skipped[0]}")
    console.print(f"{config.regime} regime, backbone {config.backbone}, weights {config.weights} -> {run_dir}")


def evaluate_run(run_dir: Path, split: str, out: Path | None) -> None:
    """Metrics recomputed by scikit-learn from the stored probabilities, printed and drawn."""
    from reports import figures
    from reports.console_tables import metrics_tables
    from study.data import CLASSES
    from study.evaluation import compute_metrics, curves
    from study.runs import Run

    run = Run.load(run_dir)
    if split == "auto":
        split = "test" if "test_labels" in run.predictions else "val"
    labels, probs = run.split(split)
    metrics = compute_metrics(labels, probs)
    for table in metrics_tables(metrics, title=f"{run_dir} ({split}, {metrics['n']} images)"):
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
