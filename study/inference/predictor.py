"""Faces -> emotion probabilities, in batches across images.

Crops from many images are pooled until a batch is full, so a folder of one-face photos runs at
the model's batch speed rather than one call per photo; each image is handed back (for its table
rows and its annotated copy) as soon as its faces are classified. A decoded image is kept only
when it is to be annotated, and at most ``MAX_HELD_IMAGES`` of them wait for a batch at a time:
64 twelve-megapixel photos would take over 2 GB.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np

from study.data import CLASSES, IMAGE_SIZE
from study.inference.errors import InputError
from study.inference.faces import (
    DEFAULT_MARGIN, MIN_FACE, Box, FaceFinder, face_pixels, read_image, to_gray, whole_image,
)
from study.inference.sources import Failure, Item

DEFAULT_BATCH_SIZE = 64
TOP_K = 3
MAX_HELD_IMAGES = 16
ROW_FIELDS = ("file", "frame", "track", "x", "y", "w", "h", "emotion", "confidence", "top3",
              *(f"p_{name}" for name in CLASSES))


@dataclass(frozen=True, eq=False)
class FaceRecord:
    """One face's probabilities; ``frame`` and ``track`` are set for video."""

    source: str
    box: Box
    probs: np.ndarray
    frame: int | None = None
    track: int | None = None

    @property
    def emotion(self) -> str:
        return CLASSES[int(np.argmax(self.probs))]

    @property
    def confidence(self) -> float:
        return float(np.max(self.probs))

    def top(self, k: int = TOP_K) -> list[tuple[str, float]]:
        order = np.argsort(self.probs)[::-1][:k]
        return [(CLASSES[i], float(self.probs[i])) for i in order]

    def as_row(self) -> dict:
        """A flat record (``ROW_FIELDS``) for JSON and CSV: box, label, top-3, every class's probability."""
        values = (
            self.source, self.frame, self.track, *self.box.as_tuple(), self.emotion, round(self.confidence, 6),
            " ".join(f"{name}:{p:.3f}" for name, p in self.top()), *(round(float(p), 6) for p in self.probs),
        )
        return dict(zip(ROW_FIELDS, values, strict=True))


class EmotionClassifier:
    """A checked Keras model (see ``models.load``) called on uint8 faces in fixed-size batches."""

    def __init__(self, model, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self.model = model
        self.batch_size = batch_size

    def probabilities(self, faces: np.ndarray) -> np.ndarray:
        """(N, 48, 48) or (N, 48, 48, 1) raw pixels -> (N, 7) probabilities.

        ``predict_on_batch`` rather than ``predict``: ``predict`` builds a data pipeline per call,
        which costs more than the model itself on the few faces of one video frame.
        """
        x = np.asarray(faces, dtype=np.float32).reshape(-1, *self.model.inputs[0].shape[1:])
        chunks = [np.asarray(self.model.predict_on_batch(x[i : i + self.batch_size]))
                  for i in range(0, len(x), self.batch_size)]
        return np.concatenate(chunks) if chunks else np.zeros((0, len(CLASSES)), np.float32)


@dataclass
class ImageResult:
    """An image with its faces classified; ``image`` is kept only for an annotated copy."""

    item: Item
    image: np.ndarray | None
    faces: list[FaceRecord] = field(default_factory=list)


_Pending = tuple[ImageResult, list[Box], np.ndarray]  # an image waiting for a full batch, its boxes, its crops


@dataclass(frozen=True)
class FaceSettings:
    """How faces are taken from a picture."""

    detect: bool = True
    margin: float = DEFAULT_MARGIN


def faces_in(image: np.ndarray, finder: FaceFinder, settings: FaceSettings) -> tuple[list[Box], np.ndarray]:
    """Boxes and (N, 48, 48) crops of the faces in an RGB image (the whole image with no detection)."""
    gray = to_gray(image)
    if not settings.detect:
        box, pixels = whole_image(gray)
        return [box], pixels[None]
    boxes = finder.find(gray)
    crops = [face_pixels(gray, box, settings.margin) for box in boxes]
    return boxes, np.stack(crops) if crops else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8)


def classify_images(
    items: Iterable[Item], classifier: EmotionClassifier, finder: FaceFinder, settings: FaceSettings
) -> Iterator[ImageResult | Failure]:
    """Each image's result, or a Failure for an unreadable image or one with no face."""
    pending: list[_Pending] = []
    for item in items:
        try:
            image = read_image(item.path)
            boxes, crops = faces_in(image, finder, settings)
        except InputError as exc:
            yield Failure(item.name, str(exc))
            continue
        if not boxes:
            yield Failure(item.name, _no_face_message(item))
            continue
        pending.append((ImageResult(item, image if item.annotate_to else None), boxes, crops))
        held = sum(result.image is not None for result, _, _ in pending)
        if sum(len(c) for _, _, c in pending) >= classifier.batch_size or held >= MAX_HELD_IMAGES:
            yield from _flush(pending, classifier)
            pending = []
    yield from _flush(pending, classifier)


def _flush(pending: list[_Pending], classifier: EmotionClassifier) -> Iterator[ImageResult]:
    if not pending:
        return
    probs = classifier.probabilities(np.concatenate([crops for _, _, crops in pending]))
    start = 0
    for result, boxes, _ in pending:
        mine = probs[start : start + len(boxes)]
        result.faces = [FaceRecord(result.item.name, box, p) for box, p in zip(boxes, mine)]
        start += len(boxes)
        yield result


def _no_face_message(item: Item) -> str:
    return (
        f"no face found in {item.name}: the detector needs a frontal face of at least {MIN_FACE}x{MIN_FACE} pixels; "
        "pass «no_detect» if the images are already cropped faces"
    )
