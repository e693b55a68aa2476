"""From a picture to the model's input: read it, find the faces, crop each to 48x48 grayscale.

Faces are found with the frontal-face Haar cascade that the opencv-python wheels ship
(``cv2.data.haarcascades``; OpenCV 5 dropped ``CascadeClassifier``, hence ``opencv<5``). A crop
keeps a margin around the cascade's tight box because FER2013's faces include some forehead, chin
and background. The crop becomes 48x48 exactly as ``study.data`` decodes training images
(PIL's "L" conversion, then a LANCZOS resize), so the model sees what it was trained on.

Images are RGB ``uint8`` arrays of shape (H, W, 3) everywhere in this package.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

from study.data import IMAGE_SIZE
from study.errors import UserError
from study.inference.errors import InputError

DEFAULT_MARGIN = 0.2
CASCADE_FILE = "haarcascade_frontalface_default.xml"
# OpenCV's face-detection tutorial values: fewer neighbours find more faces and more false ones.
SCALE_FACTOR = 1.1
MIN_NEIGHBORS = 5
MIN_FACE = 24  # pixels; the cascade's own window size is 24x24
# The cascade scans every scale down to MIN_FACE: on a 12-megapixel photo that takes seconds and
# finds faces far smaller than any FER face. Larger pictures are searched at this longer side.
DETECT_MAX_SIDE = 1280


@dataclass(frozen=True)
class Box:
    """A face's box in pixels of the image it was found in."""

    x: int
    y: int
    w: int
    h: int

    def expanded(self, margin: float, width: int, height: int) -> Box:
        """This box grown by ``margin`` of its size on every side, clipped to the image."""
        dx, dy = round(self.w * margin), round(self.h * margin)
        x0, y0 = max(self.x - dx, 0), max(self.y - dy, 0)
        x1, y1 = min(self.x + self.w + dx, width), min(self.y + self.h + dy, height)
        return Box(x0, y0, x1 - x0, y1 - y0)

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.w, self.h)


def read_image(path: Path) -> np.ndarray:
    """Any image PIL reads (any mode, EXIF-rotated as a viewer shows it) as RGB uint8."""
    try:
        with Image.open(path) as image:
            return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    except FileNotFoundError:
        raise InputError(f"{path} does not exist: check the path") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            f"cannot read {path} as an image ({reason}): pass a PNG, JPEG, BMP, GIF, TIFF or WebP"
        ) from None


def to_gray(image: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma, the conversion PIL's "L" mode (and so the training data) uses."""
    return np.asarray(Image.fromarray(image).convert("L"))


def face_pixels(gray: np.ndarray, box: Box, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """The model's input for one face: (48, 48) uint8, cropped with ``margin`` and resized."""
    height, width = gray.shape
    crop = box.expanded(margin, width, height)
    face = Image.fromarray(gray[crop.y : crop.y + crop.h, crop.x : crop.x + crop.w])
    return np.asarray(face.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS))


def whole_image(gray: np.ndarray) -> tuple[Box, np.ndarray]:
    """``--no-detect``: the whole picture is the face, decoded exactly as a training image."""
    height, width = gray.shape
    resized = Image.fromarray(gray).resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS)
    return Box(0, 0, width, height), np.asarray(resized)


class FaceFinder:
    """The Haar cascade, loaded once and reused for every image and frame."""

    @cached_property
    def _cascade(self) -> cv2.CascadeClassifier:
        cascade = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / CASCADE_FILE))
        if cascade.empty():
            raise UserError(
                f"OpenCV could not load its {CASCADE_FILE}: reinstall opencv-python-headless>=4.8,<5"
            )
        return cascade

    def find(self, gray: np.ndarray) -> list[Box]:
        """Faces left to right, in ``gray``'s pixels; histogram equalization first, as OpenCV's
        tutorial does, so dim or low-contrast pictures still show the patterns the cascade seeks."""
        scale = min(DETECT_MAX_SIDE / max(gray.shape), 1.0)
        searched = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
        found = self._cascade.detectMultiScale(
            cv2.equalizeHist(searched), scaleFactor=SCALE_FACTOR, minNeighbors=MIN_NEIGHBORS,
            minSize=(MIN_FACE, MIN_FACE),
        )
        boxes = (Box(*(round(int(v) / scale) for v in row)) for row in found)
        return sorted(boxes, key=lambda b: (b.x, b.y))
