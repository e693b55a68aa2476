"""Video files and cameras: every frame's faces classified, tracked and labelled.

A label that flickers between frames is noise, not a change of expression, so each face is
followed from frame to frame (its box matched to the previous frame's boxes by IoU with the
Hungarian algorithm) and shown with the mean of its last ``smooth`` probability vectors.
A face that goes unmatched for ``MAX_MISSING`` frames is forgotten; one that comes back later
starts a new track.

The annotated video is written with OpenCV's ``mp4v`` codec, the one every opencv-python wheel
can encode. A camera window needs an OpenCV with a GUI (``opencv-python``, not the headless
wheel the project installs) and a display; without both, ``--annotate`` records the session.
"""
from __future__ import annotations

import os
import sys
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from study.inference.drawing import draw_faces
from study.inference.errors import InputError
from study.inference.faces import Box, FaceFinder
from study.inference.predictor import EmotionClassifier, FaceRecord, FaceSettings, faces_in

DEFAULT_SMOOTH = 5
MIN_IOU = 0.3
MAX_MISSING = 10
FALLBACK_FPS = 25.0  # cameras and some files report 0 frames per second
FOURCC = "mp4v"
WINDOW_QUIT_KEY = "q"
# FFmpeg prints its own complaint about an undecodable file; the one-line error here says it better.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes: 1 for the same box, 0 when they do not touch."""
    w = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    h = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    inter = max(w, 0) * max(h, 0)
    union = a.w * a.h + b.w * b.h - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Track:
    """One face followed across frames, with its last ``window`` probability vectors."""

    id: int
    box: Box
    history: deque
    missing: int = 0

    def smoothed(self) -> np.ndarray:
        return np.mean(self.history, axis=0)


class FaceTracker:
    """Matches each frame's boxes to the live tracks; unmatched boxes start new tracks."""

    def __init__(self, window: int = DEFAULT_SMOOTH, min_iou: float = MIN_IOU, max_missing: int = MAX_MISSING) -> None:
        self.window, self.min_iou, self.max_missing = window, min_iou, max_missing
        self.tracks: list[Track] = []
        self._next_id = 1

    def update(self, boxes: list[Box], probs: np.ndarray) -> list[Track]:
        """This frame's tracks, in the order of ``boxes``."""
        matched = self._match(boxes)
        current = []
        for i, (box, p) in enumerate(zip(boxes, probs)):
            track = matched.get(i) or self._start(box)
            track.box, track.missing = box, 0
            track.history.append(p)
            current.append(track)
        for track in self.tracks:
            if all(track is not c for c in current):
                track.missing += 1
        self.tracks = [t for t in self.tracks if t.missing <= self.max_missing]
        return current

    def _match(self, boxes: list[Box]) -> dict[int, Track]:
        if not boxes or not self.tracks:
            return {}
        overlap = np.array([[iou(b, t.box) for t in self.tracks] for b in boxes])
        rows, cols = linear_sum_assignment(overlap, maximize=True)
        return {r: self.tracks[c] for r, c in zip(rows, cols) if overlap[r, c] >= self.min_iou}

    def _start(self, box: Box) -> Track:
        track = Track(self._next_id, box, deque(maxlen=self.window))
        self._next_id += 1
        self.tracks.append(track)
        return track


@dataclass
class VideoReport:
    """What one video gave: a record per face per frame, and how fast it went."""

    name: str
    frames: int = 0
    seconds: float = 0.0
    records: list[FaceRecord] = field(default_factory=list)
    written: Path | None = None

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def track_rows(self) -> list[dict]:
        """Per track: frames seen, first and last frame, its most frequent (smoothed) emotion."""
        by_track: dict[int, list[FaceRecord]] = {}
        for record in self.records:
            by_track.setdefault(int(record.track or 0), []).append(record)
        return [
            {
                "track": track,
                "frames": len(faces),
                "first": faces[0].frame,
                "last": faces[-1].frame,
                "emotion": Counter(f.emotion for f in faces).most_common(1)[0][0],
                "confidence": float(np.mean([f.confidence for f in faces])),
            }
            for track, faces in sorted(by_track.items())
        ]


@dataclass(frozen=True)
class VideoSettings:
    smooth: int = DEFAULT_SMOOTH
    max_frames: int | None = None
    show: bool = False


def open_capture(source: Path | int) -> cv2.VideoCapture:
    """An opened capture; a source OpenCV cannot open is an InputError for that input only."""
    capture = cv2.VideoCapture(source if isinstance(source, int) else str(source))
    if not capture.isOpened():
        if isinstance(source, int):
            raise InputError(f"cannot open camera {source} (absent, busy, or not allowed): try another «webcam» index")
        raise InputError(f"cannot open {source} as a video (OpenCV could not decode it): pass a readable video file")
    return capture


def process_video(
    source: Path | int, name: str, classifier: EmotionClassifier, finder: FaceFinder,
    faces: FaceSettings, settings: VideoSettings, out: Path | None = None,
) -> VideoReport:
    """Label every frame of ``source`` (a file, or a camera index); write them to ``out`` if given."""
    capture = open_capture(source)
    fps = capture.get(cv2.CAP_PROP_FPS)
    sink = _Sink(out, fps if 0 < fps <= 240 else FALLBACK_FPS, name if settings.show else None)
    tracker = FaceTracker(settings.smooth)
    report = VideoReport(name, written=out)
    started = time.perf_counter()
    try:
        for frame in _frames(capture, settings.max_frames):
            labelled = _label_frame(frame, report.frames, name, classifier, finder, faces, tracker)
            report.records += labelled
            report.frames += 1
            if not sink.put(draw_faces(frame, labelled)):
                break
    except KeyboardInterrupt:
        if not isinstance(source, int):
            raise
        # Ctrl-C is how a camera session without a window ends; what was recorded is kept.
    finally:
        capture.release()
        sink.close()
    report.seconds = time.perf_counter() - started
    if report.frames == 0:
        raise InputError(f"{name} gave no frame (OpenCV could not decode it): pass a readable video file or camera")
    return report


def _label_frame(frame: np.ndarray, index: int, name: str, classifier: EmotionClassifier, finder: FaceFinder,
                 faces: FaceSettings, tracker: FaceTracker) -> list[FaceRecord]:
    boxes, crops = faces_in(frame, finder, faces)
    tracks = tracker.update(boxes, classifier.probabilities(crops))
    return [FaceRecord(name, t.box, t.smoothed(), frame=index, track=t.id) for t in tracks]


def _frames(capture: cv2.VideoCapture, max_frames: int | None):
    """RGB frames until the source ends or ``max_frames`` were read."""
    count = 0
    while max_frames is None or count < max_frames:
        ok, frame = capture.read()
        if not ok:
            return
        count += 1
        yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


class _Sink:
    """Where labelled frames go: an mp4v file (opened at the first frame's size), a window, or both."""

    def __init__(self, out: Path | None, fps: float, window: str | None) -> None:
        self.out, self.fps, self.window = out, fps, window
        self.writer: cv2.VideoWriter | None = None

    def put(self, frame: np.ndarray) -> bool:
        """False once the viewer pressed the quit key."""
        bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        if self.out is not None:
            self._writer(bgr.shape[1], bgr.shape[0]).write(bgr)
        if self.window is not None:
            cv2.imshow(self.window, bgr)
            return (cv2.waitKey(1) & 0xFF) != ord(WINDOW_QUIT_KEY)
        return True

    def _writer(self, width: int, height: int) -> cv2.VideoWriter:
        if self.writer is None:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.writer = cv2.VideoWriter(str(self.out), cv2.VideoWriter_fourcc(*FOURCC), self.fps, (width, height))
            if not self.writer.isOpened():
                raise InputError(
                    f"OpenCV cannot write {self.out} with the {FOURCC} codec: pass an .mp4 path in a writable folder"
                )
        return self.writer

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
        if self.window is not None:
            cv2.destroyWindow(self.window)


def display_available() -> bool:
    """A display to show on and an OpenCV built with a GUI (the headless wheel has none)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        cv2.namedWindow("fer-study probe")
        cv2.destroyWindow("fer-study probe")
    except cv2.error:
        return False
    return True
