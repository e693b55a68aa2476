"""What a trained model costs to run, measured: the cost objective of an edge search (``«objective»
accuracy,latency`` or ``accuracy,size``).

``measure`` converts the model to TFLite (``study.tflite``, as ``export`` does), checks that the file computes
what the Keras model computes (``TOLERANCE`` on a few faces, else ``LatencyError``), and times a single face, batch 1:
``WARMUP`` invocations first, then the median of ``REPEATS``, with the TFLite interpreter on ``THREADS``
thread (a phone's app rarely gets more, and one thread is what a busy 2-core machine can give steadily),
and the Keras model called directly (``model(x, training=False)``) for comparison. Size is the TFLite
file's bytes (float32 weights; ``export --quantize`` makes a file about a quarter of it), beside the
model.keras file's. Latency depends on the architecture, not on the weights' values, so every trial of one
configuration measures about the same; what differs between runs is the machine's load, and the
machine (``study.backend.cpu_name``) is recorded with every measurement.

TFLite needs TensorFlow as the Keras backend; under another the search refuses a cost objective at its
start (``study.tuning.request.validate``).
"""
from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from study import tflite
from study.errors import UserError

REPEATS, WARMUP, THREADS = 50, 5, 1
CHECK_FACES = 8  # the TFLite file is checked against the Keras model on these random faces
TOLERANCE = 1e-4  # max |p_tflite - p_keras|, as ``study.inference.export`` allows a float export
FPS = 30.0  # "real time" as the report reads it: a frame every 33 ms


class LatencyError(UserError):
    """The TFLite file the cost was to be measured on does not compute what the Keras model computes."""


@dataclass(frozen=True)
class Cost:
    """A trained model's measured cost on this machine."""

    tflite_ms: float  # median single-face inference time of its TFLite export, ``threads`` threads
    keras_ms: float  # the same for the Keras model, called directly
    tflite_bytes: int
    keras_bytes: int  # its model.keras file
    repeats: int
    threads: int
    machine: str

    def value(self, cost: str) -> float:
        """The objective value of ``cost`` (a key of ``study.store.COSTS``)."""
        return {"latency": self.tflite_ms, "size": float(self.tflite_bytes)}[cost]

    @property
    def fps(self) -> float:
        return 1000.0 / self.tflite_ms if self.tflite_ms > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Cost":
        return cls(**{k: values[k] for k in cls.__dataclass_fields__})


def measure(model_file: str | Path, repeats: int = REPEATS, warmup: int = WARMUP, threads: int = THREADS) -> Cost:
    """The model in ``model_file`` (a run's model.keras) converted to TFLite in a temporary folder, and timed."""
    import keras  # deferred: Keras

    from study import backend  # deferred: Keras
    import study.model  # noqa: F401  deferred (Keras): registers the layers a model.keras file references

    model_file = Path(model_file)
    model = keras.models.load_model(model_file, compile=False)
    shape = tuple(model.inputs[0].shape[1:])
    faces = np.random.default_rng(0).integers(0, 256, (CHECK_FACES, *shape)).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="fer-latency-") as tmp:
        path = Path(tmp) / "model.tflite"
        tflite.write(model, path)
        differs = float(np.max(np.abs(tflite.run(path, faces) - keras.ops.convert_to_numpy(model(faces, training=False)))))
        if differs > TOLERANCE:
            raise LatencyError(f"the TFLite conversion of {model_file} differs from the Keras model by {differs:.2g} "
                               f"(more than {TOLERANCE:g}): its latency would time another model")
        face = faces[:1]
        tflite_ms = median_ms(_tflite_call(tflite.interpreter(path, face.shape, threads), face), repeats, warmup)
        size = path.stat().st_size
    keras_ms = median_ms(lambda: model(face, training=False), repeats, warmup)
    return Cost(round(tflite_ms, 4), round(keras_ms, 4), size, model_file.stat().st_size, repeats, threads,
                backend.cpu_name())


def median_ms(call: Callable[[], Any], repeats: int, warmup: int) -> float:
    """The median wall time of ``call()`` in milliseconds, after ``warmup`` calls that are not timed."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return 1000.0 * statistics.median(times)


def _tflite_call(interpreter, face: np.ndarray) -> Callable[[], None]:
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], face)
    return interpreter.invoke
