"""Test-time augmentation: a face's probabilities averaged over a few fixed views of it.

The paper evaluates each face once (``"none"``, the default). The FER2013 records average views of each
face at test time; a run evaluates with them only when its config says so (``TrainConfig.tta``), and its
``metrics.json`` and every report table that reads its predictions name the views:

- ``"flip"``: the face and its horizontal mirror (2 views; training flips faces too);
- ``"crops"``: ten crops, the standard of the FER2013 records: the face resized ``CROP_ZOOM`` larger, its
  four corner crops and centre crop at 48x48, and the mirror of each (10 views).

Views are plain numpy on the uint8 faces, made one batch at a time, so memory stays that of one batch.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import ndimage

from study.config import TTA_MODES
CROP_ZOOM = 1.125  # 48 -> 54 pixels: each crop is the face zoomed in by 12.5%, a corner crop shifted by 3 pixels
WORDS = {
    "none": "no test-time augmentation",
    "flip": "test-time augmentation: each face's probabilities averaged with its mirror's",
    "crops": (f"test-time augmentation: each face's probabilities averaged over ten crops (the face resized "
              f"{CROP_ZOOM:g}x, its four corners and centre, and their mirrors)"),
}


def view_count(mode: str) -> int:
    return {"none": 1, "flip": 2, "crops": 10}[mode]


def views(x: np.ndarray, mode: str) -> list[np.ndarray]:
    """The views of a batch of faces ``x`` (N, H, W, C), each of the same shape and dtype."""
    if mode == "none":
        return [x]
    if mode == "flip":
        return [x, x[:, :, ::-1]]
    if mode != "crops":
        raise ValueError(f"unknown test-time augmentation {mode!r}; valid: {', '.join(TTA_MODES)}")
    n, h, w, c = x.shape
    big_h, big_w = round(h * CROP_ZOOM), round(w * CROP_ZOOM)
    large = ndimage.zoom(x.astype(np.float32), (1, big_h / h, big_w / w, 1), order=1)
    large = np.clip(np.rint(large), 0, 255).astype(x.dtype) if x.dtype == np.uint8 else large.astype(x.dtype)
    dy, dx = big_h - h, big_w - w
    corners = [(0, 0), (0, dx), (dy, 0), (dy, dx), (dy // 2, dx // 2)]
    crops = [large[:, top:top + h, left:left + w] for top, left in corners]
    return [*crops, *(crop[:, :, ::-1] for crop in crops)]


def predict_views(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, mode: str,
                  batch_size: int) -> np.ndarray:
    """The mean over ``mode``'s views of ``predict`` (one batch of faces -> their probabilities), batch by batch."""
    out = []
    for start in range(0, len(x), batch_size):
        batch = x[start:start + batch_size]
        out.append(np.mean([predict(np.ascontiguousarray(v)) for v in views(batch, mode)], axis=0))
    if not out:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(out).astype(np.float32, copy=False)
