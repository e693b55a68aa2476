"""A transfer source trained on faces, as a step a user runs once and then names with «weights».

ImageNet weights cannot be had everywhere (not on this project's machines, nor on an offline
cluster), and a backbone pretrained on faces is a transfer source of its own. ``pretrain`` trains
the backbone from scratch on a stratified share of the training split and writes an ordinary run
directory (``model.keras`` and every other artifact) with one more file, ``pretrained_faces.npy``:
a digest of each face it trained on.

A later run whose «weights» names that directory (or its model.keras) leaves those faces out of its
training split (``leave_out_pretraining_faces``, which ``study.training.train`` calls for every run,
so a search's trials and final runs do too): the transfer regime never trains twice on a face, and
its advantage is not a second look at the same images. Faces are matched by content, so the rule
holds whatever subset, validation fraction or copy of the data the later run reads; a validation or
test face that the backbone was pretrained on is counted and named in the run's manifest (it
happens only where the dataset holds the same image twice, as FER2013 does a few times, or where the
later run splits validation differently).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from study.config import TrainConfig
from study.data import Dataset, Split, stratified_share, with_train
from study.errors import ConfigError
from study.events import SILENT, Events

PRETRAIN_DRAW = [0, 11]  # the faces set aside for pretraining: one seeded draw (the curve's too)
FACES_FILE = "pretrained_faces.npy"
DEFAULT_FRACTION = 0.4


def pretraining_indices(data: Dataset, fraction: float) -> np.ndarray:
    """The training-split indices a pretraining of ``fraction`` trains on (stratified, seeded)."""
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"the pretraining fraction must be in (0, 1), got {fraction}")
    return stratified_share(data.train.y, fraction, PRETRAIN_DRAW)


def face_digests(x: np.ndarray) -> np.ndarray:
    """One 8-byte digest per face (its pixels), as unsigned 64-bit integers."""
    flat = np.ascontiguousarray(x).reshape(len(x), -1)
    return np.array([int.from_bytes(hashlib.blake2b(row.tobytes(), digest_size=8).digest(), "little")
                     for row in flat], dtype=np.uint64)


def pretrain(config: TrainConfig, data: Dataset, run_dir: str | Path, *, fraction: float = DEFAULT_FRACTION,
             events: Events = SILENT):
    """Train ``config``'s backbone from scratch on a ``fraction`` of the training split into ``run_dir``;
    the run's validation split is the dataset's own. Returns the ``RunResult``."""
    from study.training import train  # deferred: TensorFlow

    held = pretraining_indices(data, fraction)
    source = with_train(data, held)
    digests = face_digests(source.train.x)
    extra = {"pretraining": {"fraction": fraction, "draw": PRETRAIN_DRAW, "faces": int(len(held)),
                             "of": int(len(data.train.y)), "faces_file": FACES_FILE}}
    scratch = config.replace(regime="scratch", weights="none")
    return train(scratch, source, run_dir, events=events, extra_manifest=extra,
                 artifacts={FACES_FILE: lambda path: np.save(path, digests)})


@dataclass(frozen=True)
class LeftOut:
    """What ``leave_out_pretraining_faces`` did: faces dropped from training, and pretraining faces
    found in validation and test (kept, but counted)."""

    source: str
    train: int
    val: int
    test: int

    def describe(self) -> dict[str, object]:
        return {"weights": self.source, "left_out_of_train": self.train, "in_val": self.val, "in_test": self.test}

    def sentence(self) -> str:
        text = (f"{self.train:,} training face(s) the backbone was pretrained on ({self.source}) are left out of "
                "training")
        if self.val or self.test:
            text += (f"; {self.val:,} validation and {self.test:,} test face(s) are also among its pretraining "
                     "faces (duplicates in the data, or another validation split)")
        return text


def pretraining_faces(weights: str) -> np.ndarray | None:
    """The face digests of the pretraining run ``weights`` names (its directory or its model.keras),
    or None when it names no such run."""
    if weights in ("imagenet", "none"):
        return None
    path = Path(weights).expanduser()
    folder = path if path.is_dir() else path.parent
    faces = folder / FACES_FILE
    if not faces.is_file():
        return None
    return np.load(faces)


def leave_out_pretraining_faces(data: Dataset, config: TrainConfig) -> tuple[Dataset, LeftOut | None]:
    """``data`` without the training faces ``config.weights`` was pretrained on (see the module doc)."""
    known = pretraining_faces(config.weights)
    if known is None:
        return data, None

    def inside(split: Split) -> np.ndarray:
        return np.isin(face_digests(split.x), known)

    dropped = inside(data.train)
    if dropped.all():
        raise ConfigError(f"every training face was among those «weights» {config.weights} was pretrained on: "
                          "nothing is left to train on (give the whole dataset, not the pretraining share)")
    kept = with_train(data, np.flatnonzero(~dropped)) if dropped.any() else data
    return kept, LeftOut(config.weights, int(dropped.sum()), int(inside(data.val).sum()), int(inside(data.test).sum()))
