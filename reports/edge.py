"""Edge searches in the report: a metric against a measured cost (``search --objective accuracy,latency``).

Computed from the store alone (each trial records its validation metrics and its measured cost,
``study.latency.Cost``), then drawn: every complete trial as a point (validation metric
against single-face TFLite latency, log axis; the marker's area is the TFLite file's size), the Pareto
front joined by a step line, the paper's DenseNet169 (the search's first trial, the defaults) marked
wherever it falls, and the line of ``FPS`` frames a second on the machine that measured them. A trial that
did not beat the majority rate on validation is drawn crossed out and is never on the front
(``study.store.pareto_front``): answering one class to every face is fast, not a trade-off. The table
lists the front, fastest first; the sentence names the fastest front point against the paper's model
and which points run in real time. Accuracy here is on VALIDATION faces, which the search chose on (an
optimistic reading); a point's final training (``study.experiments.final``, naming its trial) evaluates it
on test.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.trial import TrialState

from reports.tables import ReportTable
from study.latency import FPS
from study.store import Objectives, is_edge_study, pareto_front, records, study_names, trial_value

PAPER_BACKBONE = "densenet169"


@dataclass(frozen=True)
class EdgePoint:
    trial: int
    backbone: str
    value: float  # the validation metric
    tflite_ms: float
    keras_ms: float
    tflite_bytes: int
    on_front: bool
    default: bool  # a backbone's defaults (the search's first trial per backbone)
    params: dict[str, Any] = field(default_factory=dict)
    learned: bool = True  # beat the majority rate on validation (a trial that did not is never on the front)

    @property
    def fps(self) -> float:
        return 1000.0 / self.tflite_ms if self.tflite_ms > 0 else float("inf")


@dataclass(frozen=True, eq=False)
class EdgeSummary:
    name: str
    regime: str
    metric: str
    cost: str
    points: tuple[EdgePoint, ...]  # every complete trial with a measured cost
    machines: tuple[str, ...]
    threads: int
    repeats: int
    majority_rate: float | None  # of the validation faces
    synthetic: bool = False

    @property
    def front(self) -> list[EdgePoint]:
        """The Pareto-optimal points, cheapest first."""
        key = (lambda p: p.tflite_ms) if self.cost == "latency" else (lambda p: p.tflite_bytes)
        return sorted((p for p in self.points if p.on_front), key=lambda p: (key(p), p.trial))

    @property
    def paper(self) -> EdgePoint | None:
        """The paper's DenseNet169 at its defaults (the search's first trial), else its best DenseNet169 trial."""
        mine = [p for p in self.points if p.backbone == PAPER_BACKBONE]
        defaults = [p for p in mine if p.default]
        return min(defaults, key=lambda p: p.trial) if defaults else max(mine, key=lambda p: p.value, default=None)


# ---------------------------------------------------------------------------------------- gather
def edge_studies(store: optuna.storages.BaseStorage) -> list[optuna.Study]:
    """Every multi-objective search of the store (its regime recorded), by name."""
    studies = [records.load(name, store) for name in study_names(store)]
    return [s for s in studies if is_edge_study(s)]


def summarize(study: optuna.Study) -> EdgeSummary:
    objectives = Objectives.parse(records.objective(study))
    front = {t.number for t in pareto_front(study)}
    base_backbone = str(records.base(study).get("backbone", ""))
    points, majority, synthetic = [], None, False
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        cost = records.cost(t)
        if not cost:
            continue
        val = records.val_metrics(t)
        majority = val.get("majority_rate", majority)
        points.append(EdgePoint(t.number, str(t.params.get("backbone", base_backbone)), float(trial_value(t)),
                                float(cost["tflite_ms"]), float(cost["keras_ms"]), int(cost["tflite_bytes"]),
                                t.number in front, records.is_default_config(t),
                                {k: v for k, v in t.params.items() if k != "backbone"},
                                records.learned(t) is not False))
        synthetic = synthetic or _synthetic(records.run_dir(t))
    measured = [records.cost(t) for t in study.get_trials(deepcopy=False) if records.cost(t)]
    return EdgeSummary(study.study_name, records.regime(study) or "?", objectives.metric, objectives.cost or "?",
                       tuple(points), tuple(sorted({m["machine"] for m in measured})),
                       int(measured[0]["threads"]) if measured else 0, int(measured[0]["repeats"]) if measured else 0,
                       majority, synthetic)


def gather_edges(store: optuna.storages.BaseStorage) -> list[EdgeSummary]:
    return [s for s in map(summarize, edge_studies(store)) if s.points]


def _synthetic(run_dir: str | None) -> bool:
    """Whether a trial trained on the generated sample (its manifest says so)."""
    path = Path(run_dir) / "manifest.json" if run_dir else None
    try:
        return bool(json.loads(path.read_text()).get("data", {}).get("synthetic")) if path else False
    except (OSError, ValueError):
        return False


# ---------------------------------------------------------------------------------------- compute
def front_table(summary: EdgeSummary) -> ReportTable:
    rows = []
    for p in summary.front:
        rows.append({"trial": p.trial, "backbone": p.backbone, f"val {summary.metric}": f"{p.value:.3f}",
                     "latency ms (TFLite)": f"{p.tflite_ms:.2f}", "frames/s": f"{p.fps:,.0f}",
                     f">= {FPS:g} fps": "yes" if p.fps >= FPS else "no", "latency ms (Keras)": f"{p.keras_ms:.1f}",
                     "size MB (TFLite)": f"{p.tflite_bytes / 1e6:.2f}",
                     "paper's model": "yes" if p is summary.paper else ""})
    frame = pd.DataFrame(rows).set_index("trial")
    return ReportTable(f"edge-{summary.name}", f"Pareto front of study {summary.name}: validation {summary.metric} "
                       f"against {summary.cost}, fastest first", frame, note=measurement_note(summary))


def measurement_note(summary: EdgeSummary) -> str:
    machines = "; ".join(summary.machines) or "?"
    return (f"Latency: the trained model's TFLite export, batch 1, {summary.threads} thread(s), median of "
            f"{summary.repeats} single faces after warm-up, on {machines}; the Keras column times the Keras model "
            "called directly on the same machine. Accuracy on VALIDATION faces, which the search chose on; a point's "
            "final training (train from the study, naming its trial) evaluates it on test.")


def sentences(summary: EdgeSummary) -> list[str]:
    """The front in words: its size, its fastest point against the paper's model, what runs in real time."""
    front, paper = summary.front, summary.paper
    lines = [f"Study {summary.name} ({summary.regime}) weighs validation {summary.metric} against {summary.cost} over "
             f"{len(summary.points)} trials of {len({p.backbone for p in summary.points})} backbone(s); "
             + (f"{len(front)} of them {'is' if len(front) == 1 else 'are'} on the Pareto front." if front else
              "none of them is on a Pareto front: no trial's model beat the majority-class rate on validation.")]
    unlearned = [p for p in summary.points if not p.learned]
    if unlearned:
        one = len(unlearned) == 1
        lines.append(f"Trial{'' if one else 's'} {', '.join(str(p.trial) for p in unlearned)} did not beat the "
                     "majority-class rate on validation; a model that did not learn is no trade-off at any speed, so "
                     f"{'it is' if one else 'they are'} drawn crossed out and kept off the front.")
    if front:
        fastest = min(front, key=lambda p: p.tflite_ms)
        line = (f"Its fastest point, trial {fastest.trial} ({fastest.backbone}), answers in {fastest.tflite_ms:.2f} ms "
                f"({fastest.fps:,.0f} frames a second) with validation {summary.metric} {fastest.value:.3f}")
        if paper is not None and paper is not fastest:
            line += (f": {paper.tflite_ms / fastest.tflite_ms:.1f}x faster than the paper's DenseNet169 (trial "
                     f"{paper.trial}, {paper.tflite_ms:.2f} ms, {summary.metric} {paper.value:.3f}), "
                     f"{fastest.value - paper.value:+.3f} in {summary.metric}")
        if summary.majority_rate is not None:
            line += f" (the majority-class rate is {summary.majority_rate:.3f})"
        lines.append(line + ".")
    real_time = [p for p in front if p.fps >= FPS]
    slow = [p for p in front if p.fps < FPS]
    lines.append(f"On this machine's CPU ({'; '.join(summary.machines) or '?'}), "
                 + (f"{len(real_time)} front point(s) run above {FPS:g} frames a second (trials "
                    f"{', '.join(str(p.trial) for p in real_time)})" if real_time else
                    f"no front point runs at {FPS:g} frames a second")
                 + (f"; trial(s) {', '.join(str(p.trial) for p in slow)} do not." if slow else "."))
    return lines


# ------------------------------------------------------------------------------------------- draw
def draw(summary: EdgeSummary, path: str | Path, mark: str = "") -> Path:
    """Validation metric against the cost (latency or size, log axis), the other cost as the marker's area, the
    front as a step line."""
    from reports import figures  # deferred: matplotlib
    from reports.curve import FONT  # deferred: the report's figure font

    latency = summary.cost == "latency"
    x = (lambda p: p.tflite_ms) if latency else (lambda p: p.tflite_bytes / 1e6)
    plt = figures.plt
    with plt.rc_context(FONT):
        fig, ax = plt.subplots(figsize=(12, 6))
        backbones = sorted({p.backbone for p in summary.points})
        colors = {b: plt.get_cmap("tab10")(i) for i, b in enumerate(backbones)}
        for backbone in backbones:
            mine = [p for p in summary.points if p.backbone == backbone]
            ax.scatter([x(p) for p in mine], [p.value for p in mine], s=[_area(p, latency) for p in mine],
                       color=colors[backbone], alpha=0.55, edgecolors="black", linewidths=0.5, label=backbone)
        unlearned = [p for p in summary.points if not p.learned]
        if unlearned:
            ax.scatter([x(p) for p in unlearned], [p.value for p in unlearned], marker="x", color="black",
                       s=[_area(p, latency) for p in unlearned], linewidths=1.5,
                       label="did not learn (off the front)")
        front = sorted(summary.front, key=x)
        if front:
            ax.scatter([x(p) for p in front], [p.value for p in front], s=[_area(p, latency) + 60 for p in front],
                       facecolors="none", edgecolors="black", linewidths=1.8, label="on the Pareto front")
            ax.step([x(p) for p in front], [p.value for p in front], where="post", color="black",
                    linewidth=1.5, label="Pareto front")
        paper = summary.paper
        if paper is not None:
            ax.annotate(f"paper's DenseNet169 (trial {paper.trial})", (x(paper), paper.value),
                        xytext=(-20, 18), textcoords="offset points", ha="right",
                        arrowprops={"arrowstyle": "->", "color": "black"})
        if latency:
            ax.axvline(1000.0 / FPS, color="tab:red", linestyle="--", linewidth=1,
                       label=f"{FPS:g} frames a second ({1000.0 / FPS:.0f} ms)")
        if summary.majority_rate is not None and summary.metric == "accuracy":
            ax.axhline(summary.majority_rate, color="grey", linestyle=":", linewidth=1, label="majority-class rate")
        ax.margins(y=0.12)  # room above the top point for the paper's label
        ax.set_xscale("log")
        ax.set_xlabel("single-face latency, TFLite, ms (log scale)" if latency else "TFLite file size, MB (log scale)")
        ax.set_ylabel(f"validation {summary.metric}")
        ax.grid(alpha=0.3, which="both")
        ax.legend(loc="best", fontsize=10)
        area = "TFLite size" if latency else "TFLite latency"
        ax.set_title(f"{summary.name}: marker area = {area}; {'; '.join(summary.machines)}", wrap=True)
        fig.tight_layout()
        return figures._save(fig, path, mark)


def _area(point: EdgePoint, by_size: bool = True) -> float:
    """Marker area in points^2 from the size (~30 for a few hundred KB to ~600 for DenseNet169's ~50 MB), or,
    where size is the axis, from the latency (~30 under a millisecond to ~600 at 50 ms)."""
    return 30.0 + (11.0 * point.tflite_bytes / 1e6 if by_size else 11.0 * point.tflite_ms)
