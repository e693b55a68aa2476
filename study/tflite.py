"""TFLite, the one way this toolkit writes and runs it: a Keras model converted through a SavedModel, and
the interpreter that runs the file. ``study.inference.export`` writes and checks exports with it;
``study.latency`` times the file it writes. TensorFlow only (the callers refuse another Keras backend first).
"""
from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np


def write(model, path: Path, quantize: bool = False) -> None:
    """``model`` as a TFLite file at ``path``; ``quantize``: dynamic-range quantization (int8 weights)."""
    import tensorflow as tf  # deferred: TensorFlow, only where a TFLite file is wanted

    with tempfile.TemporaryDirectory() as tmp:
        model.export(str(Path(tmp) / "savedmodel"), format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(Path(tmp) / "savedmodel"))
        if quantize:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]  # no dataset given: dynamic range
        path.write_bytes(converter.convert())


def interpreter(path: Path, batch_shape: tuple[int, ...], threads: int | None = None):
    """The file's interpreter with its input resized to ``batch_shape`` and its tensors allocated."""
    import tensorflow as tf  # deferred: TensorFlow

    with warnings.catch_warnings():
        # TF 2.21 still ships tf.lite.Interpreter and warns about its future move to ai-edge-litert.
        warnings.simplefilter("ignore", UserWarning)
        found = tf.lite.Interpreter(model_path=str(path), num_threads=threads)
    source = found.get_input_details()[0]
    found.resize_tensor_input(source["index"], list(batch_shape))
    found.allocate_tensors()
    return found


def run(path: Path, x: np.ndarray, threads: int | None = None) -> np.ndarray:
    """The file's output on ``x`` (one batch)."""
    found = interpreter(path, x.shape, threads)
    found.set_tensor(found.get_input_details()[0]["index"], x)
    found.invoke()
    return np.asarray(found.get_tensor(found.get_output_details()[0]["index"]))
