"""The paper's Fig. 14/15: nine test images, each titled with its true and predicted emotion.

The nine are a seeded random draw, so a figure can be redrawn identically, and a title is green
when the prediction is right and red when it is wrong. The cells are collected as plain data
first (``grid_cells``), then drawn, so a test can check what the figure says without its pixels.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from study.data import CLASSES
from study.inference import models
from study.inference.predictor import EmotionClassifier
from study.inference.samples import labelled_faces

GRID_SIDE = 3
RIGHT_COLOR, WRONG_COLOR = "tab:green", "tab:red"


@dataclass(frozen=True, eq=False)
class GridCell:
    pixels: np.ndarray
    true: str
    predicted: str
    confidence: float
    name: str

    @property
    def right(self) -> bool:
        return self.true == self.predicted

    @property
    def title(self) -> str:
        return f"true: {self.true} / pred: {self.predicted} ({self.confidence:.2f})"


def grid_cells(classifier: EmotionClassifier, folder: str | Path, seed: int = 0) -> list[GridCell]:
    """Up to nine labelled test images with the model's prediction for each."""
    faces = labelled_faces(folder, GRID_SIDE * GRID_SIDE, seed)
    probs = classifier.probabilities(faces.x)
    return [
        GridCell(x, CLASSES[y], CLASSES[int(np.argmax(p))], float(np.max(p)), name)
        for x, y, p, name in zip(faces.x, faces.y, probs, faces.names)
    ]


def draw_grid(cells: list[GridCell], out: str | Path, title: str) -> Path:
    """A 3x3 figure of the cells (empty places stay blank), saved as PNG with the Agg renderer."""
    fig = Figure(figsize=(9, 9.6))
    axes = fig.subplots(GRID_SIDE, GRID_SIDE)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, cell in zip(axes.flat, cells):
        ax.imshow(cell.pixels, cmap="gray", vmin=0, vmax=255)
        ax.set_title(cell.title, color=RIGHT_COLOR if cell.right else WRONG_COLOR, fontsize=10)
    right = sum(cell.right for cell in cells)
    fig.suptitle(f"{title}: {right} of {len(cells)} right", fontsize=12)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    return out


def predict_grid(model: str, storage: str, folder: str | Path, out: str | Path,
                 seed: int = 0) -> tuple[Path, list[GridCell]]:
    """MODEL as the command line names it -> the figure for ``folder``'s images."""
    path, keras_model = models.load(model, storage)
    cells = grid_cells(EmotionClassifier(keras_model), folder, seed)
    run_name = path.parent.resolve().name if path.name == "model.keras" else path.stem
    return draw_grid(cells, out, f"Predictions of {run_name}"), cells
