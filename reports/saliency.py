"""The report's Grad-CAM figure: where each regime's model looks, on one evaluated face per class.

The faces are a seeded draw of one image per class of the evaluated split (``study.saliency.one_per_class``),
the same faces for every regime; each regime's column is its first run's model (the one its other
per-regime figures show), loaded from the run's model.keras. The Grad-CAM itself is ``study.saliency``'s,
which ``predict --saliency`` uses too; TensorFlow loads only when the figure is drawn.
"""
from __future__ import annotations

import dataclasses

from pathlib import Path
from typing import Callable

from reports import figures
from reports.content import ReportContent
from reports.document import Block, FigureBlock, Paragraph
from reports.tables import SPLIT_NAMES
from study.runs import RunError
from study.saliency import GradCam, draw_saliency, grad_cam_of, load_model, model_problem, one_per_class

KEY = "saliency"


def problem(content: ReportContent) -> str | None:
    """Why the figure cannot be drawn (no faces, a model missing or not kept), or None; reads no model."""
    regimes = content.evidence.regimes
    if not regimes:
        return "no regime has runs"
    views = [v for v in content.data if set(v.regimes) & set(regimes)]
    if len(views) != 1:
        return "the regimes were evaluated on different data, so no faces are common to them"
    if views[0].images is None:
        return views[0].problem or "the evaluated images cannot be read"
    for regime, evidence in regimes.items():
        try:
            path = evidence.runs[0].model_path
        except RunError as exc:
            return str(exc)
        found = model_problem(path)
        if found:
            return f"the {regime} model {found}"
    return None


def saliency_figure(content: ReportContent, out: Path, figure: Callable[..., FigureBlock]) -> dict[str, FigureBlock]:
    """``{KEY: the figure}``, or nothing when ``problem`` says why not (``blocks`` then says it).

    ``figure`` is ``reports.build._figure`` (out, name, caption, draw(path, mark), synthetic)."""
    if problem(content) is not None:
        return {}
    regimes = content.evidence.regimes
    view = next(v for v in content.data if set(v.regimes) & set(regimes))
    labels, _ = next(iter(regimes.values())).runs[0].split(content.split)
    picked = one_per_class(labels)
    faces = [view.images[i] for i in picked if i is not None]
    columns: dict[str, GradCam] = {}
    for regime, evidence in regimes.items():
        run = evidence.runs[0]
        columns[f"{regime} (seed {run.config.seed})"] = grad_cam_of(load_model(run.model_path), faces)
    split_name = SPLIT_NAMES[content.split]
    rows = [None if i is None else view.images[i] for i in picked]

    def draw(path: Path, mark: str) -> None:
        figures._save(draw_saliency(rows, columns, title=f"Where the models look: Grad-CAM on {split_name} faces"),
                      path, mark)

    drawn = figure(out, "saliency", caption(columns, split_name), draw, synthetic=view.synthetic)
    return {KEY: dataclasses.replace(drawn, tall=True)}  # a row per class: legible only at most of a page's height


def caption(columns: dict[str, GradCam], split_name: str) -> str:
    layers = "; ".join(f"{name}: {cam.layer.describe()}" for name, cam in columns.items())
    coarse = {cam.layer.shape[:2] for cam in columns.values()}
    sizes = " and ".join(f"{h}x{w} positions" for h, w in sorted(coarse))
    small = "".join(f" The {name} model's deepest map is only {cam.layer.last_map[0]}x{cam.layer.last_map[1]} at "
                    "48x48 input, which cannot say where anything is, so an earlier, larger map is used."
                    for name, cam in columns.items() if cam.layer.last_map is not None)
    return (f"Where each regime's model looks (Grad-CAM): one {split_name} face per class, the same faces for every "
            "regime, and over each face the heat map of the class the model predicts (above it, with its "
            "probability; green = right, red = wrong). Grad-CAM weighs each channel of a convolutional feature map by "
            "the mean gradient of that class's score (before the softmax) and keeps the positive part of the sum; "
            f"red marks where the map most raised the score. Feature map used ({layers}): the deepest map of at "
            f"least 3x3 positions ({sizes}, upsampled bilinearly to 48x48, so the maps are coarse).{small}")


def blocks(content: ReportContent, drawn: dict[str, FigureBlock]) -> list[Block]:
    """The figure, or the sentence that says why it is missing."""
    if KEY in drawn:
        return [drawn[KEY]]
    return [Paragraph(f"No Grad-CAM figure: {problem(content) or 'it was not drawn'}.")]
