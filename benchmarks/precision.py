"""Precision and compilation on this CPU: training-step images/s under float32, mixed_float16 and
mixed_bfloat16, with XLA (``jit``) on and off, against float32 without XLA.

Each variant builds the model under its dtype policy (``TrainConfig.precision``), compiles it as
``study.training`` does (``jit_compile=config.jit``) and trains on one resident batch, so only the
step itself is timed; "first step" is the trace (and XLA compile) cost a trial pays once.
mixed_float16 on DenseNet169 is not run in the full set: this CPU has no float16 convolution
kernels, and one step took over a minute when probed (see docs/performance.md).
"""
from __future__ import annotations

import time

import keras
import tensorflow as tf

from benchmarks.common import Row, log, main, rate, tiny_images
from benchmarks.input_pipeline import step_seconds
from study.config import TrainConfig
from study.model import build_model
from study.backend import releasing_traced_graphs

BATCH = 64
VARIANTS = (("float32", True), ("mixed_bfloat16", False), ("mixed_bfloat16", True), ("mixed_float16", False),
            ("mixed_float16", True))


def images_per_second(backbone: str, precision: str, jit: bool, steps: int) -> tuple[float, float]:
    """(images/s of a steady training step, seconds of the first step)."""
    keras.mixed_precision.set_dtype_policy(precision)
    try:
        with releasing_traced_graphs():
            return _measure(backbone, precision, jit, steps)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
        keras.backend.clear_session()


def _measure(backbone: str, precision: str, jit: bool, steps: int) -> tuple[float, float]:
    model = build_model(TrainConfig(backbone=backbone, precision=precision, jit=jit))
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="categorical_crossentropy", jit_compile=jit)
    x, y = tiny_images(BATCH)
    batch = tf.data.Dataset.from_tensors((tf.cast(x, tf.float32), tf.one_hot(y, 7))).repeat()
    start = time.perf_counter()
    model.fit(batch, steps_per_epoch=1, epochs=1, verbose=0)
    first = time.perf_counter() - start
    return BATCH / step_seconds(model, batch, steps), first


def run(quick: bool) -> list[Row]:
    plan = {"mini_xception": (("mixed_bfloat16", False),)} if quick else {
        "mini_xception": VARIANTS,
        "densenet169": (("float32", True), ("mixed_bfloat16", False)),
    }
    rows = []
    for backbone, variants in plan.items():
        steps = 3 if quick or backbone != "mini_xception" else 8
        log(f"precision: {backbone} float32")
        base, base_first = images_per_second(backbone, "float32", False, steps)
        for precision, jit in variants:
            log(f"precision: {backbone} {precision} jit={jit}")
            slow = precision == "mixed_float16" and not jit  # seconds per step on this CPU
            ours, first = images_per_second(backbone, precision, jit, 2 if slow else steps)
            rows.append(Row(f"precision: {backbone} train step, {precision}{' + XLA' if jit else ''} vs float32 "
                            f"(first step {first:.0f} s vs {base_first:.0f} s)", rate(base, "img/s"),
                            rate(ours, "img/s"), ours / base))
    return rows


if __name__ == "__main__":
    main(run)
