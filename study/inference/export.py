"""Export a model for serving and prove the export computes what the Keras model computes.

Formats: a TensorFlow SavedModel (Keras's ``model.export``), TFLite (converted from that
SavedModel; ``quantize`` = dynamic-range quantization, int8 weights with float activations) and
ONNX (Keras's ``model.export(format="onnx")``: tf2onnx on TensorFlow, jax2onnx on JAX, torch.onnx on
PyTorch; checked with onnxruntime, and an export it cannot run is refused in one line). SavedModel and TFLite need TensorFlow as the Keras backend: under another,
the export is refused in one line (exit 2).
Every export keeps the model's contract: float32 (N, 48, 48, 1) raw 0..255 grayscale in, the 7
probabilities of ``study.data.CLASSES`` out, since the preprocessing is a layer inside the model.

An export is written beside its destination, run on sample faces, compared with the Keras
model's probabilities, and only then moved into place; one outside the tolerance is deleted. Missing
folders of the destination are created (and said so); a write that fails (a full or read-only
disk, whether Python or TensorFlow writes) is one ``WriteFailed`` line, and the export leaves
nothing behind, not even the folders it created.

Tolerances (probabilities in [0, 1]):
* float exports: max |p_export - p_keras| <= 1e-4. The same float32 graph run by another
  kernel library (XNNPACK, onnxruntime) differs only by summation order, about 1e-7; any real
  conversion error (a lost preprocessing step, a transposed layout) is orders of magnitude larger.
* dynamic-range quantized TFLite: max |diff| <= 0.1 and the top-1 emotion the same on >= 90%
  of the faces. Int8 weights move probabilities by up to a few hundredths; more means the model
  does not survive quantization.
"""
from __future__ import annotations

import contextlib
import errno
import importlib.util
import os
import shutil
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from study import runs, tflite
from study.errors import UserError, WriteFailed
from study.events import SILENT, Events
from study.inference import models
from study.inference.samples import generated_faces, labelled_faces

FORMATS = ("savedmodel", "tflite", "onnx")
TENSORFLOW_ONLY = ("savedmodel", "tflite")  # written and run by TensorFlow: under JAX or PyTorch, refused
CHECK_FACES = 16


class ExportError(UserError):
    """An export cannot be written, cannot run, or does not agree with the Keras model."""


@dataclass(frozen=True)
class Tolerance:
    max_abs_diff: float
    min_agreement: float

    def describe(self) -> str:
        agreement = f", top-1 agreement >= {self.min_agreement:.0%}" if self.min_agreement else ""
        return f"max |diff| <= {self.max_abs_diff:g}{agreement}"


FLOAT_TOLERANCE = Tolerance(1e-4, 0.0)  # agreement is implied: a tie within 1e-4 may flip either way
QUANTIZED_TOLERANCE = Tolerance(0.1, 0.9)


@dataclass(frozen=True)
class ExportCheck:
    """How the export's probabilities compare with the Keras model's on the same faces."""

    faces: int
    max_abs_diff: float
    agreement: float
    tolerance: Tolerance

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance.max_abs_diff and self.agreement >= self.tolerance.min_agreement

    def describe(self) -> str:
        return (f"on {self.faces} faces: max |p_export - p_keras| = {self.max_abs_diff:.3g}, "
                f"top-1 agreement {self.agreement:.0%} (tolerance: {self.tolerance.describe()})")


def compare(reference: np.ndarray, exported: np.ndarray, tolerance: Tolerance) -> ExportCheck:
    diff = float(np.max(np.abs(exported - reference))) if len(reference) else 0.0
    agreement = float(np.mean(exported.argmax(axis=1) == reference.argmax(axis=1))) if len(reference) else 1.0
    return ExportCheck(len(reference), diff, agreement, tolerance)


def export_model(model, fmt: str, out: str | Path, faces: np.ndarray, quantize: bool = False,
                 events: Events = SILENT) -> tuple[Path, ExportCheck]:
    """Write ``model`` as ``fmt`` to ``out``, checked on ``faces`` ((N, 48, 48) uint8); ``events``
    hears of a folder it had to create for ``out``."""
    out = Path(out).expanduser()
    _check_request(fmt, out, quantize)
    created = _make_folder(out.parent)
    try:
        check = _export(model, fmt, out, faces, quantize)
    except BaseException:
        _remove_empty(out.parent, created)
        raise
    if created is not None:
        events.say(f"created the folder {out.parent}")
    return out, check


def _export(model, fmt: str, out: Path, faces: np.ndarray, quantize: bool) -> ExportCheck:
    import keras  # deferred: the backend

    staging = out.with_name(f".{out.name}.partial")
    _remove(staging)
    try:
        x = np.asarray(faces, np.float32).reshape(-1, *model.inputs[0].shape[1:])
        # a direct call first: the ONNX exporter needs a model that has been called (under JAX, predict's
        # compiled function does not count)
        reference = np.asarray(keras.ops.convert_to_numpy(model(x, training=False)))
        _write(fmt, model, staging, quantize, out)
        check = compare(reference, _run(fmt, staging, x), QUANTIZED_TOLERANCE if quantize else FLOAT_TOLERANCE)
        if not check.ok:
            raise ExportError(f"the {fmt} export disagrees with the Keras model {check.describe()}: it was not kept")
        with runs.writing(out):
            _remove(out)
            os.replace(staging, out)
    finally:
        _remove(staging)
    return check


def _run(fmt: str, path: Path, x: np.ndarray) -> np.ndarray:
    """The written export on the check faces; one that its runtime cannot run is one line, not a trace."""
    try:
        return RUNNERS[fmt](path, x)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:300]
        hint = (": export from a TensorFlow process instead (KERAS_BACKEND=tensorflow; model.keras is the same "
                "file on every backend)" if _keras_backend() != "tensorflow" else "")
        raise ExportError(f"the {fmt} export was written on {_keras_backend()} but does not run ({first}); it was "
                          f"not kept{hint}") from exc


def _write(fmt: str, model, path: Path, quantize: bool, out: Path) -> None:
    """Converter failures come as any exception type, often with pages of graph dump: keep one line.
    A failed write is named at ``out`` with about the export's size (its weights; a quarter, quantized)."""
    try:
        with _quiet_output():  # exporters print whole graphs when they fail (torch's from C++)
            WRITERS[fmt](model, path, quantize)
    except Exception as exc:
        disk = _os_error(exc)
        if disk is not None:
            needed = runs.variables_bytes(model.weights) // (4 if quantize else 1)
            raise WriteFailed.of(out, disk, needed) from exc
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        advice = ("try another «format»" if _keras_backend() == "tensorflow" else
                  "export from a TensorFlow process instead (KERAS_BACKEND=tensorflow; model.keras is the same file "
                  "on every backend)")
        raise ExportError(f"the {fmt} conversion on {_keras_backend()} failed ({reason}): {advice}") from exc


@contextlib.contextmanager
def _quiet_output():
    """Standard output and error, at the file-descriptor level, into a discarded file for the block."""
    sys.stdout.flush(), sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 1), os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                sys.stdout.flush(), sys.stderr.flush()
                os.dup2(saved[0], 1), os.dup2(saved[1], 2)
    finally:
        os.close(saved[0]), os.close(saved[1])


def _os_error(exc: Exception) -> OSError | None:
    """The failed write behind ``exc``: Python's own OSError, or TensorFlow's error (a
    ResourceExhaustedError, not an OSError) whose text says the disk is full."""
    if isinstance(exc, OSError):
        return exc
    if "No space left on device" in str(exc):
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return None


def _make_folder(folder: Path) -> Path | None:
    """Create ``folder`` and its missing parents; the topmost one created, or None if it existed."""
    missing = [f for f in (folder, *folder.parents) if not f.exists()]
    if not missing:
        return None
    with runs.writing(folder):
        folder.mkdir(parents=True)
    return missing[-1]


def _remove_empty(folder: Path, top: Path | None) -> None:
    """Remove the folders ``_make_folder`` created (``folder`` up to ``top``) that are still empty."""
    if top is None:
        return
    for created in (folder, *folder.parents):
        try:
            created.rmdir()
        except OSError:
            return
        if created == top:
            return


def _check_request(fmt: str, out: Path, quantize: bool) -> None:
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if quantize and fmt != "tflite":
        raise ExportError(f"«quantize» applies to tflite only (dynamic-range quantization); drop it for {fmt}")
    if fmt == "savedmodel" and (out.is_file() or (out.is_dir() and any(out.iterdir()))):
        raise ExportError(
            f"{out} already exists: a SavedModel needs a new or empty folder; remove it or choose another «out»"
        )
    if fmt != "savedmodel" and out.is_dir():
        raise ExportError(f"{out} is a folder: a {fmt} export is one file; pass a file path such as model.{fmt}")
    if fmt in TENSORFLOW_ONLY and _keras_backend() != "tensorflow":
        raise ExportError(f"a {fmt} export needs TensorFlow as the Keras backend, and this process runs "
                          f"{_keras_backend()}: rerun with KERAS_BACKEND=tensorflow, or export to onnx")
    if fmt == "onnx":
        _require_onnx()


def _keras_backend() -> str:
    from study import backend  # deferred: Keras

    return backend.name()


def _require_onnx() -> None:
    # Keras exports ONNX through tf2onnx on TensorFlow, jax2onnx on JAX and torch.onnx on PyTorch;
    # onnxruntime checks every export
    needed = {"torch": ("onnxruntime",), "jax": ("jax2onnx", "onnxruntime")}.get(_keras_backend(),
                                                                              ("tf2onnx", "onnxruntime"))
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise ExportError(
            f"ONNX export on {_keras_backend()} needs {' and '.join(missing)}: pip install {' '.join(missing)} "
            "(on TensorFlow: pip install -e '.[onnx]')"
        )


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


# ------------------------------------------------------------------------------------ writers
def _write_savedmodel(model, path: Path, quantize: bool) -> None:
    model.export(str(path), format="tf_saved_model", verbose=False)


def _write_tflite(model, path: Path, quantize: bool) -> None:
    tflite.write(model, path, quantize)


def _write_onnx(model, path: Path, quantize: bool) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # keras's tf2onnx shim probes np.object
        model.export(str(path), format="onnx", verbose=False)


WRITERS: dict[str, Callable[[object, Path, bool], None]] = {
    "savedmodel": _write_savedmodel, "tflite": _write_tflite, "onnx": _write_onnx,
}


# ------------------------------------------------------------------------------------ runners
def _run_savedmodel(path: Path, x: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))  # kept in a name: the function dies with its owner's variables
    return np.asarray(loaded.serve(tf.constant(x)))


def _run_tflite(path: Path, x: np.ndarray) -> np.ndarray:
    return tflite.run(path, x)


def _run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {session.get_inputs()[0].name: x})[0])


RUNNERS: dict[str, Callable[[Path, np.ndarray], np.ndarray]] = {
    "savedmodel": _run_savedmodel, "tflite": _run_tflite, "onnx": _run_onnx,
}


# ---------------------------------------------------------------------------------- by its name
def export_named(model: str, storage: str, fmt: str, out: str | Path, quantize: bool = False,
                 data: str | None = None, seed: int = 0, events: Events = SILENT) -> tuple[Path, ExportCheck]:
    """MODEL as the command line names it, checked on test faces of ``data`` or on generated faces."""
    _check_request(fmt, Path(out).expanduser(), quantize)  # before the slow model load
    _, keras_model = models.load(model, storage)
    faces = labelled_faces(data, CHECK_FACES, seed).x if data else generated_faces(CHECK_FACES, seed)
    return export_model(keras_model, fmt, out, faces, quantize, events)
