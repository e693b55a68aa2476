"""Generate a small synthetic FER-like dataset of drawn faces for tests and smoke runs.

The faces are cartoons, not people: an oval with eyes, brows and a mouth whose shapes follow the
seven expressions, at a random intensity, under random pose, lighting, blur and noise. That keeps
the classes learnable but overlapping, so a small CNN lands well above chance without reaching
100%, which is what a pipeline test needs. The class balance follows FER2013 (disgust is rare).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from study.data import CLASSES, IMAGE_SIZE, SYNTHETIC_MARKER
from study.errors import DataError

# FER2013's class frequencies (its 28,709 training faces), so the sample is imbalanced the same way.
SAMPLE_CLASS_WEIGHTS: dict[str, int] = {
    "angry": 3995,
    "disgust": 436,
    "fear": 4097,
    "happy": 7215,
    "neutral": 4965,
    "sad": 4830,
    "surprise": 3171,
}
# Folder names as in the Kaggle "emotion-detection-fer" download, so loaders meet the aliases.
FOLDER_NAMES: dict[str, str] = {
    "angry": "angry",
    "disgust": "disgusted",
    "fear": "fearful",
    "happy": "happy",
    "neutral": "neutral",
    "sad": "sad",
    "surprise": "surprised",
}
MIN_PER_SPLIT = 3

# Expression features, each a displacement from a neutral face at full intensity:
# mouth curve (+ smile), mouth opening, mouth width, brow raise, brow tilt (+ inner ends up),
# eye opening, lip asymmetry, nose wrinkle.
FEATURES = ("curve", "open", "width", "brow_raise", "brow_tilt", "eye_open", "asym", "wrinkle")
PROTOTYPES: dict[str, tuple[float, ...]] = {
    "angry": (-0.3, 0.0, -0.3, -0.8, -1.0, -0.1, 0.0, 0.4),
    "disgust": (-0.3, 0.1, -0.1, -0.4, -0.4, -0.4, 1.0, 1.0),
    "fear": (-0.3, 0.45, 0.3, 0.8, 0.6, 0.8, 0.0, 0.0),
    "happy": (1.0, 0.2, 0.35, 0.1, 0.0, -0.3, 0.0, 0.0),
    "neutral": (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    "sad": (-0.8, 0.0, -0.1, 0.0, 0.9, -0.3, 0.0, 0.0),
    "surprise": (0.0, 1.0, -0.35, 1.0, 0.2, 1.0, 0.0, 0.0),
}
# Difficulty: expression intensity range and per-face idiosyncratic feature noise (feature units).
INTENSITY = (0.4, 1.0)
FEATURE_NOISE = 0.2
_CANVAS = 2 * IMAGE_SIZE  # draw at twice the size, then downsample, for smooth strokes


def class_counts(per_class: int = 120, test_fraction: float = 0.2) -> dict[str, dict[str, int]]:
    """Images per split and class: train's mean class count is ``per_class``, test is ``test_fraction`` of all."""
    mean_weight = sum(SAMPLE_CLASS_WEIGHTS.values()) / len(SAMPLE_CLASS_WEIGHTS)
    train = {c: max(MIN_PER_SPLIT, round(per_class * SAMPLE_CLASS_WEIGHTS[c] / mean_weight)) for c in CLASSES}
    ratio = test_fraction / (1.0 - test_fraction)
    test = {c: max(MIN_PER_SPLIT, round(train[c] * ratio)) for c in CLASSES}
    return {"train": train, "test": test}


def write_sample(out: str | Path, per_class: int = 120, seed: int = 0, test_fraction: float = 0.2) -> Path:
    """Write the sample as OUT/train/<class>/*.png and OUT/test/<class>/*.png plus a marker file."""
    if per_class < 1:
        raise DataError(f"per_class must be at least 1, got {per_class}")
    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"test_fraction must be in (0, 1), got {test_fraction}")
    out = Path(out).expanduser()
    _check_target(out)
    counts = class_counts(per_class, test_fraction)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        _render_tree(staging / "data", counts, seed)
        _write_marker(staging / "data", counts, per_class, seed, test_fraction)
        _swap_in(staging / "data", out, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def render_face(expression: str, rng: np.random.Generator) -> np.ndarray:
    """One 48x48 uint8 face showing ``expression`` at a random intensity, pose and lighting."""
    intensity = rng.uniform(*INTENSITY)
    features = intensity * np.asarray(PROTOTYPES[expression]) + rng.normal(0.0, FEATURE_NOISE, len(FEATURES))
    canvas = _draw_face(dict(zip(FEATURES, features)), rng)
    return _photograph(canvas, rng)


# ---------------------------------------------------------------------------------- writing
def _check_target(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise DataError(f"{out} is a file: pass a folder path for the sample")
    if out.is_dir() and any(out.iterdir()) and not (out / SYNTHETIC_MARKER).is_file():
        raise DataError(f"{out} is not empty and is not a previous sample: pick an empty or new folder")


def _render_tree(root: Path, counts: dict[str, dict[str, int]], seed: int) -> None:
    for split_number, (split, per_split) in enumerate(counts.items()):
        for class_number, name in enumerate(CLASSES):
            folder = root / split / FOLDER_NAMES[name]
            folder.mkdir(parents=True)
            rng = np.random.default_rng([seed, split_number, class_number])
            for i in range(per_split[name]):
                Image.fromarray(render_face(name, rng)).save(folder / f"{i:05d}.png", format="PNG")


def _write_marker(
    root: Path, counts: dict[str, dict[str, int]], per_class: int, seed: int, test_fraction: float
) -> None:
    marker = {
        "generator": "study.sample.write_sample",
        "synthetic": True,
        "note": "Drawn cartoon faces, not real faces: for tests and smoke runs; "
        "results on it say nothing about FER2013.",
        "seed": seed,
        "per_class": per_class,
        "test_fraction": test_fraction,
        "intensity": list(INTENSITY),
        "feature_noise": FEATURE_NOISE,
        "folder_names": FOLDER_NAMES,
        "counts": counts,
    }
    (root / SYNTHETIC_MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n")


def _swap_in(built: Path, out: Path, staging: Path) -> None:
    """Replace ``out`` (absent, empty, or a previous sample) by the finished tree."""
    if out.is_dir():
        os.replace(out, staging / "previous")
    os.replace(built, out)


# ---------------------------------------------------------------------------------- drawing
@dataclass(frozen=True)
class _Face:
    """Where one face sits on the 2x canvas and its tones; features scale with half-width ``w``."""

    cx: float
    cy: float
    w: float
    h: float
    skin: float
    dark: int


def _draw_face(f: dict[str, float], rng: np.random.Generator) -> Image.Image:
    """Background plus a flipped-or-not, rotated face at 2x size."""
    background = float(rng.uniform(20, 235))
    skin = float(np.clip(background + rng.choice([-1, 1]) * rng.uniform(40, 110), 60, 230))
    cx, cy = _CANVAS / 2 + rng.normal(0, 2.5), _CANVAS / 2 + 3 + rng.normal(0, 2.5)
    w = _CANVAS * rng.uniform(0.33, 0.39)
    h = w * rng.uniform(1.1, 1.25)
    face = _Face(cx, cy, w, h, skin, int(max(0.0, skin - rng.uniform(90, 150))))
    layer = Image.new("L", (_CANVAS, _CANVAS), 0)
    mask = Image.new("L", (_CANVAS, _CANVAS), 0)
    outline = [cx - w, cy - h, cx + w, cy + h]
    ImageDraw.Draw(mask).ellipse(outline, fill=255)
    draw = ImageDraw.Draw(layer)
    draw.ellipse(outline, fill=int(skin))
    _draw_hair(draw, face, rng)
    _draw_eyes_and_brows(draw, face, f)
    _draw_nose(draw, face, f)
    _draw_mouth(draw, face, f)
    if rng.random() < 0.5:
        layer, mask = layer.transpose(Image.Transpose.FLIP_LEFT_RIGHT), mask.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    angle = float(rng.normal(0, 8))
    layer = layer.rotate(angle, resample=Image.Resampling.BICUBIC)
    mask = mask.rotate(angle, resample=Image.Resampling.BICUBIC)
    return Image.composite(layer, Image.new("L", layer.size, int(background)), mask)


def _draw_hair(draw: ImageDraw.ImageDraw, face: _Face, rng: np.random.Generator) -> None:
    depth = face.h * rng.uniform(0.0, 0.6)
    if depth > 2:
        top = face.cy - face.h
        draw.chord([face.cx - face.w, top, face.cx + face.w, top + 2 * depth], 180, 360, fill=face.dark)


def _draw_eyes_and_brows(draw: ImageDraw.ImageDraw, face: _Face, f: dict[str, float]) -> None:
    """Eyes open with ``eye_open``; brows rise with ``brow_raise`` and tilt inner-up with ``brow_tilt``."""
    w, dark = face.w, face.dark
    eye_y, eye_w = face.cy - 0.15 * w, 0.2 * w
    eye_h = max(0.03, 0.1 + 0.08 * f["eye_open"]) * w
    brow_y = eye_y - eye_h - (0.22 + 0.2 * f["brow_raise"]) * w
    tilt = 0.2 * f["brow_tilt"] * w
    pupil = min(eye_h, 0.09 * w)
    for side in (-1, 1):
        ex = face.cx + side * 0.42 * w
        eye = [ex - eye_w, eye_y - eye_h, ex + eye_w, eye_y + eye_h]
        draw.ellipse(eye, fill=int(min(255, face.skin + 40)), outline=dark, width=2)
        draw.ellipse([ex - pupil, eye_y - pupil, ex + pupil, eye_y + pupil], fill=dark)
        inner, outer = ex - side * 0.25 * w, ex + side * 0.28 * w
        draw.line([(inner, brow_y - tilt), (outer, brow_y + 0.3 * tilt)], fill=dark, width=max(2, round(0.09 * w)))


def _draw_nose(draw: ImageDraw.ImageDraw, face: _Face, f: dict[str, float]) -> None:
    """A nose line, plus wrinkles beside it that darken with ``wrinkle`` (disgust)."""
    cx, cy, w = face.cx, face.cy, face.w
    bridge = [(cx, cy - 0.05 * w), (cx - 0.06 * w, cy + 0.3 * w), (cx + 0.06 * w, cy + 0.32 * w)]
    draw.line(bridge, fill=int((face.skin + face.dark) / 2), width=2)
    strength = float(np.clip(f["wrinkle"], 0.0, 1.0))
    if strength > 0.05:
        tone = int(face.skin - strength * (face.skin - face.dark))
        for side in (-1, 1):
            x = cx + side * 0.12 * w
            draw.line([(x, cy + 0.02 * w), (x + side * 0.08 * w, cy + 0.16 * w)], fill=tone, width=2)


def _draw_mouth(draw: ImageDraw.ImageDraw, face: _Face, f: dict[str, float]) -> None:
    """Lip line bent by curve (smile/frown) and asymmetry; opened into a dark shape by ``open``."""
    w, my = face.w, face.cy + 0.62 * face.h
    half = max(0.12, 0.38 + 0.15 * f["width"]) * w
    u = np.linspace(-1.0, 1.0, 21)
    base = my + 0.25 * w * f["curve"] * (1.0 - u**2) - 0.2 * w * f["asym"] * ((u + 1.0) / 2.0) ** 2
    opening = max(0.0, f["open"]) * 0.45 * w * np.sqrt(np.clip(1.0 - u**2, 0.0, 1.0))
    xs = face.cx + half * u
    if opening.max() > 1.0:
        upper = list(zip(xs, base - 0.35 * opening))
        lower = list(zip(xs[::-1], (base + 0.65 * opening)[::-1]))
        draw.polygon(upper + lower, fill=face.dark)
    draw.line(list(zip(xs, base)), fill=face.dark, width=max(2, round(0.09 * w)), joint="curve")


def _photograph(canvas: Image.Image, rng: np.random.Generator) -> np.ndarray:
    """Lighting gradient, contrast, blur, downsampling and sensor noise, as a camera would add."""
    pixels = np.asarray(canvas, dtype=np.float64)
    theta = rng.uniform(0, 2 * np.pi)
    axis = np.linspace(-1, 1, _CANVAS)
    ramp = np.cos(theta) * axis[None, :] + np.sin(theta) * axis[:, None]
    pixels = pixels * (1.0 + rng.uniform(0.0, 0.45) * ramp)
    pixels = (pixels - pixels.mean()) * rng.uniform(0.55, 1.25) + pixels.mean() + rng.normal(0, 15)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.4)))
    small = np.asarray(image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS), dtype=np.float64)
    small += rng.normal(0.0, rng.uniform(3.0, 10.0), small.shape)
    return np.clip(np.round(small), 0, 255).astype(np.uint8)
