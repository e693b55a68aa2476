"""What ``predict`` writes on request: JSON or CSV files (the command line draws the same rows as tables).

The rows come first as plain dicts (``FaceRecord.as_row``), then get drawn or written, so the
files hold exactly what the table shows plus every class's probability.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import pandas as pd

from study import runs
from study.data import CLASSES
from study.inference.predictor import ROW_FIELDS, FaceRecord
from study.inference.sources import Failure
from study.inference.video import VideoReport


def write_json(path: Path, model: Path, faces: Sequence[FaceRecord], videos: Sequence[VideoReport],
               failures: Sequence[Failure]) -> Path:
    document = {
        "model": str(model),
        "classes": list(CLASSES),
        "faces": [face.as_row() for face in faces],
        "videos": [{"file": v.name, "frames": v.frames, "seconds": round(v.seconds, 3), "fps": round(v.fps, 2),
                    "tracks": v.track_rows()} for v in videos],
        "failures": [{"input": f.name, "error": f.message} for f in failures],
    }
    return _write_text(path, json.dumps(document, indent=2) + "\n")


def write_csv(path: Path, faces: Sequence[FaceRecord]) -> Path:
    """One row per face (per face and frame for video); failed inputs are only on the terminal."""
    return _write_text(path, pd.DataFrame([f.as_row() for f in faces], columns=list(ROW_FIELDS)).to_csv(index=False))


def _write_text(path: Path, text: str) -> Path:
    """Whole or not at all: a full or read-only disk is one ``WriteFailed`` line naming ``path``."""
    path = Path(path)
    with runs.writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
    runs.write_text(path, text)
    return path
