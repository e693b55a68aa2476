"""Grad-CAM: it finds the one region a model decides by, it picks a feature map that can say where,
and ``predict --grid DIR --saliency OUT.png`` and the report draw it."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from cli import cli
from study import data
from study.data import CLASSES
from study.errors import ModelError
from study.saliency import grad_cam, grad_cam_of, one_per_class, target_layer

SIZE = 48
HALF = SIZE // 2


def run_cli(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], env={"COLUMNS": "250"})


def region_images(n: int, rng: np.random.Generator, corner: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Noise everywhere, the same for both classes; class 1 alone has its ``corner`` quadrant brightened,
    so the class is decided by that quadrant and by nothing else."""
    x = rng.uniform(0, 140, (n, SIZE, SIZE, 1)).astype(np.float32)
    y = rng.integers(0, 2, n)
    rows, cols = slice(corner[0] * HALF, (corner[0] + 1) * HALF), slice(corner[1] * HALF, (corner[1] + 1) * HALF)
    x[y == 1, rows, cols] += 100.0
    return x, y


def one_region_model(corner: tuple[int, int]):
    """A tiny conv net, its convolutions in a nested model as study.model nests its backbone, trained to tell
    the classes apart (a few seconds on a CPU)."""
    import keras

    keras.utils.set_random_seed(0)
    inner_in = keras.Input((SIZE, SIZE, 1))
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inner_in)
    h = keras.layers.MaxPooling2D(2)(h)
    h = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(h)
    h = keras.layers.MaxPooling2D(2)(h)
    h = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="last_conv")(h)  # 12x12
    backbone = keras.Model(inner_in, h, name="backbone")
    inputs = keras.Input((SIZE, SIZE, 1))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = backbone(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    x_train, y_train = region_images(2048, np.random.default_rng(1), corner)
    model.fit(x_train, y_train, batch_size=32, epochs=4, verbose=0)  # 256 steps
    return model


def quadrant_mask(corner: tuple[int, int]) -> np.ndarray:
    mask = np.zeros((SIZE, SIZE), bool)
    mask[corner[0] * HALF:(corner[0] + 1) * HALF, corner[1] * HALF:(corner[1] + 1) * HALF] = True
    return mask


@pytest.mark.parametrize("corner", [(0, 0), (1, 1)], ids=["top-left", "bottom-right"])
def test_grad_cam_concentrates_on_the_one_region_the_answer_depends_on(corner: tuple[int, int]) -> None:
    model = one_region_model(corner)
    x, y = region_images(64, np.random.default_rng(7), corner)
    assert (model.predict(x, verbose=0).argmax(axis=1) == y).mean() > 0.9  # the model did learn the rule
    assert target_layer(model).name == "last_conv" and target_layer(model).parent == "backbone"
    bright = x[y == 1]
    maps = grad_cam(model, bright, class_index=1)
    assert maps.shape == (len(bright), SIZE, SIZE) and maps.min() >= 0 and maps.max() <= 1
    inside = quadrant_mask(corner)
    share = maps[:, inside].sum() / maps.sum()  # a uniform map puts 0.25 of its mass in one quadrant
    assert share > 0.6, share
    assert maps[:, inside].mean() > 4 * maps[:, ~inside].mean()
    per_image = maps[:, inside].sum(axis=(1,)) / maps.reshape(len(maps), -1).sum(axis=1)
    assert (per_image > 0.4).mean() > 0.9  # not an average of a few lucky maps


def test_mini_xception_is_explained_at_its_last_3x3_map_with_maps_in_range() -> None:
    from study.config import TrainConfig
    from study.model import build_model

    model = build_model(TrainConfig(backbone="mini_xception", weights="none", seed=0, dense1_units=16,
                                    dense2_units=16, dense3_units=16))
    target = target_layer(model)
    assert (target.name, target.parent, target.shape, target.last_map) == ("exit_relu", "backbone", (3, 3, 256), None)
    assert target.describe() == "exit_relu of backbone (3x3x256)"
    faces = np.random.default_rng(0).integers(0, 256, (5, SIZE, SIZE)).astype(np.uint8)
    cam = grad_cam_of(model, faces)
    assert cam.maps.shape == (5, SIZE, SIZE) and cam.maps.dtype == np.float32
    assert np.isfinite(cam.maps).all() and cam.maps.min() >= 0 and cam.maps.max() <= 1
    np.testing.assert_allclose(cam.probs, model.predict(faces[..., None].astype(np.float32), verbose=0), atol=1e-4)
    assert (cam.classes == cam.probs.argmax(axis=1)).all()  # by default, each face's predicted class
    assert (grad_cam_of(model, faces, class_index=[0, 1, 2, 3, 4]).classes == [0, 1, 2, 3, 4]).all()
    assert target_layer(model, "module4_add").shape == (3, 3, 128)
    assert grad_cam(model, faces[:2], layer="module3_add").shape == (2, SIZE, SIZE)
    with pytest.raises(ModelError, match="no layer 'nope'"):
        target_layer(model, "nope")
    with pytest.raises(ModelError, match="2 class indices for 5 images"):
        grad_cam(model, faces, class_index=[0, 1])


def test_densenet169_at_48_pixels_is_explained_at_its_last_3x3_map_not_its_1x1_output() -> None:
    from study.config import TrainConfig
    from study.model import backbone_of, build_model

    model = build_model(TrainConfig(backbone="densenet169", weights="none", dense1_units=8, dense2_units=8,
                                    dense3_units=8))
    assert tuple(backbone_of(model).output.shape[1:3]) == (1, 1)
    target = target_layer(model)
    assert (target.name, target.shape[:2], target.last_map) == ("pool4_conv", (3, 3), (1, 1))


def test_one_face_per_class_is_a_seeded_draw_and_says_which_class_is_missing() -> None:
    labels = np.array([0, 0, 1, 2, 2, 2, 3, 4, 5, 5, 0])  # no surprise (6)
    picked = one_per_class(labels, seed=0)
    assert picked == one_per_class(labels, seed=0) and len(picked) == len(CLASSES)
    assert [labels[i] for i in picked[:6]] == [0, 1, 2, 3, 4, 5] and picked[6] is None
    assert any(one_per_class(labels, seed=s) != picked for s in range(1, 6))  # the seed chooses


# ------------------------------------------------------------------------- the command line
def test_predict_saliency_draws_one_row_per_class_for_each_model(tiny_run: Path, sample_dir: Path,
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "where.png"
    result = run_cli("predict", tiny_run, "--grid", sample_dir, "--saliency", out, "--beside", tiny_run)
    assert result.exit_code == 0, result.output
    assert f"saliency: {out} (7 faces, Grad-CAM at exit_relu of backbone (3x3x256))" in result.stdout
    with Image.open(out) as png:
        width, height = png.size
        assert height > 7 * 150 and width > 3 * 150  # seven rows; the face and two models
        pixels = np.asarray(png.convert("RGB")).astype(int)
    colourful = (np.abs(pixels[..., 0] - pixels[..., 2]) > 60).mean()  # the jet heat maps; faces are gray
    assert colourful > 0.05


def test_predict_saliency_uses_the_same_faces_as_a_library_caller(tiny_run: Path, sample_dir: Path,
                                                                  tmp_path: Path) -> None:
    from study.inference.saliency import predict_saliency
    from study.inference.samples import one_face_per_class

    drawn = predict_saliency([str(tiny_run)], "sqlite:///nowhere.db", sample_dir / "test", tmp_path / "s.png", seed=3)
    picked = one_face_per_class(sample_dir, seed=3)  # a dataset root means its test/ split
    assert drawn.names == tuple(p[1] for p in picked) and len(drawn.names) == len(CLASSES)
    assert [data._ALIASES[Path(name).parts[-2]] for name in drawn.names] == list(CLASSES)  # <split>/<class>/<file>
    cam = next(iter(drawn.columns.values()))
    assert cam.maps.shape == (len(CLASSES), SIZE, SIZE)


@pytest.mark.parametrize("args, words", [
    (["--saliency", "x.png"], "--saliency draws one test face per class of a dataset: pass --grid DIR too"),
    (["--grid", "DIR", "--beside", "other"], "--beside adds a model to the --saliency figure"),
    (["--grid", "DIR", "--saliency", "x.png", "--out", "y.png"], "pass one"),
])
def test_bad_saliency_options_are_one_line_and_exit_2(tiny_run: Path, args: list[str], words: str) -> None:
    result = run_cli("predict", tiny_run, *args)
    assert result.exit_code == 2 and words in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_missing_folder_or_model_is_one_line_and_exit_2(tiny_run: Path, sample_dir: Path, tmp_path: Path) -> None:
    missing = run_cli("predict", tiny_run, "--grid", tmp_path / "nope", "--saliency", tmp_path / "s.png")
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    beside = run_cli("predict", tiny_run, "--grid", sample_dir, "--saliency", tmp_path / "s.png",
                     "--beside", tmp_path / "no-run")
    assert beside.exit_code == 2 and "no-run" in beside.stderr and len(beside.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "s.png").exists()


# ------------------------------------------------------------------------------ the report
def test_the_report_draws_both_regimes_on_the_same_faces_or_says_why_not(tiny_run: Path, tmp_path: Path) -> None:
    from reports import saliency
    from reports.build import _figure
    from reports.collect import data_view
    from study.runs import Run

    run = Run.load(tiny_run)
    view = data_view([run], "val", ["scratch", "transfer"])
    assert view.images is not None
    regimes = {r: SimpleNamespace(runs=(run,)) for r in ("scratch", "transfer")}
    content = SimpleNamespace(evidence=SimpleNamespace(regimes=regimes), data=[view], split="val")
    assert saliency.problem(content) is None
    drawn = saliency.saliency_figure(content, tmp_path, _figure)
    block = drawn[saliency.KEY]
    assert (tmp_path / block.path).is_file() and "exit_relu of backbone (3x3x256)" in block.caption
    assert "deepest map is only" not in block.caption  # mini_xception ends in a 3x3 map
    assert block.tall  # seven rows: the PDF gives it most of a page, not the 105 mm of other figures
    assert saliency.blocks(content, drawn) == [block]

    empty = tmp_path / "empty-run"
    empty.mkdir()
    (empty / "model.keras").write_bytes(b"")
    regimes["transfer"] = SimpleNamespace(runs=(SimpleNamespace(model_path=empty / "model.keras"),))
    assert saliency.saliency_figure(content, tmp_path / "again", _figure) == {}
    [sentence] = saliency.blocks(content, {})
    assert sentence.text.startswith("No Grad-CAM figure: the transfer model ") and "it is empty" in sentence.text
