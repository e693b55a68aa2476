"""The ``predict`` command from start to end: load the model once, then every input, images before videos,
printing a table of the faces and one per video (the pieces are ``study.inference``'s).

An input that fails (unreadable, no face, cannot be written) is reported on its own line and the
others go on; ``InputsFailed`` at the end makes the exit status 2 when any did.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from rich.console import Console
from rich.table import Table

from study.errors import render_settings
from study.inference import models, output
from study.inference.drawing import draw_faces, write_image
from study.inference.errors import InputError, InputsFailed
from study.inference.faces import DEFAULT_MARGIN, FaceFinder
from study.inference.predictor import (
    DEFAULT_BATCH_SIZE, EmotionClassifier, FaceRecord, FaceSettings, ImageResult, classify_images,
)
from study.inference.sources import VIDEO_OUT_SUFFIX, Failure, Item, collect
from study.inference.video import DEFAULT_SMOOTH, VideoReport, VideoSettings, display_available, process_video
from study.store import DEFAULT_STORAGE


@dataclass(frozen=True)
class PredictRequest:
    """Everything the ``predict`` command was asked, already parsed."""

    model: str
    inputs: tuple[str, ...] = ()
    storage: str = DEFAULT_STORAGE
    annotate: str | None = None
    detect: bool = True
    json_path: str | None = None
    csv_path: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    margin: float = DEFAULT_MARGIN
    smooth: int = DEFAULT_SMOOTH
    webcam: int | None = None
    max_frames: int | None = None


@dataclass
class _Outcome:
    faces: list[FaceRecord]
    videos: list[VideoReport]
    failures: list[Failure]


class _Pipeline:
    """The loaded model, detector and settings shared by every input of one command."""

    def __init__(self, request: PredictRequest, console: Console, err_console: Console,
                 setting: Callable[[str], str]) -> None:
        self.request, self.console, self.err_console, self.setting = request, console, err_console, setting
        self.model_path, model = models.load(request.model, request.storage)
        self.classifier = EmotionClassifier(model, request.batch_size)
        self.finder = FaceFinder()
        self.faces = FaceSettings(request.detect, request.margin)

    def fail(self, failure: Failure, outcome: _Outcome) -> None:
        """Shown with its settings as the caller names them; recorded (for --json) with plain names."""
        shown = render_settings(failure.message, self.setting)
        self.err_console.print("[bold red]failed:[/]", shown, highlight=False, soft_wrap=True)
        outcome.failures.append(Failure(failure.name, render_settings(failure.message)))

    def images(self, items: list[Item], outcome: _Outcome) -> None:
        for result in classify_images(items, self.classifier, self.finder, self.faces):
            if isinstance(result, Failure):
                self.fail(result, outcome)
                continue
            outcome.faces += result.faces
            self._annotate(result, outcome)

    def _annotate(self, result: ImageResult, outcome: _Outcome) -> None:
        if result.item.annotate_to is None or result.image is None:
            return
        try:
            write_image(result.item.annotate_to, draw_faces(result.image, result.faces))
        except InputError as exc:
            self.fail(Failure(result.item.name, str(exc)), outcome)

    def video(self, source: Path | int, name: str, out: Path | None, show: bool, outcome: _Outcome) -> None:
        settings = VideoSettings(self.request.smooth, self.request.max_frames, show)
        try:
            report = process_video(source, name, self.classifier, self.finder, self.faces, settings, out)
        except InputError as exc:
            self.fail(Failure(name, str(exc)), outcome)
            return
        outcome.videos.append(report)
        self.console.print(tracks_table(report))
        if out is not None:
            self.console.print(f"annotated video: {out}")
        if not report.records:
            message = (f"no face found in any of the {report.frames} frames of {name}: the detector needs "
                       "frontal faces; pass «no_detect» for cropped-face video")
            self.fail(Failure(name, message), outcome)


def run_predict(request: PredictRequest, console: Console, err_console: Console,
                setting: Callable[[str], str] = lambda name: name) -> None:
    """Classify every input (or the camera), print the tables, write the requested files. ``setting``
    names a setting in a failure's message (the command line passes its flag)."""
    camera = _camera_plan(request) if request.webcam is not None else None  # before the slow model load
    pipeline = _Pipeline(request, console, err_console, setting)
    outcome = _Outcome([], [], [])
    if camera is not None:
        out, show = camera
        console.print(f"camera {request.webcam}: press {'q in the window' if show else 'Ctrl-C'} to stop")
        pipeline.video(request.webcam, f"camera {request.webcam}", out, show, outcome)
        total = 1
    else:
        items, missing = collect(list(request.inputs), request.annotate)
        for failure in missing:
            pipeline.fail(failure, outcome)
        pipeline.images([i for i in items if i.kind == "image"], outcome)
        if outcome.faces:
            console.print(faces_table(outcome.faces, title=f"emotions ({pipeline.model_path})"))
        for item in (i for i in items if i.kind == "video"):
            pipeline.video(item.path, item.name, item.annotate_to, False, outcome)
        total = len(items) + len(missing)
    _write_files(request, pipeline.model_path, outcome, console)
    if outcome.failures:
        raise InputsFailed(len(outcome.failures), total)


def _camera_plan(request: PredictRequest) -> tuple[Path | None, bool]:
    """Where the camera's frames go: (the --annotate file or None, whether a window shows them)."""
    show = display_available()
    if not show and request.annotate is None:
        raise InputError(
            "no window can be shown here (no display, or OpenCV without a GUI such as the headless wheel): "
            "pass «annotate» OUT.mp4 to record the camera instead"
        )
    out = Path(request.annotate).expanduser() if request.annotate else None
    if out is not None and out.is_dir():
        out = out / f"webcam{request.webcam}{VIDEO_OUT_SUFFIX}"
    return out, show


def _write_files(request: PredictRequest, model_path: Path, outcome: _Outcome, console: Console) -> None:
    if request.annotate and outcome.faces:
        console.print(f"annotated copies: {request.annotate}")
    if request.json_path:
        path = output.write_json(Path(request.json_path), model_path, outcome.faces + _video_faces(outcome),
                                 outcome.videos, outcome.failures)
        console.print(f"json: {path}")
    if request.csv_path:
        console.print(f"csv: {output.write_csv(Path(request.csv_path), outcome.faces + _video_faces(outcome))}")


def _video_faces(outcome: _Outcome) -> list[FaceRecord]:
    return [record for video in outcome.videos for record in video.records]


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
