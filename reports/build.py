"""The report: gather -> compute -> draw -> compose -> render (Markdown and PDF).

Each step is a function of plain data, usable without the CLI:

    evidence = collect.gather("sqlite:///studies/studies.db")
    content = compute(evidence)            # tables, paired comparison, verdict: no files touched
    build_report(out="reports/out")        # all of it, written to report.md, report.pdf, figures/
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from reports import DEFAULT_OUT, budget, collect, figures
from reports import curve as curve_report
from reports import edge as edge_report
from reports import markdown as md
from reports import pdf
from reports.collect import DataView, Evidence, RegimeEvidence, SearchSummary
from reports.compose import compose, compose_alone
from reports.content import ReportContent, RunCalibration
from reports.curve import CurveSummary
from reports.edge import EdgeSummary
from reports.document import Document, FigureBlock
from reports.errors import ReportError
from reports import ensembles as ensemble_report
from reports import peers as peer_report
from reports.ensembles import EnsembleResult
from reports.peers import PeerResult
from reports.saliency import saliency_figure
from reports.setup import budget_differences, pretraining_notes, regime_setup, tta_note
from reports.stats import ClassComparison, Comparison, PairingError, check_same_images, compare, compare_classes
from reports.tables import (
    SPLIT_NAMES,
    ReportTable,
    best_params_table,
    calibration_table,
    class_table,
    common_split,
    comparison_table,
    dataset_table,
    environment_table,
    estimate,
    importances_table,
    recall_table,
    runs_frame,
    search_table,
    seeds_table,
    table_i,
    table_ii,
    table_iii,
    table_iv,
)
from reports.verdict import no_verdict, verdict
from study.calibration import fit_temperature, reliability, scale
from study.data import CLASSES
from study.errors import UserError
from study.peers import PeerError
from study.evaluation import compute_metrics, curves
from study.runs import Run, atomic, write_text, writing
from study.store import DEFAULT_STORAGE, mask_url

FORMATS = ("md", "pdf")
FACE_GRID_SEED = 0  # which test faces the grid shows; the same faces for both regimes
FACE_GRID_SIZE = 9  # the paper's Fig. 14/15 show 3 x 3 faces
SEED_METRICS = (("accuracy", "accuracy"), ("macro_f1", "macro-F1"), ("loss", "cross-entropy"))
BOUNDED = ("accuracy", "macro_f1")  # fractions: their axis never needs to leave [0, 1]
PARALLEL_AXES = 6  # parameters in the parallel-coordinate plot, most important first (more are unreadable on A4)
IMPORTANCE_BARS = 10  # parameters in the importance chart; the table lists them all


@dataclass(frozen=True)
class BuiltReport:
    documents: dict[str, Path]  # format -> file
    figures: dict[str, FigureBlock]
    lacks: tuple[str, ...]


def build_report(storage: str = DEFAULT_STORAGE, studies: Sequence[str] = (), out: str | Path = DEFAULT_OUT,
                 formats: str | Iterable[str] = FORMATS, partial: bool = False,
                 baselines: Sequence[str] = ()) -> BuiltReport:
    """Write report.md / report.pdf and figures/*.png into ``out``; see ``collect`` for what is chosen.
    ``baselines``: off-the-shelf models (``study.peers.PEERS``) evaluated on the same faces (``reports.peers``)."""
    wanted = parse_formats(formats)
    out = Path(out)
    store = collect.open_store(storage)  # once, read-only: the searches and the curves are read from it
    try:
        evidence = collect.gather(storage, studies, partial, store=store)
    except ReportError:
        if studies or not collect.only_side_studies(store):
            raise
        # a store of data-efficiency curves and edge searches alone, without a search of either regime: a report
        # of those
        curves, edges = tuple(curve_report.gather_curves(store)), tuple(edge_report.gather_edges(store))
        drawn = {**draw_curve_figures(curves, out), **draw_edge_figures(edges, out)}
        return BuiltReport(write(compose_alone(curves, edges, drawn, mask_url(storage)), out, wanted), drawn, ())
    content = replace(compute(evidence, partial, baselines), curves=tuple(curve_report.gather_curves(store)),
                      edges=tuple(edge_report.gather_edges(store)))
    drawn = draw_figures(content, out)
    document = compose(content, drawn)
    return BuiltReport(write(document, out, wanted), drawn, content.lacks)


def parse_formats(formats: str | Iterable[str]) -> tuple[str, ...]:
    items = formats.split(",") if isinstance(formats, str) else list(formats)
    wanted = tuple(dict.fromkeys(f.strip().lower() for f in items if f.strip()))
    unknown = [f for f in wanted if f not in FORMATS]
    if unknown or not wanted:
        raise UserError(f"«format» takes a comma-separated list of {', '.join(FORMATS)}, got {','.join(items)!r}")
    return wanted


# ------------------------------------------------------------------------------------- compute
def compute(evidence: Evidence, partial: bool = False, baselines: Sequence[str] = ()) -> ReportContent:
    """Tables, the paired comparison and the verdict; a pairing problem is an error unless ``partial``, and so is
    an off-the-shelf model of ``baselines`` that cannot be evaluated on the runs' faces."""
    split = common_split(evidence)
    frame = runs_frame(evidence, split)
    regimes = list(evidence.regimes)
    comparison, pairing_lacks = paired(evidence, split, partial)
    lacks = (*evidence.lacks, *pairing_lacks)
    views = data_views(evidence, split)
    others, peer_lacks = off_the_shelf(baselines, evidence, views, split, partial)
    lacks += tuple(peer_lacks)
    ensembles = ensemble_report.evaluate(evidence, split)
    tables = _tables(evidence, frame, regimes, split, comparison, views, others, ensembles)
    setups = {regime: regime_setup(e) for regime, e in evidence.regimes.items()}
    if comparison is None:
        sentences = no_verdict(list(lacks) or ["a second regime"])
    else:
        accuracy = {r: estimate(frame, r, "accuracy") for r in regimes}
        learned = {r: (int(frame.loc[frame["regime"] == r, "learned"].sum()), int((frame["regime"] == r).sum()))
                   for r in regimes}
        sentences = verdict(comparison, accuracy, synthetic=any(v.synthetic for v in views), learned=learned,
                            majority=float(frame["majority_rate"].iloc[0]),
                            stratified=float(frame["stratified_rate"].iloc[0]),
                            macro_f1={r: estimate(frame, r, "macro_f1") for r in regimes},
                            majority_macro_f1=float(frame["majority_macro_f1"].iloc[0]),
                            differences=budget_differences(setups), pretraining=pretraining_notes(setups))
    classes = per_class(evidence, split, comparison)
    tables.update(_calibration_tables(frame, regimes, split, classes))
    tables = _with_note(tables, PREDICTION_TABLES, tta_note(setups))
    return ReportContent(evidence, split, frame, tables, comparison, sentences, views, lacks, setups,
                         classes=classes, calibration=run_calibrations(evidence, split))


def per_class(evidence: Evidence, split: str, comparison: Comparison | None) -> ClassComparison | None:
    """Per-class McNemar (Holm across classes) and the confusion difference, on the images the paired
    comparison already checked are the same for both regimes; None without a comparison."""
    if comparison is None:
        return None
    a, b = comparison.name_a, comparison.name_b
    labels = evidence.regimes[a].runs[0].split(split)[0]
    predictions = {regime: {run.config.seed: run.split(split)[1].argmax(axis=1) for run in e.runs}
                   for regime, e in evidence.regimes.items() if regime in (a, b)}
    return compare_classes(labels, predictions[a], predictions[b], a, b, split, CLASSES)


def run_calibrations(evidence: Evidence, split: str) -> dict[str, RunCalibration]:
    """Per regime, its first run's reliability bins (the run the other per-regime figures show), before
    and after scaling by the temperature fitted on that run's validation predictions."""
    made = {}
    for regime, e in evidence.regimes.items():
        run = e.runs[0]
        labels, probs = run.split(split)
        temperature = fit_temperature(*run.split("val"))
        made[regime] = RunCalibration(run.config.seed, temperature, reliability(labels, probs),
                                      reliability(labels, scale(probs, temperature)))
    return made


# the tables computed from the final runs' predictions: each names their test-time augmentation, if any
PREDICTION_TABLES = ("table1", "table2", "table3", "table4", "recall", "seeds", "comparison", "calibration", "classes",
                     "peers", "ensembles")


def _with_note(tables: dict[str, ReportTable], keys: Sequence[str], note: str) -> dict[str, ReportTable]:
    """``note`` added to the note of each table of ``keys`` (the tables unchanged when it is empty)."""
    if not note:
        return tables
    return {key: replace(t, note=f"{t.note} {note}".strip()) if key in keys else t
            for key, t in tables.items()}


def _calibration_tables(frame: pd.DataFrame, regimes: list[str], split: str,
                        classes: ClassComparison | None) -> dict[str, ReportTable]:
    made = [calibration_table(frame, regimes, split)] + ([class_table(classes)] if classes is not None else [])
    return {t.key: t for t in made}


def paired(evidence: Evidence, split: str, partial: bool) -> tuple[Comparison | None, list[str]]:
    """Compare the two regimes image by image; refuses (PairingError) when they saw different images."""
    if len(evidence.regimes) < 2:
        return None, []
    runs = {f"{regime} seed {run.config.seed}": run for regime, e in evidence.regimes.items() for run in e.runs}
    fingerprints = {name: str(run.manifest.get("data", {}).get("fingerprint")) for name, run in runs.items()}
    try:
        labels = check_same_images({name: run.split(split)[0] for name, run in runs.items()}, fingerprints, split)
    except PairingError as exc:
        if not partial:
            raise PairingError(f"{exc.raw}; or pass «partial» for a report without the paired comparison") from None
        return None, [f"the paired comparison of the regimes ({exc})"]
    name_a, name_b = list(evidence.regimes)
    predictions = {regime: {run.config.seed: run.split(split)[1].argmax(axis=1) for run in e.runs}
                   for regime, e in evidence.regimes.items()}
    return compare(labels, predictions[name_a], predictions[name_b], name_a, name_b, split), []


def data_views(evidence: Evidence, split: str) -> list[DataView]:
    """One view per distinct dataset (fingerprint) the runs used; usually one for both regimes."""
    groups: dict[str, list[tuple[str, Run]]] = {}
    for regime, e in evidence.regimes.items():
        for run in e.runs:
            groups.setdefault(str(run.manifest.get("data", {}).get("fingerprint")), []).append((regime, run))
    return [collect.data_view([run for _, run in members], split, list(dict.fromkeys(r for r, _ in members)))
            for members in groups.values()]


def off_the_shelf(names: Sequence[str], evidence: Evidence, views: list[DataView], split: str,
                  partial: bool) -> tuple[list[PeerResult], list[str]]:
    """The off-the-shelf models on the runs' faces; what stops them is an error, or a lack when ``partial``."""
    try:
        return peer_report.evaluate(names, evidence, views, split), []
    except (ReportError, PeerError) as exc:
        if not partial:
            raise ReportError(f"{exc.raw}; or pass «partial» for a report without it") from None
        return [], [f"the off-the-shelf model(s) {', '.join(names)} ({exc})"]


def _tables(evidence: Evidence, frame: pd.DataFrame, regimes: list[str], split: str, comparison: Comparison | None,
            views: list[DataView], others: Sequence[PeerResult] = (),
            ensembles: Sequence[EnsembleResult] = ()) -> dict[str, ReportTable]:
    made = [table_i(frame, regimes, split), table_ii(frame, regimes, split), table_iii(frame, regimes, split),
            table_iv(frame, regimes, split), recall_table(frame, regimes, split, {p.title: p.numbers for p in others}),
            seeds_table(frame, split)]
    if others:
        made.append(peer_report.table(others, split))
    if ensembles:
        made.append(ensemble_report.table(ensembles, split))
    if comparison is not None:
        made.append(comparison_table(comparison, frame, ensemble_report.pair(ensembles, regimes)))
    made += [dataset_table(view) for view in views]
    searches = [e.search for e in evidence.regimes.values()]
    made.append(search_table(searches))
    for search in searches:
        made += [t for t in (best_params_table(search), importances_table(search)) if t is not None]
    made.append(environment_table(evidence))
    return {t.key: t for t in made}


# --------------------------------------------------------------------------------------- draw
def draw_figures(content: ReportContent, out: Path) -> dict[str, FigureBlock]:
    """Every PNG into ``out/figures``; keys name them for ``compose`` (paths relative to ``out``)."""
    drawn: dict[str, FigureBlock] = {}
    split_name = SPLIT_NAMES[content.split]
    for view in content.data:
        drawn.update(_data_figures(view, out))
    for regime, evidence in content.evidence.regimes.items():
        drawn.update(_regime_figures(regime, evidence, content, out, split_name))
    drawn.update(_seed_figure(content, out, split_name))
    drawn.update(_calibration_figures(content, out, split_name))
    drawn.update(saliency_figure(content, out, _figure))
    for evidence in content.evidence.regimes.values():
        drawn.update(_search_figures(evidence.search, out, synthetic=any(v.synthetic for v in content.data)))
    drawn.update(_budget_figure(content, out))
    drawn.update(_side_by_side_figures(content, out))
    drawn.update(draw_curve_figures(content.curves, out))
    drawn.update(draw_edge_figures(content.edges, out))
    return drawn


def draw_edge_figures(edges: Sequence[EdgeSummary], out: Path) -> dict[str, FigureBlock]:
    """Each edge search: every trial's validation metric against its latency, the Pareto front drawn."""
    drawn = {}
    for e in edges:
        axis, area = (("single-face TFLite latency", "the TFLite file's size") if e.cost == "latency" else
                      ("TFLite file's size", "its single-face TFLite latency"))
        line = (f", the red line is {edge_report.FPS:g} frames a second on the machine that measured them"
                if e.cost == "latency" else "")
        crossed = ("; a cross marks a trial that did not beat the majority-class rate, kept off the front"
                   if any(not p.learned for p in e.points) else "")
        caption = (f"Edge search {e.name}: validation {e.metric} of every complete trial against its {axis} (log axis; "
                   f"the marker's area is {area}), coloured by backbone; the black steps join the Pareto front{line}"
                   f"{crossed}.")
        drawn[f"edge:{e.name}"] = _figure(out, f"edge_{_slug(e.name)}", caption,
                                          lambda p, mark, e=e: edge_report.draw(e, p, mark=mark), synthetic=e.synthetic)
    return drawn


def draw_curve_figures(curves: Sequence[CurveSummary], out: Path) -> dict[str, FigureBlock]:
    """Each data-efficiency curve: accuracy and macro-F1 against training images, and the paired difference."""
    drawn = {}
    for c in curves:
        slug = _slug(c.name)
        caption = (f"Data-efficiency curve {c.name}: test accuracy and macro-F1 against the number of training images "
                   "(log axis), one line per regime with its 95% interval over seeds (the range with 2 seeds); the "
                   "dashed line is the majority-class baseline.")
        drawn[f"curve:{c.name}"] = _figure(out, f"curve_{slug}", caption, lambda p, mark, c=c: curve_report.draw(
            c, p, mark=mark), synthetic=c.synthetic)
        caption = (f"What transfer buys in curve {c.name}: transfer minus scratch test accuracy at each share, with its "
                   "95% paired bootstrap interval over test images (pooled over the seeds both regimes trained); "
                   "circled where the interval excludes 0.")
        drawn[f"curve-gap:{c.name}"] = _figure(out, f"curve_{slug}_difference", caption,
                                               lambda p, mark, c=c: curve_report.draw_difference(c, p, mark=mark),
                                               synthetic=c.synthetic)
    return drawn


def _slug(name: str) -> str:
    """A study's name as part of a file name."""
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)


def _figure(out: Path, name: str, caption: str, draw, synthetic: bool = False) -> FigureBlock:
    """Draw one PNG under a temporary name and rename it: a full disk leaves no half-drawn figure.

    ``draw(path, mark)``; a figure of synthetic data gets ``figures.SYNTHETIC`` stamped on the image itself.
    """
    relative = Path("figures") / f"{name}.png"
    with writing(out / relative):
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
    with atomic(out / relative) as tmp:
        draw(tmp, figures.SYNTHETIC if synthetic else "")
    return FigureBlock(relative, caption)


def _data_figures(view: DataView, out: Path) -> dict[str, FigureBlock]:
    title = "Images per class" + (" (SYNTHETIC SAMPLE)" if view.synthetic else "")
    name = f"class_distribution_{view.fingerprint}"
    caption = f"Images per class and split (paper Fig. 1); data {view.fingerprint}."
    return {f"data:{view.fingerprint}": _figure(out, name, caption, lambda p, mark: figures.class_distribution(
        view.counts, p, title=title, mark=mark), synthetic=view.synthetic)}


def _regime_figures(regime: str, evidence: RegimeEvidence, content: ReportContent, out: Path,
                    split_name: str) -> dict[str, FigureBlock]:
    """The paper's per-model figures, from the regime's first seed (the paper shows one model per regime)."""
    run = evidence.runs[0]
    seed = run.config.seed
    labels, probs = run.split(content.split)
    metrics, lines = compute_metrics(labels, probs), curves(labels, probs)
    where, short = f"{regime}, seed {seed}, {split_name} set", f"{split_name}, seed {seed}"
    unfreeze = ("; the dashed line marks the unfreeze between the frozen and fine-tune phases"
                if figures.phase_boundaries(run.history) else "")
    specs = {
        "training": (f"Accuracy and loss per epoch, {regime} (seed {seed}){unfreeze} (paper Figs. 4, 5, 9, 10).",
                     lambda p, mark: figures.training_curves(run.history, p, mark=mark,
                                                             title=f"{regime}: training history (seed {seed})")),
        "confusion": (f"Confusion matrix, counts and row-normalized ({where}; paper Figs. 6, 11).",
                      lambda p, mark: figures.confusion_matrix(metrics["confusion_matrix"], CLASSES, p, mark=mark,
                                                               title=f"{regime}: confusion matrix ({short})")),
        "roc": (f"ROC curves per class and micro-average ({where}; paper Figs. 7, 12).",
                lambda p, mark: figures.roc_curves(lines["roc"], metrics["roc_auc"], p, mark=mark,
                                                   title=f"{regime}: ROC ({short})")),
        "pr": (f"Precision-recall curves per class and micro-average ({where}; paper Figs. 8, 13).",
               lambda p, mark: figures.pr_curves(lines["pr"], metrics["average_precision"], p, mark=mark,
                                                 title=f"{regime}: precision-recall ({short})")),
    }
    synthetic = any(v.synthetic for v in content.data if regime in v.regimes)
    drawn = {f"{kind}:{regime}": _figure(out, f"{kind}_{regime}", caption, draw, synthetic=synthetic)
             for kind, (caption, draw) in specs.items()}
    faces = _faces(regime, run, content, out, split_name)
    if faces is not None:
        drawn[f"faces:{regime}"] = faces
    return drawn


def _faces(regime: str, run: Run, content: ReportContent, out: Path, split_name: str) -> FigureBlock | None:
    view = next(v for v in content.data if regime in v.regimes)
    if view.images is None:
        return None
    labels, probs = run.split(content.split)
    picked = face_indices(len(labels))
    predicted = probs[picked].argmax(axis=1)
    caption = (f"{len(picked)} {split_name} faces with true and predicted labels, {regime} (seed {run.config.seed}); "
               "green = correct, red = wrong, in brackets the predicted class's probability (paper Figs. 14, 15).")
    return _figure(out, f"faces_{regime}", caption, lambda p, mark: figures.face_grid(
        view.images[picked], [CLASSES[i] for i in labels[picked]], [CLASSES[i] for i in predicted],
        probs[picked].max(axis=1), p, title=f"{regime}: predictions on {split_name} faces", mark=mark),
        synthetic=view.synthetic)


def face_indices(n: int) -> np.ndarray:
    """The same seeded draw of faces for every regime, so the two grids show the same people."""
    rng = np.random.default_rng(FACE_GRID_SEED)
    return np.sort(rng.choice(n, size=min(FACE_GRID_SIZE, n), replace=False))


def _seed_figure(content: ReportContent, out: Path, split_name: str) -> dict[str, FigureBlock]:
    frame = content.frame
    summary = {column: {r: _bounds(estimate(frame, r, column)) for r in content.evidence.regimes}
               for column, _ in SEED_METRICS}
    metrics = [(column, f"{split_name} {label}") for column, label in SEED_METRICS]
    cut = [c for c in BOUNDED if any(low is not None and (low < 0 or high > 1) for _, low, high in summary[c].values())]
    caption = (f"{split_name.capitalize()} accuracy, macro-F1 and loss of every run: dots are seeds (s0 = "
               "seed 0), the bar is the mean, whiskers the 95% t-interval over seeds from 3 seeds on, the range of the "
               "two with 2, none with one.")
    if cut:
        caption += " Whiskers reaching past 0 or 1 are cut at the axis; the tables give the full intervals."
    limits = {c: (-0.02, 1.02) for c in cut}
    return {"seeds": _figure(out, "seeds", caption,
                             lambda p, mark: figures.seed_comparison(frame, metrics, summary, p, limits=limits,
                                                                     mark=mark),
                             synthetic=any(v.synthetic for v in content.data))}


def _calibration_figures(content: ReportContent, out: Path, split_name: str) -> dict[str, FigureBlock]:
    """A reliability diagram per regime, and the confusion-matrix difference when the regimes were paired."""
    drawn: dict[str, FigureBlock] = {}
    for regime, cal in (content.calibration or {}).items():
        curves_ = {f"as trained (ECE {cal.before.ece:.3f})": cal.before,
                   f"temperature-scaled, T = {cal.temperature:.2f} (ECE {cal.after.ece:.3f})": cal.after}
        caption = (f"Reliability diagram, {regime} (seed {cal.seed}, {split_name} set): accuracy against mean "
                   f"confidence in {len(cal.before.count)} equal-width confidence bins, before and after temperature "
                   "scaling with T fitted on validation; points below the diagonal are overconfident. Below: images "
                   "per bin.")
        synthetic = any(v.synthetic for v in content.data if regime in v.regimes)
        drawn[f"reliability:{regime}"] = _figure(
            out, f"reliability_{regime}", caption,
            lambda p, mark, c=curves_, r=regime, s=cal.seed: figures.reliability_diagram(
                c, p, title=f"{r}: reliability ({split_name}, seed {s})", mark=mark), synthetic=synthetic)
    classes = content.classes
    if classes is not None:
        a, b = classes.name_a, classes.name_b
        changed = classes.changed()
        colors = (figures.REGIME_COLORS.get(a, "tab:blue"), figures.REGIME_COLORS.get(b, "tab:orange"))
        caption = (f"Row-normalized confusion matrix of {b} minus that of {a} ({split_name} set; each the mean over "
                   f"its regime's seeds): rows are true classes, so the diagonal is the change in recall; "
                   f"{colors[1].removeprefix('tab:')} cells are more frequent with {b}, "
                   f"{colors[0].removeprefix('tab:')} ones with {a}."
                   + (f" * marks the classes whose recall changed significantly: {', '.join(changed)}." if changed
                      else ""))
        drawn["confusion-difference"] = _figure(
            out, "confusion_difference", caption,
            lambda p, mark: figures.confusion_difference(
                classes.confusion_difference, classes.classes, p, label=f"{b} − {a} (share of the true class)",
                marked=changed, colors=colors,
                title=f"Confusion difference: {b} − {a} ({split_name})", mark=mark),
            synthetic=any(v.synthetic for v in content.data))
    return drawn


def _bounds(e) -> tuple[float, float | None, float | None]:
    return e.mean, e.low, e.high


def _search_figures(search: SearchSummary, out: Path, synthetic: bool = False) -> dict[str, FigureBlock]:
    slug = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in search.name)
    trials = search.trials
    drawn: dict[str, FigureBlock] = {}
    states = trials["state"].value_counts() if len(trials) else pd.Series(dtype=int)
    if states.get("COMPLETE", 0) >= 2:
        axes = parallel_axes(search)
        shown = (f"the {len(axes)} most important of its {len(search.axes)} parameters" if len(axes) < len(search.axes)
                 else "every searched parameter")
        drawn[f"parallel:{search.name}"] = _figure(
            out, f"search_{slug}_parallel", f"Parallel coordinates of the complete trials of study {search.name} over "
            f"{shown}; the thickest line is the best trial.",
            lambda p, mark: figures.parallel_coordinates(trials, axes, search.objective, search.direction, p,
                                                         title=f"{search.name}: complete trials", mark=mark),
            synthetic=synthetic)
    return drawn


def _side_by_side_figures(content: ReportContent, out: Path) -> dict[str, FigureBlock]:
    """Every regime's search on one figure: the optimization histories on one axis, the importances in panels
    side by side (an evaluator a row)."""
    searches = {regime: e.search for regime, e in content.evidence.regimes.items()}
    synthetic = any(v.synthetic for v in content.data)
    drawn: dict[str, FigureBlock] = {}
    tried = {regime: s for regime, s in searches.items() if s.counts.get("COMPLETE", 0) + s.counts.get("PRUNED", 0)}
    if tried:
        first = next(iter(tried.values()))
        names = ", ".join(f"{s.name} ({regime})" for regime, s in tried.items())
        caption = (f"Optimization histories of {names} on one axis: validation {first.objective} per trial (dots), "
                   "each study's best so far (step line), pruned trials as crosses at their last reported value"
                   + (", failed ones as triangles at the bottom" if any(s.counts.get("FAIL") for s in tried.values())
                      else "") + ".")
        drawn["histories"] = _figure(out, "search_histories", caption, lambda p, mark: figures.optimization_histories(
            {regime: s.trials for regime, s in tried.items()}, first.direction, first.objective, p,
            title="Optimization histories", mark=mark), synthetic=synthetic)
    ranked = {regime: s.importances for regime, s in searches.items() if s.importances}
    if ranked:
        total = len({name for by in ranked.values() for values in by.values() for name in values})
        shown = "every parameter" if total <= IMPORTANCE_BARS else \
            f"the {IMPORTANCE_BARS} most important of the {total} parameters"
        evaluators = list(dict.fromkeys(e for by in ranked.values() for e in by))
        caption = (f"Hyperparameter importances side by side ({', '.join(ranked)}), a row per evaluator "
                   f"({' and '.join(evaluators)}), {shown} in the same order in every panel; each study's "
                   "table lists them all, with the note on how far they can be trusted.")
        drawn["importances"] = _figure(out, "search_importances", caption, lambda p, mark: figures.param_importances(
            ranked, p, title="Hyperparameter importances", top=IMPORTANCE_BARS, mark=mark), synthetic=synthetic)
    return drawn


def _budget_figure(content: ReportContent, out: Path) -> dict[str, FigureBlock]:
    budgets = budget.regime_budgets(content.evidence.regimes)
    if not budgets:
        return {}
    searches = {regime: e.search for regime, e in content.evidence.regimes.items() if regime in budgets}
    seconds = {regime: budget.mean_trial_seconds(s.trials) for regime, s in searches.items()}
    objective = next(iter(searches.values())).objective
    caption = (f"Expected best validation {objective} of each regime's search by number of trials (left) and by "
               "compute (right: trials times the study's mean trial time), Tang et al.'s unbiased estimator over the "
               f"study's own trials, with a 95% bootstrap band; {budget.PRUNED_RULE}.")
    return {"budget": _figure(out, "search_budget", caption, lambda p, mark: figures.expected_best(
        budgets, seconds, objective, p, title="Expected best by budget", mark=mark),
        synthetic=any(v.synthetic for v in content.data))}


def parallel_axes(search: SearchSummary) -> list:
    """At most ``PARALLEL_AXES`` parameters, by importance when known: 16 axes would be unreadable."""
    ranked = search.ranking
    order = {name: i for i, name in enumerate(ranked)}
    axes = sorted(search.axes, key=lambda a: order.get(a.name, len(order)))
    return axes[:PARALLEL_AXES]


# -------------------------------------------------------------------------------------- write
def write(document: Document, out: Path, formats: Sequence[str]) -> dict[str, Path]:
    """Each document whole or not at all (``study.runs.atomic``); a failed write is one ``WriteFailed`` line."""
    with writing(out):
        out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    if "md" in formats:
        path = out / "report.md"
        write_text(path, md.render(document))
        written["md"] = path
    if "pdf" in formats:
        written["pdf"] = pdf.render(document, out / "report.pdf", base=out)
    return written
