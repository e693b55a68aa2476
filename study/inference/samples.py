"""Faces with known labels, for the 3x3 figure and for checking an export.

A labelled folder is read by ``study.data``'s own rules (class-folder names and their aliases,
image suffixes, hidden files), so any folder the trainer accepts works here too: a dataset root
(its ``test/`` split is used), a split folder such as ``DATA/test`` holding ``<class>/`` folders,
or a ``fer2013.csv`` (its test rows). Only the images drawn are decoded, not the whole split.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from study import data
from study.data import CLASSES, CSV_NAME
from study.errors import DataError
from study.sample import render_face


@dataclass(frozen=True, eq=False)
class LabelledFaces:
    """``x`` (N, 48, 48) uint8 faces, ``y`` (N,) indices into CLASSES, ``names`` where each came from."""

    x: np.ndarray
    y: np.ndarray
    names: tuple[str, ...]


def labelled_faces(path: str | Path, count: int, seed: int = 0) -> LabelledFaces:
    """``count`` faces drawn at random (seeded) from the test images under ``path``."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(
            f"{path} does not exist: pass a dataset folder, a DATA/test folder of <class>/ folders, or {CSV_NAME}"
        )
    if path.is_file() or _csv_only(path):
        return _from_csv(path, count, seed)
    split = data.child_path(path, "test") or path  # a dataset root, or the split folder itself
    entries = data.list_split(split.parent, split, [])
    picked = sorted(np.random.default_rng(seed).choice(len(entries), size=min(count, len(entries)), replace=False))
    decoded = [(data.decode_image(split.parent / rel)[0], label, rel) for rel, label in (entries[i] for i in picked)]
    readable = [d for d in decoded if d[0] is not None]  # a corrupt file is skipped, as the loader skips it
    return _stacked([d[0] for d in readable], [d[1] for d in readable], [d[2] for d in readable], path)


def _csv_only(folder: Path) -> bool:
    return data.child_path(folder, "test") is None and data.child_path(folder, CSV_NAME, want_dir=False) is not None


def _from_csv(path: Path, count: int, seed: int) -> LabelledFaces:
    test = data.load_dataset(path).test
    picked = sorted(np.random.default_rng(seed).choice(len(test.y), size=min(count, len(test.y)), replace=False))
    return _stacked(list(test.x[picked, ..., 0]), list(test.y[picked]), [f"test row {i}" for i in picked], path)


def _stacked(faces: list, labels: list, names: list, path: Path) -> LabelledFaces:
    if not faces:
        raise DataError(f"no readable labelled images under {path}: pass a folder of <class>/ image folders")
    return LabelledFaces(np.stack(faces).astype(np.uint8), np.asarray(labels, np.int64), tuple(names))


def generated_faces(count: int, seed: int = 0) -> np.ndarray:
    """(count, 48, 48) drawn faces cycling through the classes, when no real data is at hand."""
    rng = np.random.default_rng(seed)
    return np.stack([render_face(CLASSES[i % len(CLASSES)], rng) for i in range(count)])


def one_face_per_class(path: str | Path, seed: int = 0) -> list[tuple[np.ndarray, str] | None]:
    """For each class of CLASSES, one test face under ``path`` (a seeded draw, so every model is shown
    the same faces) with where it came from, or None when the class has no readable image there."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(
            f"{path} does not exist: pass a dataset folder, a DATA/test folder of <class>/ folders, or {CSV_NAME}"
        )
    rng = np.random.default_rng(seed)
    if path.is_file() or _csv_only(path):
        test = data.load_dataset(path).test
        picked: list[tuple[np.ndarray, str] | None] = []
        for k in range(len(CLASSES)):
            rows = np.flatnonzero(test.y == k)
            i = int(rng.choice(rows)) if len(rows) else None
            picked.append(None if i is None else (test.x[i, ..., 0].astype(np.uint8), f"test row {i}"))
        return _some(picked, path)
    split = data.child_path(path, "test") or path
    entries = data.list_split(split.parent, split, [])
    picked = []
    for k in range(len(CLASSES)):
        members = [rel for rel, label in entries if label == k]
        face = None
        for i in rng.permutation(len(members)):  # a corrupt file is passed over for the class's next one
            pixels = data.decode_image(split.parent / members[i])[0]
            if pixels is not None:
                face = (np.asarray(pixels).astype(np.uint8), str(members[i]))
                break
        picked.append(face)
    return _some(picked, path)


def _some(picked: list, path: Path) -> list:
    if all(p is None for p in picked):
        raise DataError(f"no readable labelled images under {path}: pass a folder of <class>/ image folders")
    return picked
