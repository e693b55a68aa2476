"""Frozen phase: training the head on cached backbone features vs through the frozen backbone.

Both sides run ``study.training.train`` (transfer regime, frozen phase only) on the same images;
the baseline has ``feature_cache=False``. Pretrained weights: ImageNet cannot be downloaded here, so
the DenseNet169 backbone loads a weights file this benchmark writes (seeded random init); the speed
of a frozen phase does not depend on what the weights learned. The augmentation rows need features
worth classifying, so they use a mini_xception backbone pretrained here for a few epochs from scratch.
"""
from __future__ import annotations

import dataclasses

from benchmarks.common import Row, backbone_weights, faces, fresh_feature_cache, log, main, sample, scratch_dir
from benchmarks.common import seconds as fmt_seconds
from study.config import TrainConfig
from study.data import Dataset, Split, load_dataset
from study.training import RunResult, train

SEARCH_TRIALS = 30
EPOCH_GOAL = 10.0
SEARCH_GOAL = 10.0
EXACT_TOLERANCE = 1e-5
HEAD = {"dense1_units": 256, "dense2_units": 1024, "dense3_units": 512}  # the paper's head
NO_AUGMENTATION = {"rotation": 0.0, "zoom": 0.0, "flip": False}
PAPER_AUGMENTATION = {"rotation": 10.0, "zoom": 0.1, "flip": True}


def first(data: Dataset, n_train: int, n_val: int) -> Dataset:
    """The first rows of train and val (data.py already shuffled them, seeded and stratified)."""
    return dataclasses.replace(data, train=Split(data.train.x[:n_train], data.train.y[:n_train]),
                               val=Split(data.val.x[:n_val], data.val.y[:n_val]))


def frozen_run(data: Dataset, weights: str, backbone: str, epochs: int, name: str, **changes) -> RunResult:
    """A transfer run that only trains its frozen phase (fine-tune epochs 0), patience out of reach."""
    config = TrainConfig(regime="transfer", backbone=backbone, weights=weights, frozen_epochs=epochs,
                         frozen_patience=epochs + 1, epochs=0, momentum=0.9, **{**HEAD, **NO_AUGMENTATION, **changes})
    return train(config, data, scratch_dir() / "frozen" / name)


def run(quick: bool) -> list[Row]:
    folder, note = (sample(per_class=30), "generated sample") if quick else faces(quick)
    data = load_dataset(folder)
    backbone = "mini_xception" if quick else "densenet169"
    subset = first(data, *((64, 32) if quick else (1500, 300)))
    weights = str(backbone_weights(backbone))
    where = f"{backbone}, {len(subset.train.y)}+{len(subset.val.y)} images" + (f", {note}" if note else "")
    rows = _epoch_and_exactness(subset, weights, backbone, where)
    rows.append(_search(subset, weights, backbone, epochs=2 if quick else 5, where=where, measured=2 if quick else 3))
    rows += _augmentation_modes(first(data, *((64, 32) if quick else (2000, 500))), quick)
    return rows


_UNCACHED: dict[str, RunResult] = {}


def _epoch_and_exactness(data: Dataset, weights: str, backbone: str, where: str) -> list[Row]:
    log("frozen features: one epoch, cached vs through the backbone")
    with fresh_feature_cache():
        uncached = frozen_run(data, weights, backbone, 2, "uncached", feature_cache=False)
        cached = frozen_run(data, weights, backbone, 2, "cached")
    _UNCACHED["run"] = uncached
    slow, fast = _epoch_seconds(uncached), _epoch_seconds(cached)
    columns = ["loss", "val_loss", "val_accuracy", "val_cross_entropy"]
    gap = float((uncached.history[columns] - cached.history[columns]).abs().to_numpy().max())
    acc = uncached.metrics["val"]["accuracy"], cached.metrics["val"]["accuracy"]
    return [
        Row(f"frozen phase: one epoch through the backbone vs on cached features ({where})", fmt_seconds(slow),
            fmt_seconds(fast), slow / fast, f">= {EPOCH_GOAL:.0f}x", slow / fast >= EPOCH_GOAL),
        Row("frozen phase: cached = uncached? (val accuracy; largest difference of loss and val metrics, any epoch)",
            f"{acc[0]:.4f}", f"{acc[1]:.4f}", None, f"difference <= {EXACT_TOLERANCE:g}",
            gap <= EXACT_TOLERANCE and abs(acc[0] - acc[1]) <= EXACT_TOLERANCE, ratio_text=f"diff {gap:.1e}"),
    ]


def _epoch_seconds(result: RunResult) -> float:
    """The second epoch: the first also pays for tracing the training step."""
    return float(result.history["seconds"].iloc[-1])


def _search(data: Dataset, weights: str, backbone: str, epochs: int, where: str, measured: int) -> Row:
    """The frozen phases of a search whose trials each train ``epochs`` frozen epochs.

    Cached: ``measured`` trials run (the first computes the features, the others find them in
    memory), the remaining ones costed as the later ones. Uncached: every trial pays what the measured
    2-epoch uncached run paid, plus its further epochs at the measured epoch time.
    """
    log(f"frozen features: the frozen phases of a {SEARCH_TRIALS}-trial search")
    with fresh_feature_cache():
        trials = [frozen_run(data, weights, backbone, epochs, f"trial-{i}", dense1_units=128 * (i + 1))
                  for i in range(measured)]
    cached = [t.timings["frozen"] for t in trials]
    cached_total = cached[0] + (SEARCH_TRIALS - 1) * (sum(cached[1:]) / len(cached[1:]))
    reference = _UNCACHED["run"]
    per_trial = reference.timings["frozen"] + (epochs - 2) * _epoch_seconds(reference)
    uncached_total = SEARCH_TRIALS * per_trial
    ratio = uncached_total / cached_total
    return Row(f"frozen phases of a {SEARCH_TRIALS}-trial search, {epochs} epochs each ({where}; {measured} trials "
               "measured, the rest costed alike)", fmt_seconds(uncached_total), fmt_seconds(cached_total), ratio,
               f"<= 1/{SEARCH_GOAL:.0f} of uncached", ratio >= SEARCH_GOAL)


def _augmentation_modes(data: Dataset, quick: bool) -> list[Row]:
    """Phase 1 with the paper's augmentation: live (baseline) vs 'none' and vs 4 cached views
    (--quick: random weights, one epoch)."""
    log("frozen features: augmentation modes (mini_xception pretrained here)")
    pretrain = TrainConfig(regime="scratch", backbone="mini_xception", epochs=3, learning_rate=0.05, momentum=0.9,
                           l2=0.0, **NO_AUGMENTATION)
    weights = str(backbone_weights("mini_xception") if quick
                  else train(pretrain, data, scratch_dir() / "frozen" / "pretrained").run_dir)
    epochs = 1 if quick else 6
    runs = {}
    with fresh_feature_cache():
        for mode in ("live", "none", "views"):
            runs[mode] = frozen_run(data, weights, "mini_xception", epochs, f"aug-{mode}", frozen_augmentation=mode,
                                    frozen_feature_views=4, **PAPER_AUGMENTATION)

    def cell(result: RunResult) -> str:
        return f"{fmt_seconds(result.timings['frozen'])}, best val acc {result.history['val_accuracy'].max():.3f}"

    live = runs["live"]
    return [Row(f"frozen phase with augmentation: {label} vs live (mini_xception, {len(data.train.y)} images, "
                f"{epochs} epochs)", cell(live), cell(runs[mode]), live.timings["frozen"] / runs[mode].timings["frozen"])
            for mode, label in (("none", "'none' (no phase-1 augmentation, cached)"), ("views", "4 cached views"))]


if __name__ == "__main__":
    main(run)
