"""Annotated copies: each face's box and "emotion confidence" label, drawn with OpenCV on RGB arrays.

Line width and text size follow the image size, so a label reads the same on a 320-pixel webcam
frame and a 4000-pixel photograph. Each emotion keeps one colour across images and frames.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from PIL import Image

from study.data import CLASSES
from study.inference.errors import InputError
from study.inference.predictor import FaceRecord

# RGB, one per class in CLASSES order (matplotlib's tab10, so figures and overlays agree).
EMOTION_COLORS: dict[str, tuple[int, int, int]] = dict(zip(CLASSES, [
    (214, 39, 40), (140, 86, 75), (148, 103, 189), (44, 160, 44), (127, 127, 127), (31, 119, 180), (255, 127, 14),
]))
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def label_of(face: FaceRecord) -> str:
    track = f"#{face.track} " if face.track is not None else ""
    return f"{track}{face.emotion} {face.confidence:.0%}"


def draw_faces(image: np.ndarray, faces: Sequence[FaceRecord]) -> np.ndarray:
    """A copy of ``image`` with every face boxed and labelled."""
    canvas = np.ascontiguousarray(image).copy()
    scale = max(min(canvas.shape[:2]) / 800, 0.4)
    thickness = max(round(scale * 2), 1)
    for face in faces:
        _draw_one(canvas, face, scale, thickness)
    return canvas


def _draw_one(canvas: np.ndarray, face: FaceRecord, scale: float, thickness: int) -> None:
    x, y, w, h = face.box.as_tuple()
    color = EMOTION_COLORS[face.emotion]
    cv2.rectangle(canvas, (x, y), (x + w, y + h), color, thickness)
    text = label_of(face)
    (tw, th), baseline = cv2.getTextSize(text, _FONT, scale, thickness)
    top = y - th - baseline - 2 * thickness
    top = top if top >= 0 else y + h  # no room above the box: label under it
    cv2.rectangle(canvas, (x, top), (x + tw + 2 * thickness, top + th + baseline + 2 * thickness), color, cv2.FILLED)
    origin = (x + thickness, top + th + thickness)
    cv2.putText(canvas, text, origin, _FONT, scale, (255, 255, 255), thickness, cv2.LINE_AA)


def write_image(path: Path, image: np.ndarray) -> Path:
    """Save with PIL, which picks the format from the suffix as the input's reader did."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path)
    except (OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            f"cannot write the annotated copy {path} ({reason}): use a writable .png or .jpg path"
        ) from None
    return path
