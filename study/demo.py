"""`make demo`: the toolkit end to end on the synthetic sample, sized for a 2-core CPU.

Steps: generate the sample; search each regime (optuna for scratch, keras-tuner for transfer) into
the default study store; retrain each study's best configuration with several seeds and evaluate it
on test; write the report. Re-running it resumes: finished searches and final runs are kept.

ImageNet weights cannot be assumed (no internet in CI; ``mini_xception`` has none), so the transfer
regime's pretrained backbone comes from a scratch run on a *second*, independently generated
sample: transfer from one dataset to another, the same mechanism as ``--weights imagenet`` with
another source. Everything it prints is computed by the commands it runs.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

from study.config import TrainConfig

console = Console(soft_wrap=True)  # long paths stay copyable when output is piped

BACKBONE = "mini_xception"
TRIALS = 6
MAX_EPOCHS = 6  # per phase, for every search trial
SEEDS = 3  # final runs per regime: enough for a confidence interval and paired tests


@dataclass(frozen=True)
class DemoPaths:
    data: Path
    pretrain_data: Path
    runs: Path
    storage: str
    report: Path


def run_demo(paths: DemoPaths) -> None:
    from reports.build import build_report
    from study.tuning.search import SearchRequest, run_search

    _ensure_samples(paths)
    pretrained = _pretrain(paths)
    for regime, backend, weights in (("scratch", "optuna", None), ("transfer", "keras-tuner", str(pretrained))):
        name = f"demo-{regime}-{backend}"
        console.print(Rule(f"search: {regime} regime, {backend}, {TRIALS} trials ({name})"))
        run_search(SearchRequest(regime=regime, trials=TRIALS, data=str(paths.data), backend=backend,
                                 max_epochs=MAX_EPOCHS, backbone=BACKBONE, weights=weights, storage=paths.storage,
                                 study=name, runs_dir=str(paths.runs)))
        _final_runs(name, paths)
    console.print(Rule("report"))
    built = build_report(storage=paths.storage, out=paths.report)
    for fmt, path in built.documents.items():
        console.print(f"{fmt}: {path}")
    console.print(f"runs: {paths.runs}; studies: python cli.py studies --storage {paths.storage}")


def _ensure_samples(paths: DemoPaths) -> None:
    from study.sample import write_sample

    for path, seed in ((paths.data, 0), (paths.pretrain_data, 1)):
        if not path.exists():
            write_sample(path, seed=seed)
            console.print(f"wrote synthetic sample {path} (seed {seed}; drawn faces, not real data)")


def _pretrain(paths: DemoPaths) -> Path:
    """A scratch run on the second sample: the transfer regime's pretrained backbone."""
    from study.cli_support import train_and_report

    run_dir = paths.runs / "demo-pretrain"
    if not run_dir.exists():
        console.print(Rule(f"pretraining {BACKBONE} on {paths.pretrain_data} (stands in for ImageNet)"))
        config = TrainConfig(regime="scratch", backbone=BACKBONE, epochs=15, batch_size=32, learning_rate=0.02,
                             momentum=0.9, l2=1e-4)
        train_and_report(config, str(paths.pretrain_data), run_dir)
    return run_dir / "model.keras"


def _final_runs(study_name: str, paths: DemoPaths) -> None:
    import optuna

    from study.tuning.final import train_from_study
    from study.tuning.storage import open_storage

    done = optuna.load_study(study_name=study_name, storage=open_storage(paths.storage)).user_attrs.get("final_runs", [])
    if len(done) >= SEEDS:
        console.print(f"final runs of {study_name} exist: {', '.join(done)}")
        return
    console.print(Rule(f"final training: best of {study_name}, {SEEDS} seeds, evaluated on test"))
    for result in train_from_study(study_name, storage=paths.storage, seeds=SEEDS, runs_dir=paths.runs):
        console.print(f"{result.run_dir}: test accuracy {result.metrics['test']['accuracy']:.4f}")
