"""The limit: FLOPs per image of every backbone at 48x48, this machine's dense-matmul FLOP/s, and the
share of it our training step achieves.

FLOPs are counted by TensorFlow's profiler on the model's forward pass frozen into a graph (a
multiply-add counts 2); a training step costs about 3 forward passes (forward, gradient with
respect to activations, gradient with respect to weights). The machine's figure is a 2048x2048
float32 ``tf.matmul``, the kernel deep learning libraries reach closest to peak on a CPU.
"""
from __future__ import annotations

import time

import keras
import tensorflow as tf

from benchmarks.common import Row, log, main
from benchmarks.precision import images_per_second
from study.config import TrainConfig
from study.model import BACKBONES, build_model

TRAIN_FACTOR = 3  # a training step ~ 3 forward passes
QUICK = "mini_xception"


def forward_flops(backbone: str) -> int:
    """FLOPs of one 48x48 image through the whole model (backbone and the paper's head)."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2_as_graph

    try:
        model = build_model(TrainConfig(backbone=backbone))
        spec = tf.TensorSpec([1, 48, 48, 1], tf.float32)
        concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
        frozen, _ = convert_variables_to_constants_v2_as_graph(concrete)
        options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
        options["output"] = "none"
        return tf.compat.v1.profiler.profile(graph=frozen.graph, run_meta=tf.compat.v1.RunMetadata(), cmd="op",
                                             options=options).total_float_ops
    finally:
        keras.backend.clear_session()


def matmul_flops_per_second(size: int = 2048, repeats: int = 10) -> float:
    """The best of a few timed runs of ``repeats`` float32 matmuls."""
    a, b = tf.random.normal([size, size]), tf.random.normal([size, size])
    matmul = tf.function(tf.matmul)
    matmul(a, b).numpy()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            result = matmul(a, b)
        result.numpy()
        best = min(best, time.perf_counter() - start)
    return repeats * 2 * size**3 / best


def run(quick: bool) -> list[Row]:
    log("flops: dense matmul")
    peak = matmul_flops_per_second(1024 if quick else 2048)
    rows = []
    for backbone in (QUICK,) if quick else BACKBONES:
        log(f"flops: {backbone}")
        flops = forward_flops(backbone)
        label = (f"limit: {backbone}, {flops / 1e6:,.0f} MFLOP/img forward, ~{TRAIN_FACTOR * flops / 1e6:,.0f} "
                 "train; machine matmul vs our train step")
        images, _ = images_per_second(backbone, "float32", False, 3 if quick else 5)
        achieved = images * TRAIN_FACTOR * flops
        rows.append(Row(label, f"{peak / 1e9:,.0f} GFLOP/s", f"{achieved / 1e9:,.1f} GFLOP/s", None,
                        ratio_text=f"{100 * achieved / peak:.0f}% of peak"))
    return rows


if __name__ == "__main__":
    main(run)
