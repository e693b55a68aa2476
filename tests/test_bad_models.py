"""Bad model files as a user hands them over (issue 13, item 5): a ``--weights`` file that exists but is
no Keras model or HDF5 weights file, and a model for ``predict`` or ``export`` that no training run
describes (no manifest.json beside it, or a run whose classes or preprocessing are not what inference
assumes).

Each must end in one line naming the file and what is wrong with it, exit status 2 and no traceback,
before any training (a search must not even open its store); the models ``train`` writes, as a run
directory or its model.keras, are still accepted.
"""
from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli import cli

BACKBONE = ["--backbone", "mini_xception"]
TINY = {"train": [*BACKBONE, "--epochs", "1", "--frozen-epochs", "1", "--batch-size", "16"],
        "search": [*BACKBONE, "--trials", "1", "--max-epochs", "1"]}


def run_cli(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args], env={"COLUMNS": "250"})


def refused(*args: object) -> str:
    """The one line the command line printed for a refused command (status 2, no traceback)."""
    result = run_cli(*args)
    message = result.stderr.strip()
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output and len(message.splitlines()) == 1, message
    return message


# ------------------------------------------------------------------------ --weights files
def _truncated_zip(path: Path) -> None:
    """A zip cut short, as an interrupted copy or download leaves one: its central directory is gone."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", json.dumps({"class_name": "Functional"}))
        archive.writestr("model.weights.h5", np.random.default_rng(0).bytes(4096))
    path.write_bytes(path.read_bytes()[:2000])


BAD_WEIGHTS = {  # name -> (how to write it, what the message must say is wrong)
    "notes.keras": (lambda p: p.write_text("not a model\n"), "is not a Keras model file (it is not a zip archive)"),
    "empty.keras": (lambda p: p.write_bytes(b""), "is not a Keras model file (it is empty)"),
    "cut.keras": (_truncated_zip, "is not a Keras model file (it is a truncated or damaged zip archive)"),
    "notes.h5": (lambda p: p.write_text("not weights\n"), "is not an HDF5 weights file (it has no HDF5 signature)"),
}


@pytest.mark.parametrize("name", BAD_WEIGHTS)
@pytest.mark.parametrize("command", ["train", "search"])
def test_a_weights_file_that_is_no_model_is_named_before_any_data_is_read(name: str, command: str,
                                                                          tmp_path: Path) -> None:
    """Keras says "File not found" for a .keras file that is not a zip; the check must come before the
    data is read (the dataset here does not exist) and, for a search, before its store is opened."""
    write, problem = BAD_WEIGHTS[name]
    write(tmp_path / name)
    store = tmp_path / "studies.db"
    extra = (["--storage", f"sqlite:///{store}", "--runs-dir", tmp_path / "runs"] if command == "search"
             else ["--out", tmp_path / "run"])
    message = refused(command, "--regime", "transfer", "--data", tmp_path / "no-data", *TINY[command],
                      "--weights", tmp_path / name, *extra)
    assert f"--weights {tmp_path / name} {problem}" in message
    assert not store.exists() and not (tmp_path / "run").exists() and not (tmp_path / "runs").exists()


def test_a_run_directory_whose_model_is_no_zip_is_named(tmp_path: Path) -> None:
    """A run directory given as «weights» means its model.keras: that is the file to name."""
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "model.keras").write_text("not a model\n")
    message = refused("train", "--regime", "transfer", "--data", tmp_path / "no-data", *TINY["train"],
                      "--weights", tmp_path / "run")
    assert f"{tmp_path / 'run' / 'model.keras'} is not a Keras model file (it is not a zip archive)" in message


def test_a_missing_weights_file_is_still_called_missing(sample_dir: Path, tmp_path: Path) -> None:
    message = refused("train", "--regime", "transfer", "--data", sample_dir, *TINY["train"],
                      "--weights", tmp_path / "missing.keras", "--out", tmp_path / "run")
    assert f"{tmp_path / 'missing.keras'} does not exist" in message
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------ models for inference
@pytest.fixture(scope="module")
def bare_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model.keras of the toolkit's shapes (48x48x1 in, 7 softmax out) that no training run wrote:
    alone in its folder, with no manifest.json beside it."""
    import keras

    path = tmp_path_factory.mktemp("bare") / "model.keras"
    inputs = keras.Input((48, 48, 1))
    outputs = keras.layers.Dense(7, activation="softmax")(keras.layers.Flatten()(inputs))
    keras.Model(inputs, outputs).save(path)
    return path


def _face(sample_dir: Path) -> Path:
    return next((sample_dir / "test" / "happy").glob("*.png"))


def _inference_commands(model: Path, sample_dir: Path, tmp_path: Path) -> dict[str, list[object]]:
    return {
        "predict": ["predict", model, _face(sample_dir), "--no-detect"],
        "grid": ["predict", model, "--grid", sample_dir / "test", "--out", tmp_path / "grid.png"],
        "export": ["export", model, "--format", "tflite", "--out", tmp_path / "model.tflite"],
    }


@pytest.mark.parametrize("given", ["file", "folder"])
@pytest.mark.parametrize("command", ["predict", "grid", "export"])
def test_a_model_without_a_manifest_is_refused(bare_model: Path, sample_dir: Path, tmp_path: Path,
                                               command: str, given: str) -> None:
    """Shapes alone do not say what a model was trained on: only a run's manifest does."""
    model = bare_model if given == "file" else bare_model.parent
    message = refused(*_inference_commands(model, sample_dir, tmp_path)[command])
    assert f"model {bare_model} has no manifest.json beside it" in message
    assert "python cli.py train" in message  # how a valid model is made
    assert not (tmp_path / "grid.png").exists() and not (tmp_path / "model.tflite").exists()


def _copy_run(tiny_run: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    return run


def test_a_run_of_other_classes_is_refused(tiny_run: Path, sample_dir: Path, tmp_path: Path) -> None:
    run = _copy_run(tiny_run, tmp_path)
    arrays = dict(np.load(run / "predictions.npz"))
    arrays["class_names"] = np.array(["anger", "joy", "fear", "happy", "neutral", "sad", "surprise"])
    np.savez_compressed(run / "predictions.npz", **arrays)
    message = refused("predict", run, _face(sample_dir), "--no-detect")
    assert f"model {run / 'model.keras'} cannot be used (it was trained for the classes anger, joy, fear" in message
    assert "not angry, disgust, fear, happy, neutral, sad, surprise" in message


def test_a_run_whose_backbone_and_preprocessing_differ_is_refused(tiny_run: Path, sample_dir: Path,
                                                                  tmp_path: Path) -> None:
    """A run that says mobilenetv3small (which rescales by itself) about a mini_xception model."""
    run = _copy_run(tiny_run, tmp_path)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "backbone": "mobilenetv3small"}))
    message = refused("predict", run / "model.keras", _face(sample_dir), "--no-detect")
    assert "its run says mobilenetv3small but the model is fer_mini_xception" in message
    assert "it preprocesses raw pixels as 'unit', not as mobilenetv3small needs ('none')" in message


def test_a_model_file_that_is_no_zip_says_so(tmp_path: Path, sample_dir: Path) -> None:
    (tmp_path / "model.keras").write_text("not a model\n")
    message = refused("predict", tmp_path / "model.keras", _face(sample_dir), "--no-detect")
    assert f"cannot load {tmp_path / 'model.keras'} as a Keras model (it is not a zip archive)" in message


@pytest.mark.parametrize("given", ["run directory", "model.keras"])
def test_a_trained_run_is_accepted(tiny_run: Path, sample_dir: Path, tmp_path: Path, given: str) -> None:
    model = tiny_run if given == "run directory" else tiny_run / "model.keras"
    result = run_cli("predict", model, _face(sample_dir), "--no-detect", "--json", tmp_path / "faces.json")
    assert result.exit_code == 0, result.output
    assert len(json.loads((tmp_path / "faces.json").read_text())["faces"]) == 1
