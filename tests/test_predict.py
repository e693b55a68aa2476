"""predict: faces found in a real photograph, images, folders, video, the 3x3 grid, and bad inputs.

The photograph is scikit-image's astronaut (one frontal face, found by OpenCV 4's Haar cascade);
the model is the session's tiny run, so the tests check the plumbing, not the accuracy.
"""
from __future__ import annotations

import json
import shutil
from collections import deque
from pathlib import Path

import cv2
import numpy as np
import optuna
import pytest
from click.testing import CliRunner
from PIL import Image

from cli import cli
from study.data import CLASSES
from study.errors import ModelError
from study.inference.faces import Box, FaceFinder, read_image, to_gray
from study.inference.grid import RIGHT_COLOR, grid_cells
from study.inference.models import load_model, resolve_model_path
from study.inference.predictor import EmotionClassifier
from study.inference.video import FaceTracker, iou

skdata = pytest.importorskip("skimage.data", reason="scikit-image ships the test photograph (dev extra)")

ASTRONAUT_FACE = Box(177, 66, 95, 95)  # where the cascade finds it on the unmodified photograph
VIDEO_FRAMES = 12


def run_cli(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args], env={"COLUMNS": "250"})


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """astronaut.png, and a folder with it twice (one in a subfolder, as JPEG)."""
    root = tmp_path_factory.mktemp("photos")
    image = Image.fromarray(skdata.astronaut())
    image.save(root / "astronaut.png")
    (root / "folder" / "sub").mkdir(parents=True)
    image.save(root / "folder" / "a.png")
    image.save(root / "folder" / "sub" / "b.jpg")
    return root


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12-frame mp4 of the photograph drifting right by 3 pixels a frame."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    frame = cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, frame.shape[1::-1])
    for i in range(VIDEO_FRAMES):
        writer.write(np.roll(frame, 3 * i, axis=1))
    writer.release()
    return path


def count_frames(path: Path) -> int:
    capture, frames = cv2.VideoCapture(str(path)), 0
    while capture.read()[0]:
        frames += 1
    return frames


# ------------------------------------------------------------------------------- faces
def test_the_cascade_finds_the_astronauts_one_face() -> None:
    boxes = FaceFinder().find(to_gray(skdata.astronaut()))
    assert len(boxes) == 1
    assert iou(boxes[0], ASTRONAUT_FACE) > 0.8


def test_no_detect_gives_the_model_the_pixels_training_would(tiny_run: Path, sample_dir: Path, tmp_path: Path) -> None:
    """A 48x48 FER-style file predicted with --no-detect is decoded exactly as the trainer decodes it."""
    face = next((sample_dir / "test" / "happy").glob("*.png"))
    result = run_cli("predict", tiny_run, face, "--no-detect", "--json", tmp_path / "x.json")
    assert result.exit_code == 0, result.output
    row = json.loads((tmp_path / "x.json").read_text())["faces"][0]
    assert (row["x"], row["y"], row["w"], row["h"]) == (0, 0, 48, 48)
    direct = load_model(tiny_run / "model.keras").predict_on_batch(np.asarray(Image.open(face))[None, ..., None] * 1.0)
    assert [row[f"p_{c}"] for c in CLASSES] == pytest.approx(direct[0].tolist(), abs=1e-6)


# ------------------------------------------------------------------------------- images
def test_photo_gives_a_table_json_and_an_annotated_copy(tiny_run: Path, photos: Path, tmp_path: Path) -> None:
    result = run_cli("predict", tiny_run, photos / "astronaut.png", "--annotate", tmp_path / "labelled.png",
                     "--json", tmp_path / "faces.json")
    assert result.exit_code == 0, result.output
    assert "astronaut.png" in result.stdout and "top 3" in result.stdout
    document = json.loads((tmp_path / "faces.json").read_text())
    (face,) = document["faces"]
    assert iou(Box(face["x"], face["y"], face["w"], face["h"]), ASTRONAUT_FACE) > 0.8
    assert face["emotion"] in CLASSES and sum(face[f"p_{c}"] for c in CLASSES) == pytest.approx(1, abs=1e-4)
    assert len(face["top3"].split()) == 3 and document["failures"] == []
    original, labelled = read_image(photos / "astronaut.png"), read_image(tmp_path / "labelled.png")
    assert labelled.shape == original.shape
    changed = np.any(labelled != original, axis=2)
    assert changed[ASTRONAUT_FACE.y + 40, ASTRONAUT_FACE.x]  # the box's left edge was drawn
    assert not changed[400:, :100].any()  # far from the face, the picture is untouched


def test_a_folder_is_searched_recursively_and_mirrored(tiny_run: Path, photos: Path, tmp_path: Path) -> None:
    result = run_cli("predict", tiny_run, photos / "folder", "--annotate", tmp_path / "out",
                     "--csv", tmp_path / "f.csv", "--batch-size", "1")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "a.png").is_file() and (tmp_path / "out" / "sub" / "b.jpg").is_file()
    lines = (tmp_path / "f.csv").read_text().splitlines()
    assert lines[0].startswith("file,frame,track,x,y,w,h,emotion,confidence,top3,p_angry")
    assert len(lines) == 3 and any("sub/b.jpg" in line for line in lines)


def test_each_bad_input_is_named_and_the_others_still_print(tiny_run: Path, photos: Path, tmp_path: Path) -> None:
    (tmp_path / "broken.jpg").write_text("not a picture")
    Image.new("RGB", (200, 150), (90, 120, 200)).save(tmp_path / "blank.png")
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.mp4").write_text("not a video")
    inputs = [photos / "astronaut.png", tmp_path / "broken.jpg", tmp_path / "blank.png", tmp_path / "missing.png",
              tmp_path / "empty", tmp_path / "bad.mp4"]
    result = run_cli("predict", tiny_run, *inputs)
    assert result.exit_code == 2
    assert "astronaut.png" in result.stdout  # the good photo's row is still there
    assert "cannot read" in result.stderr and "broken.jpg" in result.stderr
    assert "no face found in" in result.stderr and "--no-detect" in result.stderr
    assert "missing.png does not exist" in result.stderr
    assert "holds no images" in result.stderr
    assert "cannot open" in result.stderr and "bad.mp4 as a video" in result.stderr
    assert "5 of 6 input(s) failed" in result.stderr


@pytest.mark.parametrize("problem", ["missing", "not keras", "other input", "other output"])
def test_an_unusable_model_is_refused_in_one_line(problem: str, photos: Path, tmp_path: Path) -> None:
    import keras

    path = tmp_path / "model.keras"
    if problem == "not keras":
        path.write_text("hello")
    elif problem != "missing":
        shape, classes = ((64, 64, 3), 7) if problem == "other input" else ((48, 48, 1), 5)
        inputs = keras.Input(shape)
        keras.Model(inputs, keras.layers.Dense(classes)(keras.layers.Flatten()(inputs))).save(path)
    result = run_cli("predict", path, photos / "astronaut.png")
    assert result.exit_code == 2 and "Traceback" not in result.output
    expected = {"missing": "does not exist", "not keras": "cannot load", "other input": "takes input (64, 64, 3)",
                "other output": "outputs (5,), not 7 class probabilities"}[problem]
    assert expected in result.stderr


def test_a_study_name_means_its_best_final_run(tiny_run: Path, tmp_path: Path) -> None:
    better = tmp_path / "better"
    shutil.copytree(tiny_run, better)
    metrics = json.loads((better / "metrics.json").read_text())
    metrics["val"]["accuracy"] = 0.99
    (better / "metrics.json").write_text(json.dumps(metrics))
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    study = optuna.create_study(storage=storage, study_name="s1")
    study.set_user_attr("final_runs", [str(tiny_run), str(better), str(tmp_path / "deleted-run")])
    assert resolve_model_path("s1", storage) == better / "model.keras"
    optuna.create_study(storage=storage, study_name="empty")
    with pytest.raises(ModelError, match="has no final run"):
        resolve_model_path("empty", storage)


# -------------------------------------------------------------------------------- video
def test_video_is_labelled_frame_by_frame_and_tracked(tiny_run: Path, clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "labelled.mp4"
    result = run_cli("predict", tiny_run, clip, "--annotate", out, "--smooth", "3", "--json", tmp_path / "v.json")
    assert result.exit_code == 0, result.output
    assert count_frames(out) == VIDEO_FRAMES
    assert "frames/s" in result.stdout
    (video,) = json.loads((tmp_path / "v.json").read_text())["videos"]
    assert video["frames"] == VIDEO_FRAMES and video["fps"] > 0
    assert [t["frames"] for t in video["tracks"]] == [VIDEO_FRAMES]  # one face, followed in every frame


def test_tracker_matches_by_overlap_and_smooths_over_its_window() -> None:
    tracker = FaceTracker(window=2)
    eye = np.eye(len(CLASSES))
    first = tracker.update([Box(0, 0, 50, 50), Box(200, 0, 50, 50)], eye[[0, 1]])
    moved = tracker.update([Box(205, 3, 50, 50), Box(4, 2, 50, 50)], eye[[2, 3]])
    assert [t.id for t in first] == [1, 2] and [t.id for t in moved] == [2, 1]
    tracker.update([Box(8, 4, 50, 50)], eye[[4]])
    assert tracker.tracks[0].smoothed() == pytest.approx((eye[3] + eye[4]) / 2)  # window 2: frame 1 dropped
    assert isinstance(tracker.tracks[0].history, deque)
    far = tracker.update([Box(400, 400, 50, 50)], eye[[5]])
    assert far[0].id == 3


def test_the_camera_needs_a_window_or_a_recording(tiny_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    result = run_cli("predict", tiny_run, "--webcam")
    assert result.exit_code == 2 and "pass --annotate OUT.mp4" in result.stderr


# --------------------------------------------------------------------------------- grid
def test_grid_draws_nine_titled_images(tiny_run: Path, sample_dir: Path, tmp_path: Path) -> None:
    classifier = EmotionClassifier(load_model(tiny_run / "model.keras"))
    cells = grid_cells(classifier, sample_dir / "test", seed=3)
    assert len(cells) == 9 and len({c.name for c in cells}) == 9
    assert all(c.title.startswith(f"true: {c.true} / pred: {c.predicted} (") for c in cells)
    assert [c.name for c in grid_cells(classifier, sample_dir, seed=3)] == [c.name for c in cells]  # root = its test/
    result = run_cli("predict", tiny_run, "--grid", sample_dir / "test", "--out", tmp_path / "grid.png", "--seed", "3")
    assert result.exit_code == 0, result.output
    assert "of 9 right" in result.stdout and RIGHT_COLOR == "tab:green"
    with Image.open(tmp_path / "grid.png") as png:
        assert png.size[0] > 600 and png.size[1] > 600


def test_modes_and_formats_are_checked_before_any_work(tiny_run: Path, photos: Path) -> None:
    assert "give images, folders or videos" in run_cli("predict", tiny_run).stderr
    both = run_cli("predict", tiny_run, photos / "astronaut.png", "--json", "a.json", "--csv", "a.csv")
    assert both.exit_code == 2 and "alternatives" in both.stderr
