"""What ``predict`` reports: rich tables on the terminal, JSON or CSV files on request.

The rows come first as plain dicts (``FaceRecord.as_row``), then get drawn or written, so the
files hold exactly what the table shows plus every class's probability.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import pandas as pd
from rich.table import Table

from study import runs
from study.data import CLASSES
from study.inference.predictor import ROW_FIELDS, FaceRecord
from study.inference.sources import Failure
from study.inference.video import VideoReport


def faces_table(faces: Sequence[FaceRecord], title: str = "faces") -> Table:
    table = Table(title=title)
    for column in ("file", "box (x, y, w, h)", "emotion", "confidence", "top 3"):
        table.add_column(column, justify="right" if column == "confidence" else "left",
                         overflow="fold" if column == "file" else "ellipsis")
    for face in faces:
        top = ", ".join(f"{name} {p:.2f}" for name, p in face.top())
        box = ", ".join(map(str, face.box.as_tuple()))
        table.add_row(face.source, box, face.emotion, f"{face.confidence:.2f}", top)
    return table


def tracks_table(report: VideoReport) -> Table:
    title = f"{report.name}: {report.frames} frames in {report.seconds:.1f} s ({report.fps:.1f} frames/s)"
    table = Table(title=title)
    for column in ("track", "frames", "first", "last", "emotion (most frequent)", "mean confidence"):
        table.add_column(column)
    for row in report.track_rows():
        table.add_row(str(row["track"]), str(row["frames"]), str(row["first"]), str(row["last"]), row["emotion"],
                      f"{row['confidence']:.2f}")
    return table


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
