"""The figures themselves: the SYNTHETIC mark on the image, legends off the data, panels that do not overlap.

Drawn from small made-up data with matplotlib only (no TensorFlow): each test takes well under a second.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import matplotlib.image
import matplotlib.pyplot
import numpy as np
import pandas as pd
import pytest
from matplotlib.transforms import Bbox

from reports import figures
from study.calibration import reliability, scale

CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
MARK = figures.SYNTHETIC


# ------------------------------------------------------------------------------ made-up inputs
def _curves(kind: str) -> tuple[dict, dict]:
    """Eight curves (seven classes and micro) spread over the whole unit square, as real ones can be."""
    lines, scores = {}, {}
    grid = np.linspace(0, 1, 50)
    for k, name in enumerate(CLASSES + ["micro"]):
        power = 0.3 + 0.4 * k
        if kind == "roc":
            lines[name] = (grid, grid ** (1 / (1 + power)))
        else:  # recall, precision: some fall to the bottom left corner, where the old legend sat
            lines[name] = (grid, np.clip(1 - grid ** power * (0.2 + 0.1 * k), 0, 1))
        scores[name] = 0.5 + 0.05 * k
    return lines, scores


def _trials(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 12
    return pd.DataFrame({
        "number": range(n), "state": ["COMPLETE"] * 8 + ["PRUNED"] * 3 + ["FAIL"],
        "value": np.r_[rng.uniform(0.3, 0.6, 8), [np.nan] * 4],
        "last_value": np.r_[[np.nan] * 8, rng.uniform(0.2, 0.4, 3), [np.nan]],
        "param.lr": 10 ** rng.uniform(-5, -2, n), "param.opt": rng.choice(["adam", "sgd"], n),
    })


# study -> evaluator -> parameter -> importance; "momentum" only transfer searched, and fANOVA failed for transfer
IMPORTANCES = {"scratch": {"PED-ANOVA": {"lr": 0.6, "opt": 0.3, "l2": 0.1}, "fANOVA": {"opt": 0.5, "lr": 0.4, "l2": 0.1}},
               "transfer": {"PED-ANOVA": {"momentum": 0.5, "lr": 0.45, "opt": 0.05, "l2": 0.0}}}

AXES = [SimpleNamespace(name="lr", kind="float", log=True, low=1e-5, high=1e-2, choices=()),
        SimpleNamespace(name="opt", kind="categorical", log=False, low=None, high=None, choices=("adam", "sgd"))]


def _history() -> pd.DataFrame:
    epoch = np.arange(1, 9)
    frame = pd.DataFrame({"epoch": epoch, "phase": ["frozen"] * 4 + ["finetune"] * 4,
                          "accuracy": 0.2 + 0.05 * epoch, "val_accuracy": 0.18 + 0.04 * epoch,
                          "cross_entropy": 2 - 0.1 * epoch, "val_cross_entropy": 2.1 - 0.08 * epoch})
    frame["loss"], frame["val_loss"] = frame["cross_entropy"] + 0.1, frame["val_cross_entropy"] + 0.1
    return frame


def test_training_curves_tick_whole_epochs_on_a_short_run(monkeypatch, tmp_path):
    """A 4-epoch search trial's history: matplotlib's default ticks would put epochs 1.5, 2.5 on the axis."""
    drawn = []
    monkeypatch.setattr(figures, "_save", lambda fig, path, mark="": drawn.append(fig) or Path(path))
    figures.training_curves(_history().head(4), tmp_path / "history.png")
    for ax in drawn[0].axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
    matplotlib.pyplot.close(drawn[0])  # _save, replaced here, is what closes a figure


def _seeds() -> tuple:
    points = pd.DataFrame({"regime": ["scratch"] * 2 + ["transfer"] * 2, "seed": [0, 1] * 2,
                           "accuracy": [0.4, 0.45, 0.55, 0.6], "loss": [1.6, 1.5, 1.2, 1.1]})
    summary = {c: {r: (points[points.regime == r][c].mean(), None, None) for r in ("scratch", "transfer")}
               for c in ("accuracy", "loss")}
    return points, [("accuracy", "test accuracy"), ("loss", "test loss")], summary


def _confusion() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 40, (7, 7)) + np.diag(rng.integers(100, 250, 7))


def _reliability() -> dict:
    """Before and after scaling, from an overconfident made-up model: bins spread over the whole square."""
    rng = np.random.default_rng(0)
    z = rng.normal(0, 1, (600, 7)) + 1.5 * np.eye(7)[rng.integers(0, 7, 600)]
    labels = np.array([rng.choice(7, p=np.exp(r) / np.exp(r).sum()) for r in z])
    probs = np.exp(3 * z) / np.exp(3 * z).sum(axis=1, keepdims=True)
    return {"as trained (ECE 0.250)": reliability(labels, probs),
            "temperature-scaled, T = 3.00 (ECE 0.020)": reliability(labels, scale(probs, 3.0))}


def _difference() -> np.ndarray:
    rng = np.random.default_rng(1)
    a, b = (m / m.sum(axis=1, keepdims=True) for m in (_confusion(), _confusion() + rng.integers(0, 60, (7, 7))))
    return b - a


# every public figure function, as (function, positional arguments before the path, keyword arguments)
DRAWERS: dict[str, Callable[[], tuple[Callable, tuple, dict]]] = {
    "class_distribution": lambda: (figures.class_distribution, (pd.DataFrame(
        {"train": [300, 40, 200, 400, 250, 180, 260], "val": [30, 5, 20, 40, 25, 18, 26]}, index=CLASSES),), {}),
    "training_curves": lambda: (figures.training_curves, (_history(),), {}),
    "confusion_matrix": lambda: (figures.confusion_matrix, (_confusion(), CLASSES), {}),
    "roc_curves": lambda: (figures.roc_curves, _curves("roc"), {}),
    "pr_curves": lambda: (figures.pr_curves, _curves("pr"), {}),
    "optimization_histories": lambda: (figures.optimization_histories, (
        {"scratch": _trials(), "transfer": _trials(seed=1)}, "maximize", "accuracy"), {}),
    "param_importances": lambda: (figures.param_importances, (IMPORTANCES,), {}),
    "parallel_coordinates": lambda: (figures.parallel_coordinates, (_trials(), AXES, "accuracy", "maximize"), {}),
    "face_grid": lambda: (figures.face_grid, (np.random.default_rng(0).integers(0, 256, (9, 48, 48, 1)),
                                              CLASSES[:3] * 3, CLASSES[:3] * 2 + CLASSES[3:6], [0.5] * 9), {}),
    "seed_comparison": lambda: (figures.seed_comparison, _seeds(), {}),
    "reliability_diagram": lambda: (figures.reliability_diagram, (_reliability(),), {}),
    "confusion_difference": lambda: (figures.confusion_difference, (_difference(), CLASSES),
                                     {"label": "transfer − scratch", "marked": ["happy"]}),
}


def _png(name: str, path: Path, mark: str = "") -> np.ndarray:
    function, args, kwargs = DRAWERS[name]()
    written = function(*args, path, **kwargs, mark=mark) if mark else function(*args, path, **kwargs)
    assert written == path and path.stat().st_size > 0
    return matplotlib.image.imread(path)[..., :3]  # RGB floats in [0, 1]


@pytest.fixture(autouse=True)
def _close_kept_figures():
    """``_figure`` keeps its Figure open for the test to read: close it after, or the process holds every
    one (matplotlib warns past 20, in whichever later test of the same worker opens the next)."""
    yield
    figures.plt.close("all")


def _figure(name: str, monkeypatch: pytest.MonkeyPatch, mark: str = ""):
    """The Figure as it would be saved (mark included), kept open instead of written."""
    kept = []

    def keep(fig, path, mark=""):
        if mark:
            figures._mark(fig, mark)
        fig.draw_without_rendering()  # the layout engine places everything, as savefig would
        kept.append(fig)
        return Path(path)

    monkeypatch.setattr(figures, "_save", keep)
    function, args, kwargs = DRAWERS[name]()
    function(*args, "unused.png", **kwargs, mark=mark)
    fig = kept[0]
    return fig, fig.canvas.get_renderer()


def _pure_red(rgb: np.ndarray) -> int:
    """Pixels of the label's pure red (no figure draws data in it: tab:red is 214, 39, 40)."""
    return int(((rgb[..., 0] >= 0.94) & (rgb[..., 1] <= 0.16) & (rgb[..., 2] <= 0.16)).sum())


def _faint_red(rgb: np.ndarray) -> int:
    """Pixels of the diagonal watermark over white paper: red at low opacity, so pink (255, 212, 212).

    Not matched by the edges of tab:red text blending into white: where their red is this full, so is their green.
    """
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return int(((r >= 0.99) & (g >= 0.7) & (g <= 0.87) & (np.abs(g - b) <= 0.03)).sum())


# ------------------------------------------------------------------------------------- the mark
@pytest.mark.parametrize("name", sorted(DRAWERS))
def test_a_marked_figure_carries_the_mark_in_red_and_an_unmarked_one_none(name: str, tmp_path: Path) -> None:
    plain = _png(name, tmp_path / "plain.png")
    marked = _png(name, tmp_path / "marked.png", mark=MARK)
    assert _pure_red(plain) == 0 and _faint_red(plain) < 20
    assert _pure_red(marked) > 100, "no red label"
    assert _faint_red(marked) > 0.003 * marked.shape[0] * marked.shape[1], "no diagonal watermark"
    assert marked.shape[0] > plain.shape[0] + 10  # the label's own strip on top
    assert abs(marked.shape[1] - plain.shape[1]) <= 0.01 * plain.shape[1]  # and nothing else grew


@pytest.mark.parametrize("name", sorted(DRAWERS))
def test_the_label_covers_nothing_and_the_diagonal_spans_the_saved_drawing(name: str,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    fig, renderer = _figure(name, monkeypatch, mark=MARK)
    label, diagonal = (next(t for t in fig.texts if t.get_gid() == gid) for gid in ("mark-label", "mark-diagonal"))
    assert label.get_text() == diagonal.get_text() == MARK
    box = label.get_window_extent(renderer)
    others = [ax.get_tightbbox(renderer) for ax in fig.axes] + [
        t.get_window_extent(renderer) for t in fig.texts if t not in (label, diagonal) and t.get_text()]
    assert not [o for o in others if box.overlaps(o)]
    saved = fig.get_tightbbox(renderer).transformed(fig.dpi_scale_trans)  # inches -> pixels, as bbox_inches="tight"
    spread = diagonal.get_window_extent(renderer)
    assert Bbox.union([saved, spread]).bounds == pytest.approx(saved.bounds)  # not cut off by the crop
    assert spread.width > 0.6 * saved.width and spread.height > 0.6 * saved.height  # across the whole drawing
    assert 0 < diagonal.get_alpha() <= 0.3  # the data shows through


def test_an_empty_mark_draws_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    fig, _ = _figure("pr_curves", monkeypatch)
    assert not [t for t in fig.texts if t.get_gid()]


# ----------------------------------------------------------------------------------- the layout
@pytest.mark.parametrize("name", ["pr_curves", "roc_curves"])
def test_the_legend_stays_off_the_curves(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fig, renderer = _figure(name, monkeypatch)
    (ax,) = fig.axes
    legend = ax.get_legend()
    assert legend is not None and len(legend.get_texts()) == 8
    data_area = ax.get_window_extent(renderer)
    assert not legend.get_window_extent(renderer).overlaps(data_area)
    assert fig.get_tightbbox(renderer).transformed(fig.dpi_scale_trans).contains(*legend.get_window_extent(renderer).p1)


def test_the_reliability_legend_stays_off_the_data_and_the_panels_do_not_overlap(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fig, renderer = _figure("reliability_diagram", monkeypatch)
    top, bottom = fig.axes
    legend = top.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["perfect calibration", *_reliability()]
    assert not legend.get_window_extent(renderer).overlaps(top.get_window_extent(renderer))
    assert not top.get_window_extent(renderer).overlaps(bottom.get_tightbbox(renderer))
    assert len(top.lines) == 3 and len(bottom.patches) == 2 * 15  # two curves and the diagonal; counts per bin


def test_the_confusion_difference_is_centred_at_zero_annotated_and_named(monkeypatch: pytest.MonkeyPatch) -> None:
    fig, renderer = _figure("confusion_difference", monkeypatch)
    ax = next(a for a in fig.axes if a.images)
    image = ax.images[0]
    assert image.norm.vmin == -image.norm.vmax == pytest.approx(-np.abs(_difference()).max())
    middle = image.cmap(0.5)
    assert min(middle[:3]) > 0.95  # white at 0: a diverging map
    texts = [t.get_text() for t in ax.texts]
    assert [float(t) for t in texts] == pytest.approx(list(_difference().ravel()), abs=0.005)
    assert "-0.00" not in texts and "+0.00" in texts  # a cell that rounds to 0 carries no sign of its own
    assert [t.get_text() for t in ax.get_xticklabels()] == CLASSES
    assert [t.get_text() for t in ax.get_yticklabels()] == [c + " *" if c == "happy" else c for c in CLASSES]
    labels = ax.get_xticklabels() + ax.get_yticklabels()
    boxes = [t.get_window_extent(renderer) for t in labels]
    assert not [1 for i, x in enumerate(boxes) for y in boxes[i + 1:] if x.overlaps(y)]
    assert not image.colorbar.ax.get_tightbbox(renderer).overlaps(ax.get_window_extent(renderer))


def test_the_confusion_panels_and_their_colour_bars_do_not_overlap(monkeypatch: pytest.MonkeyPatch) -> None:
    fig, renderer = _figure("confusion_matrix", monkeypatch)
    left, right = (ax for ax in fig.axes if ax.images)
    left_bar, right_bar = left.images[0].colorbar.ax, right.images[0].colorbar.ax
    assert not right.yaxis.label.get_window_extent(renderer).overlaps(left_bar.get_tightbbox(renderer))
    boxes = {"left": left, "left colour bar": left_bar, "right": right, "right colour bar": right_bar}
    boxes = {k: ax.get_tightbbox(renderer) for k, ax in boxes.items()}  # with tick labels, axis labels, titles
    names = list(boxes)
    clashes = [(a, b) for i, a in enumerate(names) for b in names[i + 1:] if boxes[a].overlaps(boxes[b])]
    assert not clashes
    assert fig.get_suptitle() and not [ax for ax in (left, right)
                                       if ax.get_tightbbox(renderer).overlaps(fig._suptitle.get_window_extent(renderer))]


# ------------------------------------------------------------------------------ side by side
def test_importance_panels_list_the_same_parameters_in_the_same_order(monkeypatch: pytest.MonkeyPatch) -> None:
    fig, _ = _figure("param_importances", monkeypatch)
    assert len(fig.axes) == 4  # an evaluator a row, a study a column
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["scratch: PED-ANOVA", "transfer: PED-ANOVA", "scratch: fANOVA", "transfer: fANOVA"]
    drawn = [ax for ax in fig.axes if ax.patches]
    assert len(drawn) == 3  # transfer has no fANOVA: its panel says so instead of drawing bars
    # one y axis for all (only the first column prints its labels), bottom to top: ranked by PED-ANOVA's largest
    # value in any study (lr 0.6, momentum 0.5, opt 0.3, l2 0.1)
    assert all(ax.get_shared_y_axes().joined(ax, fig.axes[0]) for ax in fig.axes)
    for ax in (fig.axes[0], fig.axes[2]):
        assert [t.get_text() for t in ax.get_yticklabels()] == ["l2", "opt", "momentum", "lr"]
    widths = {ax.get_title(): [round(p.get_width(), 3) for p in ax.patches] for ax in drawn}
    assert widths["transfer: PED-ANOVA"] == [0.0, 0.05, 0.5, 0.45] and widths["scratch: PED-ANOVA"][2] == 0.0
    assert any("none" in t.get_text() for t in fig.axes[3].texts)


def test_both_histories_share_one_axis_with_each_best_so_far(monkeypatch: pytest.MonkeyPatch) -> None:
    fig, _ = _figure("optimization_histories", monkeypatch)
    (ax,) = fig.axes
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    for regime, seed in (("scratch", 0), ("transfer", 1)):
        done = _trials(seed).query("state == 'COMPLETE'")["value"]
        assert f"{regime}: best so far ({done.max():.3f})" in labels
        assert f"{regime}: pruned (last reported value)" in labels and f"{regime}: failed" in labels
    steps = [line for line in ax.get_lines() if "best so far" in line.get_label()]
    assert [line.get_ydata()[-1] for line in steps] == pytest.approx(
        [_trials(s).query("state == 'COMPLETE'")["value"].max() for s in (0, 1)])
