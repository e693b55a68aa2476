"""``predict MODEL --grid DIR --saliency OUT.png``: where the model looks, one test face per class.

The faces are a seeded draw of one test image per class under DIR (``samples.one_face_per_class``),
the same for every model, so models given together (MODEL and each ``beside``) are compared on the
same faces; the Grad-CAM itself is ``study.saliency``'s, which the report uses too.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from study.errors import UserError
from study.inference import models
from study.inference.errors import InputError
from study.inference.samples import one_face_per_class
from study.runs import Run
from study.saliency import GradCam, draw_saliency, grad_cam_of, save_figure


@dataclass(frozen=True, eq=False)
class SaliencyFigure:
    path: Path
    columns: dict[str, GradCam]  # column title -> its Grad-CAM on the faces shown, in class order
    names: tuple[str, ...]  # where each face shown came from


def column_title(path: Path) -> str:
    """``<run directory> (<regime>)`` for a run's model.keras, else the file's stem."""
    if path.name != "model.keras":
        return path.stem
    try:
        regime = Run.load(path.parent).config.regime
    except UserError:
        return path.parent.resolve().name
    return f"{path.parent.resolve().name} ({regime})"


def predict_saliency(model_names: Sequence[str], storage: str, folder: str | Path, out: str | Path,
                     seed: int = 0) -> SaliencyFigure:
    """Each model (as the command line names it) explained on one face per class of ``folder``."""
    loaded = [models.load(name, storage) for name in model_names]  # every model checked before any work
    picked = one_face_per_class(folder, seed)
    faces = [p[0] for p in picked if p is not None]
    columns: dict[str, GradCam] = {}
    for path, keras_model in loaded:
        title = column_title(path)
        while title in columns:
            title += "'"
        columns[title] = grad_cam_of(keras_model, faces)
    layers = "; ".join(dict.fromkeys(cam.layer.describe() for cam in columns.values()))
    who = "Where the models look" if len(columns) > 1 else "Where the model looks"
    fig = draw_saliency([None if p is None else p[0] for p in picked], columns,
                        title=f"{who} (Grad-CAM at {layers})")
    try:
        written = save_figure(fig, out)
    except (OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"cannot write the saliency figure {out} ({reason}): use a writable .png path") from None
    return SaliencyFigure(written, columns, tuple(p[1] for p in picked if p is not None))
