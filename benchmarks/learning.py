"""Why the paper's defaults stalled, measured: ``study.diagnostics.LearningProbe`` on real faces.

    python -m benchmarks.learning [--quick] [--only NAME ...] [--write docs/learning.md]

Each experiment is one ``study.training.train`` run of the scratch regime on ``../shared/fer2013``
(a generated sample when it is absent, or with ``--quick``), read by the probe every few steps: the
data term against the L2 penalty, gradient norms per layer group (data term; and the penalty's for
the first Dense layer), dead ReLUs in the head, the predictions' entropy and top-answer share, and
accuracy on 1,024 validation faces beside their majority rate. The experiments change one silent
setting at a time from the defaults this project had before (L2 0.01, no momentum), then show the
defaults it has now. ``--write`` puts each experiment's output between the file's
``<!-- learning:NAME:start -->`` and ``<!-- learning:NAME:end -->`` lines, so ``--only NAME`` rewrites
that experiment alone. The long ones run only when named: ``densenet169-3-epochs`` (about 15 minutes
on 2 cores: as far as the stall guard looks) and ``densenet169-paper-schedule`` (the paper's 20
epochs of DenseNet169 with the probe: 65 minutes on a 2-core AMD EPYC with AVX-512, more without it).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmarks.common import between as generic_between
from benchmarks.common import existing_file
from benchmarks.common import faces, log, machine, quiet, sample, scratch_dir
from study.config import FACE_SIZE, TrainConfig
from study.data import load_dataset
from study.diagnostics import PROBE_TRAIN, LearningProbe, ProbeBatches
from study.pipeline import training_steps
from study.training import train

AS_LANDED = {"l2": 0.01, "momentum": 0.0, "optimizer": "sgd"}  # the defaults before docs/learning.md
# the defaults chosen on mini_xception, before DenseNet169's own (bn_momentum, Adam from scratch)
MINI_XCEPTION_DEFAULTS = {"optimizer": "sgd", "bn_momentum": 0.99}
# the paper's constant rate, which every DenseNet169 experiment below trained with before a DenseNet from scratch
# got cosine decay after one warmup epoch by default (study.config.DENSENET_SCRATCH): they keep measuring that
CONSTANT = {"lr_schedule": "constant", "warmup_epochs": 0}


@dataclass(frozen=True)
class Experiment:
    name: str
    backbone: str
    changes: dict[str, Any] = field(default_factory=dict)
    steps: int = 600  # training steps, rounded up to whole epochs
    every: int = 100
    subset: float = 1.0  # the stratified share of the training split it trains on (validation stays whole)

    def describe(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.changes.items()) or "the defaults"
        share = f", on a stratified {self.subset:.0%} of the training faces" if self.subset < 1 else ""
        return f"{self.name}: {self.backbone}, {shown}{share}"


EXPERIMENTS = (
    Experiment("as-landed", "mini_xception", AS_LANDED),
    Experiment("l2-only", "mini_xception", {**AS_LANDED, "l2": 1e-4}),
    Experiment("momentum-0.9", "mini_xception", {**AS_LANDED, "l2": 1e-4, "momentum": 0.9}),
    Experiment("defaults", "mini_xception", {}),
    Experiment("defaults-12-epochs", "mini_xception", {}, steps=12 * 305, every=305),
    Experiment("defaults-12-epochs-l2-1e-3", "mini_xception", {"l2": 1e-3}, steps=12 * 305, every=305),
    Experiment("defaults-12-epochs-no-augmentation", "mini_xception", {"rotation": 0.0, "zoom": 0.0, "flip": False},
               steps=12 * 305, every=305),
    Experiment("defaults-12-epochs-stronger-augmentation", "mini_xception", {"rotation": 20.0, "zoom": 0.2},
               steps=12 * 305, every=305),
    Experiment("densenet169-as-landed", "densenet169", {**AS_LANDED, "bn_momentum": 0.99, **CONSTANT}, steps=300,
               every=50),
    Experiment("densenet169-defaults", "densenet169", {**MINI_XCEPTION_DEFAULTS, **CONSTANT}, steps=300, every=50),
    Experiment("densenet169-sgd-2-epochs", "densenet169", {"optimizer": "sgd", **CONSTANT}, steps=2 * 305, every=305),
    Experiment("densenet169-sgd-0.1-nesterov", "densenet169",
               {"optimizer": "sgd", "learning_rate": 0.1, "momentum": 0.9, "nesterov": True, **CONSTANT},
               steps=2 * 305, every=305),
    Experiment("densenet169-5-epochs", "densenet169", {"optimizer": "adam", **CONSTANT}, steps=5 * 305, every=305),
    # the defaults (Adam, cosine decay after one warmup epoch) for the paper's 20 epochs, and for 5 (the rate
    # decaying to 0 over those 5), against densenet169-5-epochs's constant rate
    Experiment("densenet169-paper-schedule", "densenet169", {}, steps=20 * 305, every=305),
    Experiment("densenet169-5-epochs-cosine", "densenet169", {"lr_schedule": "cosine", "warmup_epochs": 1},
               steps=5 * 305, every=305),
    # Input size (issue 26): the defaults at 48x48 and upsampled to 96x96 inside the model (4x the work),
    # 3 epochs on a quarter of the training faces (76 steps an epoch)
    Experiment("densenet169-input-48", "densenet169", {"input_size": 48}, steps=3 * 76, every=38, subset=0.25),
    Experiment("densenet169-input-96", "densenet169", {"input_size": 96}, steps=3 * 76, every=38, subset=0.25),
)
# run only when named with --only: DenseNet169 trains at about 100 faces a second on 2 cores
LONG = ("densenet169-sgd-2-epochs", "densenet169-sgd-0.1-nesterov", "densenet169-5-epochs", "densenet169-paper-schedule",
        "densenet169-5-epochs-cosine", "densenet169-input-48", "densenet169-input-96")
COLUMNS = (
    ("step", "step", "{:.0f}"),
    ("val acc", "val_accuracy", "{:.3f}"),
    ("val acc, batch stats", "val_accuracy_batch_statistics", "{:.3f}"),
    ("top answer", "top_class_share", "{:.2f}"),
    ("entropy", "entropy", "{:.3f}"),
    ("data term", "data_term", "{:.3f}"),
    ("L2 penalty", "penalty", "{:.3f}"),
    ("|g| bottom", "grad_backbone_bottom", "{:.3g}"),
    ("|g| top", "grad_backbone_top", "{:.3g}"),
    ("|g| dense1", "grad_head_dense1", "{:.3g}"),
    ("|g_L2| dense1", "penalty_grad_head_dense1", "{:.3g}"),
    ("|g| output", "grad_head_output", "{:.3g}"),
    ("|w| backbone", "backbone_kernel_norm", "{:.4g}"),
    ("|g| backbone, 3 faces", "grad_backbone_small_batch", "{:.3g}"),
    ("dead d1/d2/d3", None, ""),
)


def run_experiment(experiment: Experiment, data, quick: bool) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    per_epoch = training_steps(len(data.train.y), TrainConfig().batch_size)
    steps, every = (min(experiment.steps, 2 * per_epoch), max(1, per_epoch // 2)) if quick else (experiment.steps, experiment.every)
    epochs = max(1, math.ceil(steps / per_epoch))
    config = TrainConfig(regime="scratch", backbone=experiment.backbone, epochs=epochs, stall_epochs=0,
                         subset=experiment.subset, **experiment.changes)
    probe = LearningProbe(ProbeBatches.of(data.train, data.val, n_train=probe_faces(config.input_size)), every=every)
    started = time.perf_counter()
    result = train(config, data, scratch_dir() / f"learning-{experiment.name}", callbacks=[probe])
    summary = {"seconds": time.perf_counter() - started, "epochs": epochs, "steps": probe.step,
               "val_accuracy": result.metrics["val"]["accuracy"], "majority": result.metrics["val"]["baseline"]["majority_rate"],
               "top_answer": result.metrics["val"]["top_answer_share"], "learned": result.metrics["val"]["learned"],
               "n_val": result.metrics["val"]["n"]}
    return probe.rows, summary


def probe_faces(input_size: int) -> int:
    """Training faces the probe's gradients are taken on: ``PROBE_TRAIN`` at 48x48, fewer at a larger input so
    that the pixels stay the same (one DenseNet169 gradient on 256 faces upsampled to 96x96 held more than the
    machine's 24 GB and was killed)."""
    return max(16, round(PROBE_TRAIN * (FACE_SIZE / input_size) ** 2))


def prior_entropy(labels: np.ndarray) -> float:
    """The cross-entropy of always answering the class shares: where a model that learned nothing else sits."""
    shares = np.bincount(labels, minlength=7) / len(labels)
    shares = shares[shares > 0]
    return float(-(shares * np.log(shares)).sum())


def render(experiment: Experiment, rows: list[dict[str, Any]], summary: dict[str, Any], entropy: float) -> str:
    lines = [f"### {experiment.describe()}", ""]
    header = [c[0] for c in COLUMNS]
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        cells = [fmt.format(row[key]) if key and key in row else "-" for _, key, fmt in COLUMNS[:-1]]
        dead = "/".join(f"{100 * row[k]:.0f}%" for k in ("dead_head_dense1", "dead_head_dense2", "dead_head_dense3")
                        if k in row)
        lines.append("| " + " | ".join([*cells, dead or "-"]) + " |")
    last = rows[-1]
    share = last["penalty"] / (last["penalty"] + last["data_term"]) if last["penalty"] else 0.0
    lines += ["", (f"After {summary['steps']} steps ({summary['epochs']} epoch(s), {summary['seconds']:.0f} s): "
                   f"validation accuracy {summary['val_accuracy']:.3f} on all {summary['n_val']:,} validation faces "
                   f"against their majority rate {summary['majority']:.3f}; "
                   f"{summary['top_answer']:.1%} of them get the most common answer; "
                   f"learned (above the majority rate, p < 0.01): {'yes' if summary['learned'] else 'NO'}. "
                   f"Data term {last['data_term']:.3f} (the class shares' entropy, what answering the prior scores: "
                   f"{entropy:.3f}); the L2 penalty is {share:.0%} of the objective."), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.learning", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the generated sample and two epochs at most (CI smoke test)")
    parser.add_argument("--only", nargs="+", choices=[e.name for e in EXPERIMENTS],
                        help=f"run these experiments only (the long ones, {', '.join(LONG)}, run only when named)")
    parser.add_argument("--write", type=existing_file, metavar="FILE",
                        help="also write each experiment's output between its <!-- learning:NAME:start/end --> lines")
    args = parser.parse_args(argv)
    chosen = [e for e in EXPERIMENTS if (e.name in args.only if args.only else e.name not in LONG)]
    if args.write:
        text = args.write.read_text()
        for experiment in chosen:  # a file without the markers fails now, not after an hour
            between(text, "", experiment.name)
    quiet()

    path, note = faces(args.quick)
    if args.quick and not note:
        path, note = sample(per_class=30), "generated sample (--quick)"
    loaded = {1.0: load_dataset(path)}
    entropy = prior_entropy(loaded[1.0].train.y)
    header = machine()
    for experiment in chosen:
        log(f"learning: {experiment.describe()}")
        started = time.perf_counter()
        if experiment.subset not in loaded:
            loaded[experiment.subset] = load_dataset(path, subset=experiment.subset)
        data = loaded[experiment.subset]
        rows, summary = run_experiment(experiment, data, args.quick)
        command = f"python -m benchmarks.learning{' --quick' if args.quick else ''} --only {experiment.name}"
        output = "\n".join([
            render(experiment, rows, summary, entropy), f"_{header}. Data: {note or path} ({len(data.train.y):,} "
            f"training, {len(data.val.y):,} validation faces). Command: `{command}` "
            f"({(time.perf_counter() - started) / 60:.1f} min)._", ""])
        print(output, flush=True)
        if args.write:
            args.write.write_text(between(args.write.read_text(), output, experiment.name))
    return 0


def between(text: str, inner: str, name: str) -> str:
    return generic_between(text, inner, f"<!-- learning:{name}:start -->", f"<!-- learning:{name}:end -->")


if __name__ == "__main__":
    sys.exit(main())
