"""Matplotlib figures, each drawn from plain data (DataFrames, arrays) and saved as PNG."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


SYNTHETIC = "SYNTHETIC SAMPLE"  # the mark reports/build.py puts on every figure drawn from synthetic data
MARK_COLOR = "#ff0000"  # pure red: no figure draws data in it (tab:red is #d62728), so the mark stands apart
MARK_ALPHA = 0.17  # of the diagonal watermark: legible, and the data underneath stays readable


def _save(fig: plt.Figure, path: str | Path, mark: str = "") -> Path:
    path = Path(path)
    try:
        if mark:
            _mark(fig, mark)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)  # also when the disk is full: an open figure is never freed
    return path


def _mark(fig: plt.Figure, mark: str) -> None:
    """Stamp ``mark`` on the image itself, where cropping a title or caption does not remove it.

    A red label in a strip of its own above the top-left corner (it covers nothing), and the same words
    large, faint and diagonal across the whole drawing (no crop that keeps the data loses them).
    """
    fig.draw_without_rendering()  # runs the layout engine: the extents below are the ones saved
    renderer = fig.canvas.get_renderer()
    width, height = fig.get_size_inches()
    drawn = fig.get_tightbbox(renderer)  # inches: what bbox_inches="tight" saves
    fig.text(drawn.x0 / width, (drawn.y1 + 0.06) / height, mark, ha="left", va="bottom", fontsize=11,
             fontweight="bold", color=MARK_COLOR, gid="mark-label")
    drawn = fig.get_tightbbox(renderer)
    diagonal = fig.text((drawn.x0 + drawn.x1) / 2 / width, (drawn.y0 + drawn.y1) / 2 / height, mark,
                        ha="center", va="center", rotation_mode="anchor", fontsize=100, fontweight="bold",
                        color=MARK_COLOR, alpha=MARK_ALPHA, zorder=10, gid="mark-diagonal")
    diagonal.set_in_layout(False)  # neither moves the drawing nor grows the saved area
    extent = diagonal.get_window_extent(renderer)  # unrotated, at 100 pt
    text_w, text_h = extent.width / fig.dpi, extent.height / fig.dpi
    theta = np.arctan2(drawn.height, drawn.width)  # corner to corner
    span_w = text_w * np.cos(theta) + text_h * np.sin(theta)
    span_h = text_w * np.sin(theta) + text_h * np.cos(theta)
    diagonal.set_rotation(np.degrees(theta))
    diagonal.set_fontsize(100 * 0.9 * min(drawn.width / span_w, drawn.height / span_h))


def class_distribution(counts: pd.DataFrame, path: str | Path, title: str = "Class distribution", *,
                       mark: str = "") -> Path:
    """The paper's Fig. 1: images per class, one bar per split."""
    fig, ax = plt.subplots(figsize=(8, 4))
    counts.plot.bar(ax=ax, width=0.8)
    ax.set_xlabel("emotion")
    ax.set_ylabel("images")
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=0)
    for container in ax.containers:
        ax.bar_label(container, fontsize=7)
    return _save(fig, path, mark)


def training_curves(history: pd.DataFrame, path: str | Path, title: str = "", *, mark: str = "") -> Path:
    """Accuracy and loss vs epoch, train and validation, with the frozen / fine-tune boundary marked.

    The loss panel shows both losses on one axis (both are nats): cross-entropy, solid, comparable
    with the evaluated losses; and Keras's loss, which adds the head's L2 penalty, dotted in the same
    colours, so the gap between a pair of lines is the penalty.
    """
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    loss = "cross_entropy" if "cross_entropy" in history else "loss"
    names = {"accuracy": "accuracy", "cross_entropy": "cross-entropy", "loss": "loss incl. L2 (Keras)"}
    for ax, metric in zip(axes, ("accuracy", loss)):
        for prefix, split, color in (("", "train", "C0"), ("val_", "validation", "C1")):
            ax.plot(history["epoch"], history[f"{prefix}{metric}"], marker=".", color=color,
                    label=f"{split} {names[metric]}")
            if metric == "cross_entropy":
                ax.plot(history["epoch"], history[f"{prefix}loss"], ":", color=color,
                        label=f"{split} loss incl. L2 (Keras)")
        _mark_phases(ax, history)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))  # no epoch 1.5 on a short run
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss (nats)" if metric != "accuracy" else "accuracy")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    fig.suptitle(title or "Training history")
    fig.tight_layout()
    return _save(fig, path, mark)


def _mark_phases(ax: plt.Axes, history: pd.DataFrame) -> None:
    for boundary in phase_boundaries(history):
        ax.axvline(boundary, color="grey", linestyle="--", linewidth=1)
        ax.annotate("unfreeze", (boundary, 0.98), xycoords=("data", "axes fraction"), ha="center",
                    va="top", fontsize=8, color="grey", backgroundcolor="white")


def phase_boundaries(history: pd.DataFrame) -> list[float]:
    """Epoch positions (between two epochs) where the phase changes."""
    phases = history["phase"].tolist()
    epochs = history["epoch"].tolist()
    return [epochs[i] + 0.5 for i in range(len(phases) - 1) if phases[i] != phases[i + 1]]


def confusion_matrix(cm: Sequence[Sequence[int]], classes: Sequence[str], path: str | Path, title: str = "", *,
                     mark: str = "") -> Path:
    """Counts and row-normalized (recall per true class) side by side."""
    cm = np.asarray(cm)
    rows = cm.sum(axis=1, keepdims=True)
    normalized = np.divide(cm, rows, out=np.zeros_like(cm, dtype=float), where=rows > 0)
    # constrained: the right panel's "true" and class names clear the left colour bar's ticks
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 5.5), layout="constrained")
    for ax, values, fmt, label in ((axes[0], cm, "d", "counts"), (axes[1], normalized, ".2f", "row-normalized")):
        image = ax.imshow(values, cmap="Blues")
        fig.colorbar(image, ax=ax, fraction=0.046)
        threshold = values.max() / 2 if values.size else 0
        for (i, j), v in np.ndenumerate(values):
            ax.text(j, i, format(v, fmt), ha="center", va="center", fontsize=8,
                    color="white" if v > threshold else "black")
        ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
        ax.set_yticks(range(len(classes)), classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(label)
    fig.suptitle(title or "Confusion matrix")
    return _save(fig, path, mark)


def roc_curves(curves: dict[str, tuple[np.ndarray, np.ndarray]], aucs: dict[str, float | None], path: str | Path,
               title: str = "", *, mark: str = "") -> Path:
    """Per-class and micro-average ROC (the paper's Fig. 10 and 11), the legend beside the axes."""
    fig, ax = plt.subplots(figsize=(8.3, 5.6), layout="constrained")
    for name, (fpr, tpr) in curves.items():
        style = {"linestyle": ":", "linewidth": 3, "color": "black"} if name == "micro" else {}
        ax.plot(fpr, tpr, label=f"{name} (AUC {_fmt(aucs.get(name))})", **style)
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle="--")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title or "ROC curves")
    _legend_beside(ax)
    ax.grid(alpha=0.3)
    return _save(fig, path, mark)


def pr_curves(curves: dict[str, tuple[np.ndarray, np.ndarray]], aps: dict[str, float | None], path: str | Path,
              title: str = "", *, mark: str = "") -> Path:
    """Per-class and micro-average precision-recall (the paper's Fig. 12 and 13), the legend beside the axes."""
    fig, ax = plt.subplots(figsize=(8.3, 5.6), layout="constrained")
    for name, (recall, precision) in curves.items():
        style = {"linestyle": ":", "linewidth": 3, "color": "black"} if name == "micro" else {}
        ax.step(recall, precision, where="post", label=f"{name} (AP {_fmt(aps.get(name))})", **style)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(title or "Precision-recall curves")
    _legend_beside(ax)
    ax.grid(alpha=0.3)
    return _save(fig, path, mark)


def _legend_beside(ax: plt.Axes) -> None:
    """Outside the axes, to the right: eight curves leave no corner of a ROC or PR plot free for sure."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=8)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


# ------------------------------------------------------------------ report figures (reports/build.py)
# Drawn from the plain rows reports/collect.py gathers rather than with optuna.visualization.matplotlib:
# optuna's plots take a live Study, switch the global matplotlib style to ggplot for every later figure,
# leave pruned trials out of the history, and crowd categorical axes of the parallel-coordinate plot.
from typing import Any, Mapping  # noqa: E402

from matplotlib import cm as _cm  # noqa: E402
from matplotlib.colors import LinearSegmentedColormap as _LinearSegmented  # noqa: E402
from matplotlib.colors import Normalize as _Normalize  # noqa: E402
from matplotlib.transforms import blended_transform_factory as _blended  # noqa: E402

REGIME_COLORS = {"scratch": "tab:blue", "transfer": "tab:orange"}


def optimization_histories(studies: Mapping[str, pd.DataFrame], direction: str, objective: str, path: str | Path,
                           title: str = "", *, mark: str = "") -> Path:
    """Every study's objective per trial on one axis (``studies``: regime -> its trials frame): complete trials as
    dots, pruned ones as crosses at their last reported value, failed ones as triangles at the bottom, and each
    study's best so far as a step line in its colour."""
    fig, ax = plt.subplots(figsize=(8, 4.2))
    last = 0
    for i, (regime, trials) in enumerate(studies.items()):
        color = REGIME_COLORS.get(regime, f"C{i}")
        done = trials[trials["state"] == "COMPLETE"].sort_values("number")
        pruned = trials[trials["state"] == "PRUNED"]
        failed = trials[trials["state"] == "FAIL"]
        end = int(trials["number"].max()) if len(trials) else 0
        last = max(last, end)
        ax.scatter(done["number"], done["value"], color=color, s=22, zorder=3, label=f"{regime}: complete")
        if len(pruned):
            ax.scatter(pruned["number"], pruned["last_value"], marker="x", color=color, zorder=3,
                       label=f"{regime}: pruned (last reported value)")
        if len(failed):
            ax.scatter(failed["number"], np.full(len(failed), 0.03), marker="v", color=color, zorder=3,
                       transform=_blended(ax.transData, ax.transAxes), label=f"{regime}: failed")
        if len(done):
            best = done["value"].cummax() if direction == "maximize" else done["value"].cummin()
            ax.step([*done["number"], end], [*best, best.iloc[-1]], where="post", color=color, linewidth=2,
                    label=f"{regime}: best so far ({best.iloc[-1]:.3f})")
    ax.set_xlim(-0.5, last + 0.5)
    ax.set_xlabel("trial")
    ax.set_ylabel(f"validation {objective}")
    ax.set_title(title or "Optimization histories")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    _legend_beside(ax)
    return _save(fig, path, mark)


def expected_best(curves: Mapping[str, Any], seconds: Mapping[str, float], objective: str, path: str | Path,
                  title: str = "", *, mark: str = "") -> Path:
    """Each regime's expected best by number of trials (left) and by compute spent (right), with its band;
    ``curves``: regime -> ``reports.budget.Budget``, ``seconds``: regime -> mean seconds a trial."""
    fig, (by_trials, by_time) = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    untimed = [r for r in curves if not (np.isfinite(seconds[r]) and seconds[r] > 0)]  # no trial times: trials only
    for i, (regime, b) in enumerate(curves.items()):
        color = REGIME_COLORS.get(regime, f"C{i}")
        n = np.arange(1, len(b.curve) + 1)
        for ax, x in ((by_trials, n), *(((by_time, n * seconds[regime] / 60),) if regime not in untimed else ())):
            ax.plot(x, b.curve, color=color, marker="o", markersize=3, label=f"{regime} (best {b.best:.3f})")
            ax.fill_between(x, b.low, b.high, color=color, alpha=0.2, linewidth=0)
    if untimed:
        by_time.text(0.5, 0.05, f"no trial times recorded: {', '.join(untimed)}", transform=by_time.transAxes,
                     ha="center", fontsize=8, color="grey")
    by_trials.set_xlabel("trials")
    by_time.set_xlabel("compute spent (minutes: trials x mean trial time)")
    by_trials.set_ylabel(f"expected best validation {objective}")
    by_trials.xaxis.get_major_locator().set_params(integer=True)
    for ax in (by_trials, by_time):
        ax.grid(alpha=0.3)
    by_trials.legend(fontsize=8, loc="lower right")
    fig.suptitle(title or "Expected best by budget")
    return _save(fig, path, mark)


def param_importances(importances: Mapping[str, Mapping[str, Mapping[str, float]]], path: str | Path,
                      title: str = "", *, top: int = 10, mark: str = "") -> Path:
    """Side by side: a column per study, a row per importance evaluator (``importances``: study -> evaluator ->
    parameter -> importance). Every panel lists the same parameters in the same order (the first evaluator's
    ranking, most important on top, by each one's largest importance in any study), so a bar is compared with
    the bar beside it; at most ``top`` of them."""
    studies = list(importances)
    evaluators = list(dict.fromkeys(e for by in importances.values() for e in by))
    first = evaluators[0]
    score: dict[str, float] = {}
    for by in importances.values():
        for name, value in by.get(first, {}).items():
            score[name] = max(score.get(name, 0.0), value)
    for by in importances.values():
        for values in by.values():
            for name in values:
                score.setdefault(name, -1.0)  # a parameter only another evaluator ranks goes last
    names = sorted(score, key=lambda n: -score[n])[:top][::-1]
    fig, axes = plt.subplots(len(evaluators), len(studies), squeeze=False, sharey=True,
                             figsize=(3.6 * len(studies) + 2.2, (0.32 * len(names) + 0.9) * len(evaluators) + 0.6))
    for row, evaluator in enumerate(evaluators):
        for col, study in enumerate(studies):
            ax = axes[row][col]
            values = importances[study].get(evaluator)
            if values is None:
                ax.text(0.5, 0.5, f"{evaluator}: none\n(see the study's note)", ha="center", va="center",
                        transform=ax.transAxes, fontsize=8, color="grey")
                ax.set_xticks([])
            else:
                shown = [values.get(n, 0.0) for n in names]
                bars = ax.barh(names, shown, color=REGIME_COLORS.get(study, f"C{col}"))
                ax.bar_label(bars, labels=[f"{v:.2f}" for v in shown], padding=2, fontsize=7)
                ax.set_xlim(0, max(shown + [0.0]) * 1.3 or 1)
                ax.grid(axis="x", alpha=0.3)
            ax.set_title(f"{study}: {evaluator}", fontsize=9)
            if row == len(evaluators) - 1:
                ax.set_xlabel("importance (sums to 1)", fontsize=8)
    fig.suptitle(title or "Hyperparameter importances")
    fig.tight_layout()
    return _save(fig, path, mark)


def parallel_coordinates(trials: pd.DataFrame, axes: Sequence[Any], objective: str, direction: str,
                         path: str | Path, title: str = "", *, mark: str = "") -> Path:
    """Complete trials as lines across the objective and each searched parameter (``axes``: collect.ParamAxis).

    Numeric axes span the searched range (log-scaled where the search was); categorical axes space their
    choices evenly. Colour follows the objective, best trial drawn thickest.
    """
    done = trials[trials["state"] == "COMPLETE"].sort_values("value", ascending=direction == "maximize")
    params = [a for a in axes if f"param.{a.name}" in done]
    columns = [_objective_column(done["value"], objective)] + [_param_column(done[f"param.{a.name}"], a) for a in params]
    cmap = matplotlib.colormaps["viridis" if direction == "maximize" else "viridis_r"]
    norm = _Normalize(done["value"].min(), done["value"].max())
    fig, ax = plt.subplots(figsize=(min(max(7.0, 1.5 * len(columns)), 14.0), 4.6))
    xs = np.arange(len(columns))
    for k, value in enumerate(done["value"]):
        ys = [column[1][k] for column in columns]
        best = k == len(done) - 1
        ax.plot(xs, ys, color=cmap(norm(value)), linewidth=2.6 if best else 1.2, alpha=1.0 if best else 0.75,
                zorder=3 if best else 2)
    for x, (label, _, ticks) in zip(xs, columns):
        ax.axvline(x, color="#666666", linewidth=0.8, zorder=1)
        for y, text in ticks:
            ax.text(x + 0.03, y, text, fontsize=7, va="center", ha="left", zorder=4,
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 0.5})
    ax.set_xticks(xs, [label for label, _, _ in columns], rotation=20, ha="right")
    ax.set_xlim(-0.2, len(columns) - 0.4)
    ax.set_ylim(-0.06, 1.06)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    fig.colorbar(_cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, fraction=0.03, pad=0.02,
                 label=f"validation {objective}")
    ax.set_title(title or "Parallel coordinates of complete trials")
    return _save(fig, path, mark)


def _objective_column(values: pd.Series, objective: str) -> tuple[str, np.ndarray, list[tuple[float, str]]]:
    low, high = float(values.min()), float(values.max())
    return f"val {objective}", _scaled(values.to_numpy(float), low, high), [(0.0, f"{low:.4f}"), (1.0, f"{high:.4f}")]


def _param_column(values: pd.Series, axis: Any) -> tuple[str, np.ndarray, list[tuple[float, str]]]:
    if axis.kind == "categorical":
        choices = list(axis.choices) or sorted(values.dropna().unique().tolist(), key=str)
        spacing = max(len(choices) - 1, 1)
        index = {str(c): i for i, c in enumerate(choices)}
        ys = np.array([index.get(str(v), np.nan) / spacing if len(choices) > 1 else 0.5 for v in values], float)
        return axis.name, ys, [(i / spacing if len(choices) > 1 else 0.5, str(c)) for i, c in enumerate(choices)]
    transform = np.log10 if axis.log else (lambda v: np.asarray(v, float))
    low, high = float(transform(axis.low)), float(transform(axis.high))
    ys = _scaled(transform(values.to_numpy(float)), low, high)
    middle = 10 ** ((low + high) / 2) if axis.log else (low + high) / 2
    ticks = [(0.0, f"{axis.low:.3g}"), (0.5, f"{middle:.3g}"), (1.0, f"{axis.high:.3g}")]
    return axis.name + (" (log)" if axis.log else ""), ys, ticks


def _scaled(values: np.ndarray, low: float, high: float) -> np.ndarray:
    return (values - low) / (high - low) if high > low else np.full(len(values), 0.5)


def face_grid(images: np.ndarray, true_names: Sequence[str], pred_names: Sequence[str],
              confidences: Sequence[float], path: str | Path, title: str = "", *, mark: str = "") -> Path:
    """The paper's Fig. 14/15: up to nine faces with true and predicted labels (green right, red wrong)."""
    fig, axes = plt.subplots(3, 3, figsize=(6.3, 7.3))
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, true, pred, confidence in zip(axes.flat, images, true_names, pred_names, confidences):
        ax.imshow(np.asarray(image).squeeze(), cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"true: {true}\npredicted: {pred} ({confidence:.0%})", fontsize=9,
                     color="tab:green" if true == pred else "tab:red")
    fig.suptitle(title or "Predictions on test faces")
    fig.tight_layout()
    return _save(fig, path, mark)


def seed_comparison(points: pd.DataFrame, metrics: Sequence[tuple[str, str]],
                    summary: Mapping[str, Mapping[str, tuple[float, float | None, float | None]]],
                    path: str | Path, title: str = "", limits: Mapping[str, tuple[float, float]] | None = None, *,
                    mark: str = "") -> Path:
    """Per-seed values of each metric per regime (dots, seed numbers beside), mean bar and 95% t-interval.

    ``summary[column][regime]`` is (mean, low, high); low/high None when there is one seed. ``limits``
    fixes a metric's axis (accuracy lives in [0, 1]), cutting whiskers that reach past it: with two
    seeds a t-interval is wide enough to hide the dots otherwise.
    """
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.0 * len(metrics), 4.2), squeeze=False)
    regimes = list(dict.fromkeys(points["regime"]))
    for ax, (column, label) in zip(axes[0], metrics):
        for i, regime in enumerate(regimes):
            _seed_dots(ax, i, points[points["regime"] == regime], column, REGIME_COLORS.get(regime, f"C{i}"),
                       summary[column][regime])
        ax.set_xticks(range(len(regimes)), regimes)
        ax.set_xlim(-0.6, len(regimes) - 0.4)
        if limits and column in limits:
            ax.set_ylim(*limits[column])
        ax.set_title(label, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title or "Per-seed results: dots = seeds, bar = mean, whiskers = 95% t-interval (2 seeds: range)")
    fig.tight_layout()
    return _save(fig, path, mark)


def _seed_dots(ax: plt.Axes, x: int, rows: pd.DataFrame, column: str, color: str,
               stats: tuple[float, float | None, float | None]) -> None:
    offsets = np.linspace(-0.15, 0.15, len(rows)) if len(rows) > 1 else np.zeros(1)
    ax.scatter(x + offsets, rows[column], color=color, zorder=3, s=28)
    for dx, seed, value in zip(offsets, rows["seed"], rows[column]):
        ax.annotate(f"s{seed}", (x + dx, value), textcoords="offset points", xytext=(4, 3), fontsize=7, color="#444444")
    mean, low, high = stats
    ax.hlines(mean, x - 0.3, x + 0.3, color=color, linewidth=2)
    if low is not None and high is not None:
        ax.errorbar(x + 0.36, mean, yerr=[[mean - low], [high - mean]], color=color, capsize=4, linewidth=1.5)


# ------------------------------------------------------------------ calibration and per-class differences
def reliability_diagram(curves: Mapping[str, Any], path: str | Path, title: str = "", *, mark: str = "") -> Path:
    """Accuracy against mean confidence per confidence bin, one line per entry of ``curves`` (label ->
    bins with ``edges``, ``confidence``, ``accuracy`` and ``count`` arrays, as study.calibration.reliability
    returns them), the diagonal of perfect calibration, and below it the images per bin.

    Points below the diagonal are overconfident bins. Empty bins are left out. The legend sits beside the axes.
    """
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8.3, 6.4), sharex=True, height_ratios=(3, 1.2),
                                      layout="constrained")
    top.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
    names = list(curves)
    first = curves[names[0]] if names else None
    width = float(np.diff(first.edges).min()) if first is not None else 1.0
    for k, name in enumerate(names):
        bins = curves[name]
        filled = np.asarray(bins.count) > 0
        color, marker = (f"C{k}", "os^D"[k % 4])
        top.plot(np.asarray(bins.confidence)[filled], np.asarray(bins.accuracy)[filled], marker=marker, color=color,
                 label=name)
        shift = (k - (len(names) - 1) / 2) * width / max(len(names), 1)
        centers = (np.asarray(bins.edges[:-1]) + np.asarray(bins.edges[1:])) / 2
        bottom.bar(centers + shift, bins.count, width=width / max(len(names), 1), color=color, alpha=0.8)
    top.set_xlim(0, 1)
    top.set_ylim(0, 1.02)
    top.set_ylabel("accuracy in bin")
    top.set_title(title or "Reliability diagram")
    top.grid(alpha=0.3)
    _legend_beside(top)
    bottom.set_xlabel("confidence (top-class probability): points at each bin's mean, bars per bin")
    bottom.set_ylabel("images")
    bottom.grid(axis="y", alpha=0.3)
    return _save(fig, path, mark)


def confusion_difference(difference: np.ndarray, classes: Sequence[str], path: str | Path, title: str = "",
                         label: str = "difference", marked: Sequence[str] = (),
                         colors: tuple[str, str] = ("tab:blue", "tab:orange"), *, mark: str = "") -> Path:
    """A difference of two row-normalized confusion matrices (rows true, columns predicted), every cell
    annotated, in diverging colours centred at 0: ``colors`` are (negative, positive), by default the two
    regimes' colours of the other figures (scratch blue, transfer orange), and neither is the red of the
    SYNTHETIC mark. Classes in ``marked`` get a "*" on the true axis."""
    difference = np.asarray(difference, dtype=float)
    bound = max(float(np.abs(difference).max()) if difference.size else 0.0, 0.05)
    cmap = _LinearSegmented.from_list("difference", [colors[0], "white", colors[1]])
    fig, ax = plt.subplots(figsize=(7.6, 6.4), layout="constrained")
    image = ax.imshow(difference, cmap=cmap, vmin=-bound, vmax=bound)
    fig.colorbar(image, ax=ax, fraction=0.046, label=label)
    for (i, j), v in np.ndenumerate(difference):
        ax.text(j, i, f"{round(v, 2) + 0.0:+.2f}", ha="center", va="center", fontsize=8,  # + 0.0: no "-0.00"
                color="white" if abs(v) > 0.6 * bound else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), [f"{c} *" if c in marked else c for c in classes])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true" + (" (* recall changed significantly)" if marked else ""))
    ax.set_title(title or "Difference of row-normalized confusion matrices")
    return _save(fig, path, mark)

