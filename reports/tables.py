"""The report's tables as data (DataFrames of raw values), and the one function that formats a cell.

Every number comes from the runs' stored predictions, recomputed here by ``study.evaluation`` so
the tables and the paired tests read exactly the same predictions. Cells keep raw values (floats,
``Estimate``s over seeds, the paper's ``PaperValue``s); ``format_value`` turns each into text, and
both the Markdown and the PDF renderer call it, so the two documents carry the same digits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from reports import paper
from reports.collect import DataView, Evidence, SearchSummary
from reports.paper import PaperValue
from reports.stats import ALPHA, MIN_T_SEEDS, ClassComparison, Comparison, Estimate, t_interval
from study.calibration import BINS, calibration
from study.data import CLASSES
from study.evaluation import compute_metrics
from study.runs import Run

if TYPE_CHECKING:  # reports.ensembles builds on this module
    from reports.ensembles import EnsemblePair

SPLIT_NAMES = {"test": "test", "val": "validation"}
DIGITS = 4


# ------------------------------------------------------------------------------- cell values
@dataclass(frozen=True)
class Signed:
    """A difference, shown with its sign."""

    value: float


@dataclass(frozen=True)
class Interval:
    """A confidence interval of a difference."""

    low: float
    high: float


@dataclass(frozen=True)
class PValue:
    value: float


@dataclass(frozen=True)
class Sig:
    """A hyperparameter value: four significant digits (a learning rate of 1e-4 must not print as 0.0001)."""

    value: Any


@dataclass(frozen=True)
class Duration:
    seconds: float


@dataclass(frozen=True)
class ReportTable:
    """A titled table; ``frame``'s index holds the row labels, ``index.name`` heads that column."""

    key: str
    title: str
    frame: pd.DataFrame
    note: str = ""


def format_value(value: Any) -> str:
    """The text of one cell, the same in Markdown and PDF."""
    if value is None or (isinstance(value, (float, np.floating)) and math.isnan(value)):
        return "n/a"
    for kind, render in _RENDERERS:
        if isinstance(value, kind):
            return render(value)
    return str(value)


def _estimate(e: Estimate) -> str:
    """"m ± h" (a t-interval), "m [lo, hi]" (one cut at a natural bound), "m (range lo–hi)" (two seeds)."""
    if e.mean is None:
        return "n/a"
    digits = 1 if e.kind == "count" else DIGITS
    if e.spread == "":
        return f"{e.mean:.0f}" if e.kind == "count" else f"{e.mean:.{DIGITS}f}"
    if e.spread == "range":
        return f"{e.mean:.{digits}f} (range {e.low:.{digits}f}–{e.high:.{digits}f})"
    if e.clipped:
        return f"{e.mean:.{digits}f} [{e.low:.{digits}f}, {e.high:.{digits}f}]"
    return f"{e.mean:.{digits}f} ± {e.half_width:.{digits}f}"


def _duration(d: Duration) -> str:
    if math.isnan(d.seconds):
        return "n/a"
    minutes, seconds = divmod(int(round(d.seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"


_RENDERERS: tuple[tuple[type | tuple[type, ...], Any], ...] = (
    (Estimate, _estimate),
    (PaperValue, lambda p: f"≈{p.value:.2f}" if p.approx else f"{p.value:.0f}"),
    (Signed, lambda s: f"{s.value:+.{DIGITS}f}"),
    (Interval, lambda i: f"[{i.low:+.{DIGITS}f}, {i.high:+.{DIGITS}f}]"),
    (PValue, lambda p: "<0.0001" if p.value < 1e-4 else f"{p.value:.{DIGITS}f}"),
    (Sig, lambda s: f"{s.value:.4g}" if isinstance(s.value, float) else str(s.value)),
    (Duration, _duration),
    ((bool, np.bool_), lambda b: "yes" if b else "no"),
    ((int, np.integer), lambda i: str(int(i))),
    ((float, np.floating), lambda f: f"{float(f):.{DIGITS}f}"),
)


def cells(table: ReportTable) -> tuple[list[str], list[list[str]]]:
    """Header and body rows as text: what both renderers draw."""
    header = [table.frame.index.name or "", *map(str, table.frame.columns)]
    rows = [[str(label), *(format_value(v) for v in row)] for label, row in zip(table.frame.index, table.frame.values)]
    return header, rows


# --------------------------------------------------------------------------------- per run
def common_split(evidence: Evidence) -> str:
    """"test" when every run has test predictions (final runs), else "val" for all, so columns compare."""
    runs = [run for e in evidence.regimes.values() for run in e.runs]
    return "test" if all("test_labels" in run.predictions for run in runs) else "val"


def run_numbers(run: Run, split: str) -> dict[str, Any]:
    """Every per-run number a table shows; train metrics are the history's last epoch (the paper's Table I)."""
    evaluated = compute_metrics(*run.split(split))
    val = evaluated if split == "val" else compute_metrics(*run.split("val"))
    last = run.history.iloc[-1] if len(run.history) else {}
    row: dict[str, Any] = {
        "seed": run.config.seed,
        "epochs": int(len(run.history)),
        "train_accuracy": _get(last, "accuracy"),
        # Two losses, named apart everywhere: cross-entropy (the data term, what the evaluated losses are)
        # and Keras's objective, which adds the head's L2 penalty (what the paper's Keras loss reports).
        "train_loss": _get(last, "cross_entropy"),
        "train_loss_l2": _get(last, "loss"),
        "val_loss_l2": _get(last, "val_loss"),
        "val_accuracy": val["accuracy"],
        "val_loss": val["loss"],
        "val_majority_rate": val["baseline"]["majority_rate"],
        "val_stratified_rate": val["baseline"]["stratified_rate"],
        "test_accuracy": evaluated["accuracy"] if split == "test" else None,
        "test_loss": evaluated["loss"] if split == "test" else None,
        "test_majority_rate": evaluated["baseline"]["majority_rate"] if split == "test" else None,
        "test_stratified_rate": evaluated["baseline"]["stratified_rate"] if split == "test" else None,
        **metric_numbers(evaluated),
        "stalled": bool(run.metrics.get("stall", {}).get("stalled", False)),
        **calibration_numbers(run, split),
    }
    return row


def metric_numbers(evaluated: Mapping[str, Any]) -> dict[str, Any]:
    """The numbers of one model's predictions on the evaluated split (``compute_metrics``' output), flat, as
    the tables read them: a run's, or an off-the-shelf model's (``reports.peers``)."""
    row: dict[str, Any] = {
        "accuracy": evaluated["accuracy"],
        "loss": evaluated["loss"],
        "macro_f1": evaluated["macro_f1"],
        "n_images": evaluated["n"],
        "majority_rate": evaluated["baseline"]["majority_rate"],
        "stratified_rate": evaluated["baseline"]["stratified_rate"],
        "majority_macro_f1": evaluated["baseline"]["majority_macro_f1"],
        "stratified_macro_f1": evaluated["baseline"]["stratified_macro_f1"],
        "top_answer_share": evaluated["top_answer_share"],
        "learned": evaluated["learned"],
    }
    for key, prefix in (("true_positives", "tp"), ("roc_auc", "roc_auc"), ("average_precision", "ap"),
                        ("recall", "recall")):
        row.update({f"{prefix}.{name}": value for name, value in evaluated[key].items()})
    return row


def calibration_numbers(run: Run, split: str) -> dict[str, float]:
    """ECE, Brier and cross-entropy of the evaluated split before and after temperature scaling, T
    fitted on the run's validation predictions only, and the accuracy after scaling (the same)."""
    numbers = calibration(*run.split("val"), *run.split(split))
    return {key: numbers[key] for key in ("ece", "brier", "temperature", "ece_scaled", "brier_scaled",
                                          "accuracy_scaled")} | {"loss_scaled": numbers["nll_scaled"]}


def _get(row: Any, key: str) -> float | None:
    value = row.get(key) if hasattr(row, "get") else None
    return None if value is None or pd.isna(value) else float(value)


def runs_frame(evidence: Evidence, split: str) -> pd.DataFrame:
    """One row per run (regime, seed, numbers): every table and the per-seed figure read it."""
    rows = [{"regime": regime, **run_numbers(run, split)} for regime, e in evidence.regimes.items() for run in e.runs]
    return pd.DataFrame(rows)


# Columns that depend only on the evaluated images, so they are the same for every seed: shown as a value.
BASELINE_COLUMNS = ("majority_rate", "stratified_rate", "majority_macro_f1", "stratified_macro_f1",
                    "val_majority_rate", "val_stratified_rate", "test_majority_rate", "test_stratified_rate")


def cell_value(frame: pd.DataFrame, regime: str, column: str, kind: str = "metric") -> Estimate | float | None:
    """A baseline's value (the same for every seed), else the ``estimate`` over seeds."""
    if column in BASELINE_COLUMNS:
        values = frame.loc[frame["regime"] == regime, column].dropna() if column in frame else []
        return float(values.iloc[0]) if len(values) else None
    return estimate(frame, regime, column, kind)


def estimate(frame: pd.DataFrame, regime: str, column: str, kind: str = "metric") -> Estimate:
    """Over the regime's seeds; a loss column is bounded below only (``kind`` "loss")."""
    if kind == "metric" and ("loss" in column or "cross_entropy" in column):
        kind = "loss"
    values = frame.loc[frame["regime"] == regime, column] if column in frame else []
    return t_interval([None if pd.isna(v) else float(v) for v in values], kind)


def estimates_note(frame: pd.DataFrame, regimes: Iterable[str]) -> str:
    counts = {r: int((frame["regime"] == r).sum()) for r in regimes}
    listed = ", ".join(f"{r}: n={n}" for r, n in counts.items())
    parts = [f"ours: mean over seeds ({listed})"]
    if any(n >= MIN_T_SEEDS for n in counts.values()):
        parts.append(f"± the half-width of the 95% t-interval (from {MIN_T_SEEDS} seeds on), shown as [low, high] "
                     "where it would pass 0 or 1 and is cut there")
    if any(n == 2 for n in counts.values()):
        parts.append("with 2 seeds the range of the two, not an interval: a 95% t-interval from 2 runs spans "
                     "±12.7 standard errors and says nothing useful")
    if any(n == 1 for n in counts.values()):
        parts.append("with 1 seed the single run's value")
    return "; ".join(parts) + "."


# ------------------------------------------------------------------------------ paper tables
def _versus(frame: pd.DataFrame, regimes: Sequence[str], rows: Sequence[tuple[str, str, str | None]],
            published: Mapping[str, Mapping[str, PaperValue]], kind: str, index: str) -> pd.DataFrame:
    """Ours beside the paper's, per regime; ``rows`` are (frame column, label, paper key or None)."""
    data: dict[str, list[Any]] = {}
    for regime in regimes:
        data[f"{regime}: ours"] = [cell_value(frame, regime, column, kind) for column, _, _ in rows]
        data[f"{regime}: {paper.LABEL}"] = [published.get(key, {}).get(regime) if key else None for _, _, key in rows]
    return pd.DataFrame(data, index=pd.Index([label for _, label, _ in rows], name=index))


def table_i(frame: pd.DataFrame, regimes: Sequence[str], split: str) -> ReportTable:
    rows = [
        ("train_accuracy", "accuracy (train, last epoch)", "train_accuracy"),
        ("val_accuracy", "val accuracy (evaluated model)", "val_accuracy"),
        ("val_majority_rate", "val majority-class rate (baseline)", None),
        ("val_stratified_rate", "val stratified-random rate (baseline)", None),
        ("train_loss_l2", "loss incl. L2 (train, last epoch, Keras)", "train_loss"),
        ("val_loss_l2", "val loss incl. L2 (last epoch, Keras)", "val_loss"),
        ("train_loss", "cross-entropy (train, last epoch)", None),
        ("val_loss", "val cross-entropy (evaluated model)", None),
        ("test_accuracy", "test accuracy", None),
        ("test_majority_rate", "test majority-class rate (baseline)", None),
        ("test_stratified_rate", "test stratified-random rate (baseline)", None),
        ("test_loss", "test cross-entropy", None),
    ]
    note = _join(estimates_note(frame, regimes), paper.APPROX_NOTE, paper.TABLE_I_NOTE, LOSSES_NOTE, BASELINE_NOTE,
                 "The paper reports no test accuracy or loss.", _test_note(split))
    body = _versus(frame, regimes, rows, paper.TABLE_I, "metric", "metric")
    return ReportTable("table1", "Table I: accuracy and loss", body, note)


LOSSES_NOTE = ("Two losses, never mixed: \"loss incl. L2\" is Keras's training objective (cross-entropy plus the "
               "head's L2 penalty), as the history records it at the last epoch, and is what the paper's Keras loss "
               "reports, so the paper's values sit beside it; \"cross-entropy\" is the data term alone, computed "
               "from the stored probabilities, and is the only loss comparable between models with different L2.")
BASELINE_NOTE = ("Baselines: the majority-class rate is what answering the split's most common class for every face "
                 "scores, the stratified-random rate what answering at random in the class shares scores; a model "
                 "at the majority rate has learned nothing.")


def table_ii(frame: pd.DataFrame, regimes: Sequence[str], split: str) -> ReportTable:
    rows = [(f"tp.{c}", c, c) for c in CLASSES] + [("tp.total", "total", "total")]
    sizes = ", ".join(f"{r}: {int(frame.loc[frame['regime'] == r, 'n_images'].iloc[0])}" for r in regimes)
    paper_floor = max(v.value for v in paper.TABLE_II["total"].values())
    note = _join(estimates_note(frame, regimes), f"Diagonals of the {SPLIT_NAMES[split]} confusion matrices. Counts "
                 f"scale with the number of images evaluated (ours: {sizes}; the paper's test set holds at least "
                 f"{paper_floor:.0f}, its largest total of true positives), so compare them with the paper's as "
                 "proportions.", _test_note(split))
    body = _versus(frame, regimes, rows, paper.TABLE_II, "count", "class")
    for regime in regimes:  # the share of each class's images, beside its count: what compares across test sets
        shares = [estimate(frame, regime, f"recall.{c}") for c in CLASSES] + [estimate(frame, regime, "accuracy")]
        body.insert(body.columns.get_loc(f"{regime}: ours") + 1, f"{regime}: ours, share of class", shares)
    note = _join(note, "\"Share of class\": true positives / images of that class (recall; for the total, "
                 "accuracy).")
    return ReportTable("table2", f"Table II: true positives per class ({SPLIT_NAMES[split]})", body, note)


def table_iii(frame: pd.DataFrame, regimes: Sequence[str], split: str) -> ReportTable:
    rows = ([("roc_auc.macro", "macro-average", None), ("roc_auc.micro", "micro-average", "micro")]
            + [(f"roc_auc.{c}", c, c) for c in CLASSES])
    note = _join(estimates_note(frame, regimes), f"One-vs-rest ROC AUC on the {SPLIT_NAMES[split]} set; n/a for a "
                 "class absent from the labels. Macro-average first: it weighs every class alike, while the "
                 "micro-average pools all (image, class) pairs, so the many easy negatives of the common classes "
                 "dominate it and a model that only ranks by class share already scores well on it. The paper "
                 "reports the micro-average only.", paper.APPROX_NOTE, _test_note(split))
    return ReportTable("table3", f"Table III: ROC AUC ({SPLIT_NAMES[split]})",
                       _versus(frame, regimes, rows, paper.TABLE_III, "metric", "class"), note)


def table_iv(frame: pd.DataFrame, regimes: Sequence[str], split: str) -> ReportTable:
    rows = [("ap.micro", "micro-average", "micro")] + [(f"ap.{c}", c, c) for c in CLASSES]
    note = _join(estimates_note(frame, regimes), "Average precision (area under the precision-recall curve) on the "
                 f"{SPLIT_NAMES[split]} set.", paper.APPROX_NOTE, _test_note(split))
    return ReportTable("table4", f"Table IV: average precision ({SPLIT_NAMES[split]})",
                       _versus(frame, regimes, rows, paper.TABLE_IV, "metric", "class"), note)


def _join(*sentences: str) -> str:
    return " ".join(s for s in sentences if s)


def _test_note(split: str) -> str:
    if split == "test":
        return ""
    return ("These are validation values: not every regime has final runs with test predictions, so the best "
            "trials' runs are shown, and the search chose them on this validation set (optimistic).")


# ----------------------------------------------------------------------------- beyond the paper
def recall_table(frame: pd.DataFrame, regimes: Sequence[str], split: str,
                 others: Mapping[str, Mapping[str, Any]] | None = None) -> ReportTable:
    """Per regime over its seeds; ``others``: a column per off-the-shelf model (title -> ``metric_numbers``)."""
    rows = [("accuracy", "accuracy"), ("majority_rate", "accuracy: majority-class rate (baseline)"),
            ("stratified_rate", "accuracy: stratified-random rate (baseline)"), ("macro_f1", "macro-F1"),
            ("majority_macro_f1", "macro-F1: majority-class answer (baseline)"),
            ("stratified_macro_f1", "macro-F1: stratified-random answers (baseline, expected)")]
    rows += [(f"recall.{c}", f"recall {c}") for c in CLASSES]
    data = {regime: [cell_value(frame, regime, column) for column, _ in rows] for regime in regimes}
    data |= {title: [numbers.get(column) for column, _ in rows] for title, numbers in (others or {}).items()}
    index = pd.Index([label for _, label in rows], name="metric")
    return ReportTable("recall", f"Macro-F1 and recall per class ({SPLIT_NAMES[split]})",
                       pd.DataFrame(data, index=index),
                       _join(estimates_note(frame, regimes), "Recall = true positives / images of that class.",
                             BASELINE_NOTE, "Macro-F1 averages the F1 of all 7 classes, so the majority answer "
                             "scores 2p/(1+p)/7 (p its share) and random answers in the class shares 1/7."))


def seeds_table(frame: pd.DataFrame, split: str) -> ReportTable:
    name = SPLIT_NAMES[split]
    columns = {"epochs": "epochs", "train_accuracy": "train accuracy (last epoch)", "val_accuracy": "val accuracy"}
    if split == "test":
        columns.update({"accuracy": f"{name} accuracy", "loss": f"{name} cross-entropy"})
    columns.update({"majority_rate": f"{name} majority-class rate", "stratified_rate": f"{name} stratified rate",
                    "macro_f1": f"{name} macro-F1", "majority_macro_f1": "macro-F1 of the majority answer",
                    "top_answer_share": "share of the top answer", "learned": "learned"})
    body = frame[list(columns)].rename(columns=columns).astype(object)
    body["learned"] = [("yes" if learned else "NO: at the majority rate") + (" (stalled early)" if stalled else "")
                       for learned, stalled in zip(frame["learned"], frame["stalled"])]
    body.index = pd.Index([f"{r} seed {s}" for r, s in zip(frame["regime"], frame["seed"])], name="run")
    note = (f"The tables above summarize these rows over seeds. Learned: {name} accuracy above the split's "
            "majority-class rate (what answering its most common class for every face scores) by more than chance "
            "allows (one-sided binomial test, p < 0.01); a run that answers one class never passes. Stalled early: "
            "the stall guard saw one answer at the majority rate in each of the run's first epochs.")
    return ReportTable("seeds", "Every run (one per seed)", body, note)


def comparison_table(comparison: Comparison, frame: pd.DataFrame,
                     ensembles: "EnsemblePair | None" = None) -> ReportTable:
    """Each seed pair, the pooled seeds, and (``ensembles``: a ``reports.ensembles.EnsemblePair``) the two
    regimes' ensembles."""
    a, b = comparison.name_a, comparison.name_b
    rows = {f"{a} seed {p.seed_a} vs {b} seed {p.seed_b}": [
        p.accuracy_a, p.accuracy_b, Signed(p.bootstrap.difference), Interval(p.bootstrap.low, p.bootstrap.high),
        p.mcnemar.only_a, p.mcnemar.only_b, PValue(p.mcnemar.pvalue),
        "exact binomial" if p.mcnemar.exact else "chi² (corrected)",
    ] for p in comparison.pairs}
    pooled = comparison.pooled
    rows["all seeds (pooled)"] = [estimate(frame, a, "accuracy").mean, estimate(frame, b, "accuracy").mean,
                                  Signed(pooled.difference), Interval(pooled.low, pooled.high), *["—"] * 4]
    if ensembles is not None:
        e = ensembles
        rows[f"{a} ensemble vs {b} ensemble"] = [
            e.accuracy_a, e.accuracy_b, Signed(e.bootstrap.difference), Interval(e.bootstrap.low, e.bootstrap.high),
            e.mcnemar.only_a, e.mcnemar.only_b, PValue(e.mcnemar.pvalue),
            "exact binomial" if e.mcnemar.exact else "chi² (corrected)"]
    columns = [f"{a} accuracy", f"{b} accuracy", f"difference ({b} − {a})", "95% bootstrap CI", f"only {a} right",
               f"only {b} right", "McNemar p", "McNemar test"]
    body = pd.DataFrame.from_dict(rows, orient="index", columns=columns).astype(object)
    body.index.name = "pair"
    title = f"Paired comparison on the same {comparison.n_images} {SPLIT_NAMES[comparison.split]} images"
    note = comparison_note(comparison) + (" The ensembles' row compares each regime's runs averaged face by face "
                                          "(the mean of their probabilities: the table of ensembles above), as two "
                                          "models." if ensembles is not None else "")
    return ReportTable("comparison", title, body, note)


def comparison_note(comparison: Comparison) -> str:
    pooled = comparison.pooled
    parts = [
        f"McNemar's test per seed pair (statsmodels; exact binomial below 25 discordant images, else chi-square with "
        f"continuity correction). Bootstrap: {pooled.resamples} paired resamples of the images (seed {pooled.seed}), "
        "percentile interval; the pooled row first averages each image's correctness over each regime's seeds.",
    ]
    if comparison.by_rank:
        parts.append("The two regimes were trained with different seeds, so runs are paired by seed order.")
    if comparison.unpaired:
        parts.append(f"Without a partner (pooled row only): {', '.join(comparison.unpaired)}.")
    return " ".join(parts)


CALIBRATION_ROWS = (  # (frame column, label, estimate kind): Brier lies in [0, 2] and T in (0, inf), so "loss"
    ("accuracy", "accuracy", "metric"),
    ("accuracy_scaled", "accuracy after temperature scaling", "metric"),
    ("ece", f"ECE ({BINS} bins)", "metric"),
    ("ece_scaled", f"ECE ({BINS} bins) after temperature scaling", "metric"),
    ("brier", "Brier score (multi-class)", "loss"),
    ("brier_scaled", "Brier score after temperature scaling", "loss"),
    ("loss", "cross-entropy", "loss"),
    ("loss_scaled", "cross-entropy after temperature scaling", "loss"),
    ("temperature", "temperature T (fitted on validation)", "loss"),
)


def calibration_table(frame: pd.DataFrame, regimes: Sequence[str], split: str) -> ReportTable:
    """Accuracy beside ECE, Brier and cross-entropy, before and after temperature scaling, per regime."""
    rows = [(column, label, kind) for column, label, kind in CALIBRATION_ROWS if column in frame]
    data = {regime: [estimate(frame, regime, column, kind) for column, _, kind in rows] for regime in regimes}
    body = pd.DataFrame(data, index=pd.Index([label for _, label, _ in rows], name="metric"))
    name = SPLIT_NAMES[split]
    note = _join(estimates_note(frame, regimes),
                 f"ECE: the {name} images binned by their top-class probability into {BINS} equal-width bins; the "
                 "sum over bins of (share of images in the bin) × |accuracy − mean confidence| (0: calibrated). "
                 "Brier: mean over images of the squared distance between the probability vector and the one-hot "
                 "label, summed over the 7 classes (0 best, 2 worst).",
                 "Temperature scaling divides each run's log-probabilities by one T fitted on that run's "
                 "validation predictions (minimum cross-entropy) and applied to the "
                 f"{name} predictions; T > 1 means the model was overconfident. It never changes the predicted "
                 "class, so accuracy stays the same.",
                 "" if split == "test" else "Here T is fitted and evaluated on the same validation images, so the "
                 "values after scaling are optimistic.")
    return ReportTable("calibration", f"Calibration ({name})", body, note)


def class_table(classes: ClassComparison) -> ReportTable:
    """Per class: recall of each regime, the difference, the Holm-adjusted McNemar p of each seed pair."""
    a, b = classes.name_a, classes.name_b
    rows = {}
    for i, name in enumerate(classes.classes):
        tests = [p.classes[i] for p in classes.pairs]
        recall_a, recall_b = classes.recall(a, name), classes.recall(b, name)
        rows[name] = [tests[0].n if tests else 0, recall_a, recall_b,
                      Signed(recall_b - recall_a) if recall_a is not None and recall_b is not None else None,
                      ", ".join(format_value(PValue(t.p_adjusted)) if t.p_adjusted is not None else "n/a"
                                for t in tests),
                      f"{classes.significant_in(name)} of {len(tests)}"]
    columns = ["images", f"{a} recall", f"{b} recall", f"difference ({b} − {a})",
               "McNemar p, Holm-adjusted (per seed pair)", "significant in (seed pairs)"]
    body = pd.DataFrame.from_dict(rows, orient="index", columns=columns).astype(object)
    body.index.name = "class"
    pairs = ", ".join(f"{a} seed {p.seed_a} vs {b} seed {p.seed_b}" for p in classes.pairs)
    note = (f"For each class, McNemar's test on that class's {SPLIT_NAMES[classes.split]} images (correct = "
            f"recalled; exact binomial below 25 discordant images, else chi-square with continuity correction), per "
            f"seed pair ({pairs}); the {len(classes.classes)} p-values of a pair are adjusted by Holm's method "
            f"(statsmodels multipletests) and called significant below {ALPHA}. Recalls are means over the paired "
            "runs.")
    return ReportTable("classes", f"Recall per class: {b} against {a} ({SPLIT_NAMES[classes.split]})", body, note)


# ------------------------------------------------------------------------------ data and search
def dataset_table(view: DataView) -> ReportTable:
    body = view.counts.astype(int)
    body = pd.concat([body, body.sum().to_frame("total").T]).astype(object)
    body.index.name = "class"
    note = f"Source {view.source} ({view.layout}), fingerprint {view.fingerprint}."
    if "train" not in view.counts:
        note += f" Train counts are unknown: {view.problem}."
    return ReportTable(f"data-{view.fingerprint}", "Images per class and split", body, note)


def search_table(searches: Sequence[SearchSummary]) -> ReportTable:
    rows = {
        "regime": [s.regime for s in searches],
        "backend": [s.backend for s in searches],
        "objective (validation)": [f"{s.objective} ({s.direction})" for s in searches],
        "trials complete": [s.counts.get("COMPLETE", 0) for s in searches],
        "trials pruned": [s.counts.get("PRUNED", 0) for s in searches],
        "trials failed": [s.counts.get("FAIL", 0) for s in searches],
        "trials still running": [s.counts.get("RUNNING", 0) for s in searches],
        "best trial": [s.best_number for s in searches],
        "best value": [s.best_value for s in searches],
        "epochs trained (all trials)": [int(s.trials["epochs"].sum()) if len(s.trials) else 0 for s in searches],
        "time spent (all trials)": [Duration(float(s.trials["seconds"].sum(min_count=1))) if len(s.trials) else None
                                    for s in searches],
        "final runs": [len(s.final_runs) for s in searches],
    }
    body = pd.DataFrame.from_dict(rows, orient="index", columns=[s.name for s in searches]).astype(object)
    body.index.name = "study"
    note = ("Epochs of a pruned or failed trial are those it reported before stopping; time is wall-clock from "
            "trial start to end (h:mm:ss).")
    return ReportTable("search", "Hyperparameter searches", body, note)


def best_params_table(search: SearchSummary) -> ReportTable:
    rows = search.best_params
    cap = next((r.get("cap") for r in rows if r.get("cap") is not None), None)
    body = pd.DataFrame({"sampled": [Sig(r["best"]) if r["best"] is not None else "(not used)" for r in rows],
                         "trained": [Sig(r.get("trained", r["best"])) if r["best"] is not None else "(not used)"
                                     for r in rows],
                         "default": [Sig(r["paper"]) for r in rows],
                         "default from": [r.get("source", "") for r in rows],
                         "changed": [r["best"] is not None and r["best"] != r["paper"] for r in rows]},
                        index=pd.Index([r["name"] for r in rows], name="parameter")).astype(object)
    capped = (f" The search capped every phase at {cap} epochs, so \"trained\" gives the epochs a trial trained "
              "(at most; early stopping and pruning can end one sooner) where the sampled value was larger."
              if cap is not None else "")
    return ReportTable(f"best-{search.name}", f"Study {search.name}: best trial {search.best_number}'s parameters",
                       body, "Searched parameters of the best complete trial, as sampled and as trained, beside the "
                       "search defaults: the paper's values where it states them (\"paper\"), else ours (\"ours "
                       "(paper silent)\", chosen by measurement, docs/learning.md) or off. \"(not used)\": the best "
                       "configuration has no use for the parameter (momentum under Adam, a missing Dense layer's "
                       "width)." + capped)


def importances_table(search: SearchSummary) -> ReportTable | None:
    if not search.importances:
        return None
    ranking = search.ranking
    body = pd.DataFrame({evaluator: [values.get(name) for name in ranking]
                         for evaluator, values in search.importances.items()},
                        index=pd.Index(ranking, name="parameter")).astype(object)
    return ReportTable(f"importance-{search.name}", f"Study {search.name}: hyperparameter importances", body,
                       search.importance_note)


def environment_table(evidence: Evidence) -> ReportTable:
    """What the runs' manifests record; differing runs list every value seen."""
    manifests = {regime: [run.manifest for run in e.runs] for regime, e in evidence.regimes.items()}
    rows: dict[str, list[Any]] = {"Keras backend": [_seen(map(_keras_backend, ms)) for ms in manifests.values()]}
    for key in ("python", "keras", "numpy", "scikit_learn"):
        rows[key] = [_seen(m.get("versions", {}).get(key) for m in ms) for ms in manifests.values()]
    for key in ("device", "precision"):
        rows[key] = [_seen(m.get(key) for m in ms) for ms in manifests.values()]
    rows["training time (all runs)"] = [Duration(sum(_seconds(m) for m in ms)) for ms in manifests.values()]
    regimes = list(manifests)
    body = pd.DataFrame.from_dict(rows, orient="index", columns=regimes).astype(object)
    body.index.name = "recorded"
    return ReportTable("environment", "Environment of the runs", body, "From each run's manifest.json; the Keras backend "
                       "is the library that trained each regime's runs (TensorFlow, JAX or PyTorch).")


def _keras_backend(manifest: Mapping[str, Any]) -> str:
    """"jax 0.10.2": the backend that trained the run (a run from before backends were recorded: TensorFlow)."""
    recorded = manifest.get("backend") or {"name": "tensorflow",
                                           "version": manifest.get("versions", {}).get("tensorflow", "")}
    return f"{recorded['name']} {recorded['version']}".strip()


def _seconds(manifest: Mapping[str, Any]) -> float:
    return float(manifest.get("timings_seconds", {}).get("total", math.nan))


def _seen(values: Iterable[Any]) -> str:
    distinct = sorted({str(v) for v in values if v is not None})
    return ", ".join(distinct) if distinct else "not recorded"
