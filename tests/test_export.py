"""export: SavedModel, TFLite (float and quantized) and ONNX each agree with the Keras model, and
an export that does not agree is refused and removed."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli import cli
from study.inference import export as export_mod
from study.inference.export import (
    FLOAT_TOLERANCE, QUANTIZED_TOLERANCE, ExportError, compare, export_model,
)
from study.inference.models import load_model
from study.inference.samples import generated_faces, labelled_faces


@pytest.fixture(scope="module")
def model(tiny_run: Path):
    return load_model(tiny_run / "model.keras")


@pytest.fixture(scope="module")
def faces() -> np.ndarray:
    return generated_faces(16, seed=0)


def keras_probs(model, faces: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict_on_batch(faces[..., None].astype(np.float32)))


@pytest.mark.parametrize("fmt, name", [("tflite", "m.tflite"), ("savedmodel", "saved")])
def test_float_exports_agree_with_keras(model, faces: np.ndarray, tmp_path: Path, fmt: str, name: str) -> None:
    path, check = export_model(model, fmt, tmp_path / name, faces)
    assert path.exists() and not (tmp_path / f".{name}.partial").exists()
    assert check.ok and check.faces == 16 and check.max_abs_diff <= FLOAT_TOLERANCE.max_abs_diff
    rerun = export_mod.RUNNERS[fmt](path, faces[..., None].astype(np.float32))  # the kept file, run again
    assert np.abs(rerun - keras_probs(model, faces)).max() <= FLOAT_TOLERANCE.max_abs_diff


def test_quantized_tflite_is_smaller_and_within_its_tolerance(model, faces: np.ndarray, tmp_path: Path) -> None:
    plain, _ = export_model(model, "tflite", tmp_path / "f.tflite", faces)
    quantized, check = export_model(model, "tflite", tmp_path / "q.tflite", faces, quantize=True)
    assert check.tolerance == QUANTIZED_TOLERANCE and check.ok
    assert quantized.stat().st_size < plain.stat().st_size / 2  # int8 weights


def test_onnx_export_agrees_or_names_what_is_missing(model, faces: np.ndarray, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    if all(importlib.util.find_spec(m) for m in ("tf2onnx", "onnxruntime")):
        path, check = export_model(model, "onnx", tmp_path / "m.onnx", faces)
        assert path.is_file() and check.ok
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(ExportError, match="ONNX export on tensorflow needs tf2onnx and onnxruntime: pip install"):
        export_model(model, "onnx", tmp_path / "n.onnx", faces)


def test_an_export_that_disagrees_is_refused_and_removed(model, faces: np.ndarray, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    always_angry = np.eye(7)[np.zeros(len(faces), int)]  # a broken conversion: one class whatever the face
    monkeypatch.setitem(export_mod.RUNNERS, "tflite", lambda path, x: always_angry)
    with pytest.raises(ExportError, match=r"disagrees with the Keras model on 16 faces: max \|p_export"):
        export_model(model, "tflite", tmp_path / "bad.tflite", faces)
    assert list(tmp_path.iterdir()) == []


def test_compare_measures_difference_and_top1_agreement() -> None:
    reference = np.array([[0.7, 0.3], [0.4, 0.6]])
    check = compare(reference, np.array([[0.65, 0.35], [0.6, 0.4]]), QUANTIZED_TOLERANCE)
    assert check.max_abs_diff == pytest.approx(0.2) and check.agreement == 0.5 and not check.ok


def test_export_cli_prints_the_measured_difference(tiny_run: Path, sample_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["export", str(tiny_run), "--format", "tflite", "--quantize", "--out",
                                      str(tmp_path / "m.tflite"), "--data", str(sample_dir)])
    assert result.exit_code == 0, result.output
    assert "max |p_export - p_keras| =" in result.stdout and "top-1 agreement >= 90%" in result.stdout
    assert labelled_faces(sample_dir, 16).x.shape == (16, 48, 48)


@pytest.mark.parametrize("args, message", [
    (["--format", "savedmodel", "--quantize"], "--quantize applies to tflite only"),
    (["--format", "savedmodel"], "already exists"),
    (["--format", "tflite"], "is a folder"),
])
def test_export_cli_refuses_bad_requests(tiny_run: Path, tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    result = CliRunner().invoke(cli, ["export", str(tiny_run), *args, "--out", str(tmp_path / "taken")])
    assert result.exit_code == 2 and message in result.stderr
