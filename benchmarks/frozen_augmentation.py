"""What the frozen phase's augmentation buys: live augmentation against K cached augmented views and
against none, each followed by the whole transfer schedule, on real faces, 3 seeds each.

    python -m benchmarks.frozen_augmentation [--quick] [--write README.md]

Transfer's phase 1 trains the head on a frozen backbone. ``frozen_augmentation="live"`` (the paper's
schedule) augments anew every epoch and so pushes every image through the backbone every epoch;
``"views"`` computes ``frozen_feature_views`` augmented views of every image once and draws one per
epoch; ``"none"`` computes the plain features once. The fine-tune phase that follows is the same
in all three (live augmentation). Each run is one ``study.training.train`` of the transfer regime on
DenseNet169, from weights pretrained on a disjoint share of the real faces (``common.face_pretrained``:
ImageNet cannot be downloaded here, so this is NOT ImageNet transfer), on ``N_TRAIN`` training and
``N_VAL`` validation faces drawn from the faces the pretraining did not see. The figure is the val
accuracy of the model the whole schedule leaves, and the run's wall time.

The decision rule (printed with the table): "views" becomes search's default if its mean val
accuracy is within the seeds' spread of live's (the difference of the means no larger than the larger
of the two ranges over seeds); else live stays. ``--write FILE`` puts the output between
``<!-- frozen-augmentation:start -->`` and ``<!-- frozen-augmentation:end -->`` in FILE.
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time

from benchmarks.common import (
    Row,
    backbone_weights,
    existing_file,
    face_pretrained,
    faces,
    fresh_feature_cache,
    from_pool,
    log,
    machine,
    quiet,
    sample,
    scratch_dir,
    table,
)
from benchmarks.common import between as generic_between
from benchmarks.frozen_features import first
from study.data import load_dataset
from study.config import TrainConfig
from study.training import train

START, END = "<!-- frozen-augmentation:start -->", "<!-- frozen-augmentation:end -->"
MODES = ("live", "views", "none")
SEEDS = (0, 1, 2)
N_TRAIN, N_VAL = 1500, 600
SCHEDULE = {"frozen_epochs": 10, "frozen_patience": 3, "epochs": 2}  # phase 1 up to 10 epochs; fine-tune 2
# Adam, not the defaults' SGD: the features of a backbone pretrained here from scratch are large (a
# head's first loss is near 45) and SGD at the frozen phase's 0.01 turns them into a NaN loss; Adam
# at 1e-3 reaches 0.40 on them in phase 1. Fine-tuning at 1e-4.
OPTIMIZER = {"optimizer": "adam", "frozen_learning_rate": 1e-3, "learning_rate": 1e-4}


def measure(data, weights: str, mode: str, seed: int, schedule: dict, backbone: str) -> tuple[float, float, bool]:
    """(val accuracy after the whole schedule, seconds, learned) of one transfer run."""
    config = TrainConfig(regime="transfer", backbone=backbone, weights=weights, frozen_augmentation=mode, seed=seed,
                         **OPTIMIZER, **schedule)
    started = time.perf_counter()
    result = train(config, data, scratch_dir() / "frozen-augmentation" / f"{mode}-{seed}")
    val = result.metrics["val"]
    return float(val["accuracy"]), time.perf_counter() - started, bool(val["learned"])


def decide(results: dict[str, list[tuple[float, float, bool]]]) -> tuple[bool, str]:
    """Do views match live within the seeds' spread? (the rule in the module's docstring)"""
    acc = {m: [r[0] for r in rs] for m, rs in results.items()}
    spread = max(max(acc[m]) - min(acc[m]) for m in ("live", "views"))
    gap = statistics.fmean(acc["live"]) - statistics.fmean(acc["views"])
    match = gap <= spread
    return match, (f"views {'match' if match else 'do NOT match'} live: mean val acc {statistics.fmean(acc['views']):.3f} "
                   f"vs {statistics.fmean(acc['live']):.3f} (live minus views {gap:+.3f}; the larger range over seeds "
                   f"{spread:.3f})")


def rows(results: dict[str, list[tuple[float, float, bool]]], where: str) -> list[Row]:
    live_seconds = statistics.fmean(r[1] for r in results["live"])
    out = []
    for mode, rs in results.items():
        acc = [r[0] for r in rs]
        seconds = statistics.fmean(r[1] for r in rs)
        learned = sum(r[2] for r in rs)
        out.append(Row(f"frozen phase '{mode}', then fine-tune ({where}); val acc over seeds "
                       f"({', '.join(f'{a:.3f}' for a in acc)}), mean run time",
                       f"live: {live_seconds:.0f} s", f"{statistics.fmean(acc):.3f} "
                       f"[{min(acc):.3f}, {max(acc):.3f}], {seconds:.0f} s, learned {learned}/{len(rs)}",
                       live_seconds / seconds, "learned in every seed", learned == len(rs)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.frozen_augmentation",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the generated sample, one seed, 1 epoch a phase")
    parser.add_argument("--write", type=existing_file, metavar="FILE", help=f"also write the output between {START} and {END}")
    args = parser.parse_args(argv)
    if args.write:
        generic_between(args.write.read_text(), "", START, END)
    quiet()
    started = time.perf_counter()
    folder, note = faces(args.quick)
    if args.quick:
        data = first(load_dataset(sample(per_class=20)), 96, 48)
        backbone, weights, source = "mobilenetv3small", str(backbone_weights("mobilenetv3small")), "random init (--quick)"
        seeds, schedule = (0,), {"frozen_epochs": 1, "frozen_patience": 1, "epochs": 1}
        note = "generated sample (--quick: a smoke test, nothing is decided)"
    else:
        pretrained = face_pretrained("densenet169", folder)
        data = from_pool(folder, pretrained.pool, N_TRAIN, N_VAL)
        backbone, weights, source = "densenet169", str(pretrained.weights), pretrained.describe()
        seeds, schedule = SEEDS, SCHEDULE
    results: dict[str, list[tuple[float, float, bool]]] = {}
    for mode in MODES:
        with fresh_feature_cache():  # each mode pays its own features; seeds of "none" share them, as trials do
            for seed in seeds:
                log(f"frozen augmentation: {mode}, seed {seed}")
                results.setdefault(mode, []).append(measure(data, weights, mode, seed, schedule, backbone))
    where = (f"{backbone}, {len(data.train.y):,}+{len(data.val.y):,} faces, Adam, phase 1 <= "
             f"{schedule['frozen_epochs']} epochs (patience {schedule['frozen_patience']}), fine-tune {schedule['epochs']}")
    match, verdict = decide(results)
    judged = rows(results, where) if not args.quick else [dataclasses.replace(r, goal="-", met=None)
                                                          for r in rows(results, where)]
    output = "\n".join([machine(), f"Data: {note or folder}; backbone: {source}",
                        f"Command: python -m benchmarks.frozen_augmentation{' --quick' if args.quick else ''}; "
                        f"wall time {(time.perf_counter() - started) / 60:.1f} min", "", table(judged), "",
                        f"Decision: {verdict} -> search's default frozen_augmentation: {'views' if match else 'live'}"
                        if not args.quick else "Decision: none (--quick)"])
    print(output, flush=True)
    if args.write:
        args.write.write_text(generic_between(args.write.read_text(), f"```text\n{output}\n```\n", START, END))
    return 0


if __name__ == "__main__":
    sys.exit(main())
