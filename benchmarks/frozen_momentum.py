"""Why DenseNet169's transfer regime needs SGD without momentum: its frozen phase by momentum, on real faces.

    python -m benchmarks.frozen_momentum [--quick] [--write docs/learning.md]

The transfer regime's first phase trains the paper's head on a frozen backbone with SGD at the paper's
0.01. Each row is that phase alone (4 epochs, no fine-tuning, the stall guard off) from the same
backbone: README row (d)'s DenseNet169, pretrained from scratch on 40% of ``../shared/fer2013``'s
training split (kept by ``benchmarks.accuracy``; trained first, about an hour, when it is not), on
the other 60%. The first rows train the head on the backbone's features computed once
(``frozen_augmentation none``: seconds a row once the first has computed them); the last two as the
paper does, on augmented faces through the frozen backbone every epoch (minutes). What it shows: the
momentum the project chose on mini_xception (0.99) and the classic 0.9 turn the loss to NaN within the
first epoch on features; through live augmentation 0.99 leaves the head at the majority rate; without
momentum (Keras's default, the paper's literal SGD) the head learns at once; 0.99 at a tenth of the
rate learns, but its objective climbs. ``--quick``: a backbone pretrained for one epoch and one frozen
epoch a row, on the generated sample (a smoke test: no conclusion).
"""
from __future__ import annotations

import time
from typing import Any

from benchmarks.accuracy import FULL, PRETRAIN_FRACTION, QUICK, _densenet_config, _kept_run
from benchmarks.common import Row, faces, log, main, scratch_dir
from study.config import TrainConfig
from study.data import load_dataset
from study.errors import TrialFailed
from study.pretraining import leave_out_pretraining_faces, pretrain
from study.training import train

EPOCHS = 4
SETTINGS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("momentum 0.99 (ours for other backbones)", {"momentum": 0.99}),
    ("momentum 0.9", {"momentum": 0.9}),
    ("momentum 0 (Keras's SGD; the default for a DenseNet in transfer)", {"momentum": 0.0}),
    ("momentum 0.99, a tenth of the paper's rate", {"momentum": 0.99, "frozen_learning_rate": 0.001}),
    # as README row (d) first ran it: augmented faces through the frozen backbone every epoch (minutes, not seconds)
    ("momentum 0.99, live augmentation (the paper's phase 1)", {"momentum": 0.99, "frozen_augmentation": "live"}),
    ("momentum 0, live augmentation (the paper's phase 1)", {"momentum": 0.0, "frozen_augmentation": "live"}),
)


def run(quick: bool) -> list[Row]:
    data_path, _ = faces(quick)
    sizes = QUICK if quick else FULL
    data = load_dataset(data_path)
    log(f"frozen momentum: DenseNet169 pretrained on {PRETRAIN_FRACTION:.0%} of the training split (README row (d)'s)")
    source, _, _ = _kept_run("densenet169-pretrained", _densenet_config(sizes), data, pretrain,
                             fraction=PRETRAIN_FRACTION)
    base = {**(sizes.densenet or {}), "regime": "transfer", "weights": str(source.path), "epochs": 0,
            "frozen_epochs": 1 if quick else EPOCHS, "frozen_augmentation": "none", "stall_epochs": 0}
    faces_trained = len(leave_out_pretraining_faces(data, TrainConfig(**base))[0].train.y)
    return [_row(label, TrainConfig(**{**base, **changes}), data, faces_trained) for label, changes in SETTINGS]


def _row(label: str, config: TrainConfig, data, faces_trained: int) -> Row:
    name = (f"frozen phase of DenseNet169 transfer, SGD at {config.frozen_learning_rate:g}, {label}; "
            f"{config.frozen_epochs} epoch(s) on {faces_trained:,} faces")
    log(f"frozen momentum: {label}")
    started = time.perf_counter()
    try:
        result = train(config, data, scratch_dir() / "frozen-momentum" / f"m{config.momentum}-lr{config.frozen_learning_rate}-"
                                                                          f"{config.frozen_augmentation}")
    except TrialFailed as exc:  # a NaN loss: nothing is kept, the row says when
        return Row(name, "-", f"failed: {exc}", None)
    history, val = result.history, result.metrics["val"]
    curve = ", ".join(f"{a:.3f}" for a in history["val_accuracy"])
    objective = ", ".join(f"{v:.2f}" for v in history["val_loss"])
    majority = val["baseline"]["majority_rate"]
    return Row(name, f"majority rate {majority:.3f}",
               f"val accuracy by epoch {curve} (learned: {'yes' if val['learned'] else 'NO'}); val objective "
               f"(loss+L2) by epoch {objective}; {time.perf_counter() - started:.0f} s", val["accuracy"] / majority)


if __name__ == "__main__":
    main(run)
