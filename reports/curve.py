"""The data-efficiency curve (``cli.py curve``) in the report: computed from a curve study, then drawn.

For each regime and fraction: test accuracy and macro-F1 over seeds (``stats.t_interval``: a 95%
t-interval from 3 seeds, the seeds' range with 2). For each fraction: transfer minus scratch test
accuracy, a paired bootstrap over test images pooled over the seeds both regimes trained
(``stats.bootstrap_difference``: each seed's two runs trained on the same images and were evaluated on
the same test images). The sentence names the smallest fraction at which that difference is no
longer significant. Only the runs the curve study records are read (``study.experiments.curve``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import optuna
import pandas as pd

from reports.stats import Bootstrap, Estimate, bootstrap_difference, check_same_images, t_interval
from reports.tables import Interval, ReportTable, Signed
from study.data import CLASSES
from study.evaluation import compute_metrics
from study.runs import Run, RunError
from study.store import open_storage, records, study_names

A, B = "scratch", "transfer"  # the difference is B - A: what transfer buys


@dataclass(frozen=True)
class CurvePoint:
    regime: str
    fraction: float
    images: int
    accuracy: Estimate
    macro_f1: Estimate
    learned: int  # runs above the majority-class rate (one-sided binomial test, study.evaluation)
    runs: int


@dataclass(frozen=True)
class CurveGap:
    """Transfer minus scratch at one fraction, on the seeds both regimes trained."""

    fraction: float
    images: int
    accuracy: Bootstrap
    macro_f1: float  # mean over the paired seeds
    seeds: tuple[int, ...]

    @property
    def significant(self) -> bool:
        return self.accuracy.excludes_zero


@dataclass(frozen=True)
class Pretraining:
    run_dir: str
    backbone: str
    images: int
    val_accuracy: float
    val_majority_rate: float
    learned: bool


@dataclass(frozen=True, eq=False)
class CurveSummary:
    name: str
    plan: Mapping[str, Any]
    points: tuple[CurvePoint, ...]
    gaps: tuple[CurveGap, ...]
    test_images: int
    majority_rate: float
    majority_macro_f1: float
    synthetic: bool
    pretraining: Pretraining | None
    missing: int  # runs of the plan not (yet) recorded
    failures: Mapping[str, str] = dataclasses.field(default_factory=dict)  # run directory -> why it failed

    @property
    def regimes(self) -> list[str]:
        return list(dict.fromkeys(p.regime for p in self.points))

    def point(self, regime: str, fraction: float) -> CurvePoint | None:
        return next((p for p in self.points if p.regime == regime and p.fraction == fraction), None)


# ---------------------------------------------------------------------------------------- gather
def curve_studies(store: optuna.storages.BaseStorage) -> list[optuna.Study]:
    """Every curve in the store, oldest first."""
    studies = [records.load(name, store) for name in study_names(store)]
    return [s for s in studies if records.is_curve(s)]


def gather_curves(storage: str | optuna.storages.BaseStorage) -> list[CurveSummary]:
    """Every curve of the store (a URL, opened read-only, or a store already open), summarized."""
    store = open_storage(storage, read_only=True) if isinstance(storage, str) else storage
    return [summarize(study) for study in curve_studies(store)]


def summarize(study: optuna.Study) -> CurveSummary:
    plan = records.curve_plan(study)
    runs = {(r["regime"], float(r["fraction"]), int(r["seed"])): (Run.load(r["run_dir"]), int(r["images"]))
            for r in records.curve_runs(study)}
    if not runs:
        raise RunError(f"curve {study.study_name} has no finished run yet: run its `curve` command again")
    named = {f"{regime} share {fraction:g} seed {seed}": run for (regime, fraction, seed), (run, _) in runs.items()}
    labels = check_same_images({name: run.split("test")[0] for name, run in named.items()},
                               {name: str(run.manifest.get("data", {}).get("fingerprint")) for name, run in named.items()},
                               "test")
    metrics = {k: compute_metrics(labels, run.split("test")[1]) for k, (run, _) in runs.items()}
    fractions = sorted({k[1] for k in runs})
    regimes = [r for r in plan["configs"] if any(k[0] == r for k in runs)]
    points = []
    for regime in regimes:
        for fraction in fractions:
            keys = sorted(k for k in runs if k[0] == regime and k[1] == fraction)
            if keys:
                points.append(CurvePoint(
                    regime, fraction, runs[keys[0]][1],
                    t_interval([metrics[k]["accuracy"] for k in keys]),
                    t_interval([metrics[k]["macro_f1"] for k in keys]),
                    sum(bool(metrics[k]["learned"]) for k in keys), len(keys)))
    gaps = tuple(g for g in (_gap(runs, metrics, labels, f) for f in fractions) if g is not None)
    first = next(iter(metrics.values()))
    majority = first["baseline"]["majority_rate"]
    expected = len(plan["fractions"]) * len(plan["seeds"]) * len(plan["configs"])
    synthetic = any(bool(run.manifest.get("data", {}).get("synthetic")) for run, _ in runs.values())
    return CurveSummary(study.study_name, plan, tuple(points), gaps, len(labels), majority,
                        2 * majority / (1 + majority) / len(CLASSES), synthetic,
                        _pretraining(study), expected - len(runs), records.curve_failures(study))


def _gap(runs: Mapping[tuple, tuple[Run, int]], metrics: Mapping[tuple, dict], labels: np.ndarray,
         fraction: float) -> CurveGap | None:
    seeds = sorted({k[2] for k in runs if k[1] == fraction and k[0] == A} & {k[2] for k in runs if k[1] == fraction
                                                                            and k[0] == B})
    if not seeds:
        return None
    preds = {regime: np.stack([runs[(regime, fraction, s)][0].split("test")[1].argmax(axis=1) for s in seeds])
             for regime in (A, B)}
    f1 = float(np.mean([metrics[(B, fraction, s)]["macro_f1"] - metrics[(A, fraction, s)]["macro_f1"] for s in seeds]))
    return CurveGap(fraction, runs[(A, fraction, seeds[0])][1], bootstrap_difference(labels, preds[A], preds[B]), f1,
                    tuple(seeds))


def _pretraining(study: optuna.Study) -> Pretraining | None:
    run_dir = records.curve_pretrain(study)
    if not run_dir:
        return None
    run = Run.load(run_dir)
    val = run.metrics["val"]
    return Pretraining(str(run_dir), run.config.backbone, int(run.manifest.get("curve", {}).get("images", 0)),
                       float(val["accuracy"]), float(val["baseline"]["majority_rate"]), bool(val["learned"]))


# ------------------------------------------------------------------------------------------ words
def source_sentence(curve: CurveSummary) -> str:
    """Which configurations and which transfer source the curve compared."""
    plan = curve.plan
    parts = []
    for regime, config in plan["configs"].items():
        parts.append(f"{regime}: {config['backbone']}, {_epochs(config)} ({plan['sources'][regime]})")
    text = (f"Curve {curve.name}: {'; '.join(parts)}. Each regime trained on nested, stratified fractions "
            f"{', '.join(f'{f:g}' for f in plan['fractions'])} of its training pool with seeds "
            f"{', '.join(map(str, plan['seeds']))} (a seed's smaller fraction lies inside its larger one, and both "
            f"regimes of a seed trained on the same images); every run is evaluated on the same "
            f"{curve.test_images:,} test images.")
    p = curve.pretraining
    if p is not None:
        learned = "above" if p.learned else "NOT above"
        text += (f" Transfer source: NOT ImageNet, but a {p.backbone} trained from scratch on {p.images:,} other faces "
                 f"of the training split ({plan['pretrain_fraction']:.0%} set aside, never in the pool; validation "
                 f"accuracy {p.val_accuracy:.3f}, {learned} the majority-class rate {p.val_majority_rate:.3f}).")
    else:
        text += f" Transfer source: the weights {plan['configs'].get(B, {}).get('weights', 'n/a')}."
    if curve.missing:
        text += f" INCOMPLETE: {curve.missing} of the plan's runs are not finished; rerun its `curve` command."
    for run_dir, why in curve.failures.items():
        text += f" FAILED: {run_dir} ({why})."
    return text


def _epochs(config: Mapping[str, Any]) -> str:
    if config["regime"] == "scratch":
        return f"{config['epochs']} epochs"
    return f"up to {config['frozen_epochs']} frozen epochs, then {config['epochs']} fine-tuning"


def gap_sentence(curve: CurveSummary) -> str:
    """Transfer's advantage at the smallest fraction with its interval, and where it stops being significant."""
    gaps = curve.gaps
    if not gaps:
        return f"Curve {curve.name} has no fraction at which both regimes trained the same seeds: no paired difference."
    first = gaps[0]
    lead = (f"At the smallest fraction ({first.fraction:g} of the pool, {first.images:,} training images), transfer "
            f"minus scratch test accuracy is {first.accuracy.difference:+.3f} (95% paired bootstrap interval "
            f"[{first.accuracy.low:+.3f}, {first.accuracy.high:+.3f}] over test images, seeds "
            f"{', '.join(map(str, first.seeds))}), macro-F1 {first.macro_f1:+.3f}.")
    significant = [g.significant for g in gaps]
    if all(significant):
        side = "transfer" if all(g.accuracy.difference > 0 for g in gaps) else "one regime"
        tail = (f" The difference is significant at every fraction measured, up to {gaps[-1].fraction:g} "
                f"({gaps[-1].images:,} images): {side} stays ahead within this range, so where its advantage ends "
                "lies beyond it.")
    elif not significant[0]:
        tail = " It is not significant at the smallest fraction" + (
            "" if any(significant) else " nor at any other fraction measured") + "."
        later = [g for g in gaps if g.significant]
        if later:
            tail += f" It is significant at {', '.join(f'{g.fraction:g}' for g in later)}."
    else:
        end = next(g for g in gaps if not g.significant)
        tail = (f" The smallest fraction at which the difference is no longer significant is {end.fraction:g} "
                f"({end.images:,} images; {end.accuracy.difference:+.3f}, [{end.accuracy.low:+.3f}, "
                f"{end.accuracy.high:+.3f}]).")
        again = [g for g in gaps if g.fraction > end.fraction and g.significant]
        if again:
            tail += f" It is significant again at {', '.join(f'{g.fraction:g}' for g in again)}."
    flat = [p for p in curve.points if p.learned == 0]
    if flat:
        tail += (" No run beat the majority-class rate at: " + ", ".join(f"{p.regime} {p.fraction:g}" for p in flat)
                 + f" ({curve.majority_rate:.3f}); a difference there compares a model that did not learn.")
    return lead + tail


# ----------------------------------------------------------------------------------------- table
def curve_tables(curve: CurveSummary) -> list[ReportTable]:
    """Per share of the pool: test accuracy of each regime and the paired difference; then macro-F1."""
    fractions = sorted({p.fraction for p in curve.points})
    accuracy, f1 = [], []
    for fraction in fractions:
        points = {r: curve.point(r, fraction) for r in curve.regimes}
        images = next((p.images for p in points.values() if p is not None), None)
        gap = next((g for g in curve.gaps if g.fraction == fraction), None)
        row: dict[str, Any] = {"share": f"{fraction:g}", "train images": images}
        row.update({f"{r} acc": p.accuracy if p else None for r, p in points.items()})
        row["learned"] = ", ".join(f"{p.learned}/{p.runs}" if p else "-" for p in points.values())
        row["transfer - scratch"] = Signed(gap.accuracy.difference) if gap else None
        row["95% CI"] = Interval(gap.accuracy.low, gap.accuracy.high) if gap else None
        row["significant"] = gap.significant if gap else None
        accuracy.append(row)
        f1_row: dict[str, Any] = {"share": f"{fraction:g}", "train images": images}
        f1_row.update({f"{r} macro-F1": p.macro_f1 if p else None for r, p in points.items()})
        f1_row["transfer - scratch (mean over seeds)"] = Signed(gap.macro_f1) if gap else None
        f1.append(f1_row)
    over_seeds = "mean over seeds, ± the 95% t-interval from 3 seeds on, the seeds' range with 2, none with 1"
    note = (f"Test split, {curve.test_images:,} images; majority-class rate {curve.majority_rate:.4f}. Accuracy: "
            f"{over_seeds}. learned: runs above the majority-class rate (one-sided binomial test, p < 0.01), "
            f"{' and '.join(curve.regimes)}. The difference is paired (the same training images per seed, the same "
            "test images) with a 95% percentile bootstrap over test images, pooled over the seeds both regimes "
            "trained.")
    f1_note = f"Macro-F1: {over_seeds}; a constant answer's macro-F1 is {curve.majority_macro_f1:.4f}."
    return [ReportTable(f"curve:{curve.name}", f"Data-efficiency curve {curve.name}: test accuracy by share of the "
                        "training pool", pd.DataFrame(accuracy).set_index("share"), note),
            ReportTable(f"curve-f1:{curve.name}", f"Data-efficiency curve {curve.name}: test macro-F1 by share of "
                        "the training pool", pd.DataFrame(f1).set_index("share"), f1_note)]


# ---------------------------------------------------------------------------------------- figure
COLORS = {"scratch": "tab:blue", "transfer": "tab:orange"}


FONT = {"font.size": 13, "legend.fontsize": 11}  # a full-width figure on A4 shrinks to ~0.6: 13 pt prints at ~8


def draw(curve: CurveSummary, path: str | Path, mark: str = "") -> Path:
    """Accuracy and macro-F1 against training images (log axis), a line per regime with its interval over
    seeds and the majority-class baseline."""
    from reports import figures  # deferred: matplotlib

    plt = figures.plt
    with plt.rc_context(FONT):
        fig, axes = plt.subplots(1, 2, figsize=(12, 5.2))
        for ax, (attr, label, baseline, baseline_name) in zip(axes, (
                ("accuracy", "test accuracy", curve.majority_rate, "majority-class rate"),
                ("macro_f1", "test macro-F1", curve.majority_macro_f1, "majority answer's macro-F1"))):
            for regime in curve.regimes:
                points = sorted((p for p in curve.points if p.regime == regime), key=lambda p: p.images)
                x = np.array([p.images for p in points], dtype=float)
                est: Sequence[Estimate] = [getattr(p, attr) for p in points]
                mean = np.array([e.mean for e in est], dtype=float)
                low = np.array([e.low if e.low is not None else e.mean for e in est], dtype=float)
                high = np.array([e.high if e.high is not None else e.mean for e in est], dtype=float)
                ax.plot(x, mean, "o-", color=COLORS.get(regime), label=regime)
                ax.fill_between(x, low, high, color=COLORS.get(regime), alpha=0.2, linewidth=0)
            ax.axhline(baseline, color="grey", linestyle="--", linewidth=1, label=baseline_name)
            _image_axis(ax, curve)
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
            ax.legend(loc="best")
        fig.suptitle(f"{curve.name}: 95% t-intervals over seeds (the range with 2){_source(curve)}", wrap=True)
        fig.tight_layout()
        return figures._save(fig, path, mark)


def draw_difference(curve: CurveSummary, path: str | Path, mark: str = "") -> Path:
    """Transfer minus scratch test accuracy at each share, with its paired bootstrap interval over test images."""
    from reports import figures  # deferred: matplotlib

    plt = figures.plt
    with plt.rc_context(FONT):
        fig, ax = plt.subplots(figsize=(12, 4.6))
        gaps = sorted(curve.gaps, key=lambda g: g.images)
        if gaps:
            x = np.array([g.images for g in gaps], dtype=float)
            ax.plot(x, [g.accuracy.difference for g in gaps], "o-", color="tab:green", label="transfer - scratch")
            ax.fill_between(x, [g.accuracy.low for g in gaps], [g.accuracy.high for g in gaps], color="tab:green",
                            alpha=0.2, linewidth=0, label="95% paired bootstrap interval")
            significant = [g for g in gaps if g.significant]
            if significant:
                ax.plot([g.images for g in significant], [g.accuracy.difference for g in significant], "o",
                        markersize=13, markerfacecolor="none", color="black", label="significant")
        ax.axhline(0.0, color="grey", linestyle="--", linewidth=1)
        _image_axis(ax, curve)
        ax.set_ylabel("test accuracy difference")
        ax.set_title(f"{curve.name}: what transfer buys{_source(curve)}", wrap=True)
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
        fig.tight_layout()
        return figures._save(fig, path, mark)


def _source(curve: CurveSummary) -> str:
    p = curve.pretraining
    return f"; transfer from a {p.backbone} pretrained on {p.images:,} other faces, NOT ImageNet" if p else ""


def _image_axis(ax, curve: CurveSummary) -> None:
    """A log axis of training images, ticked at the curve's own points: the count, and the fraction below it."""
    from matplotlib.ticker import NullFormatter, NullLocator  # deferred: matplotlib

    ticks = sorted({(p.images, p.fraction) for p in curve.points})
    ax.set_xscale("log")
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks([n for n, _ in ticks], [f"{n:,}\n({f:g})" for n, f in ticks])
    ax.set_xlabel("training images (log scale; the pool's fraction in brackets)")
