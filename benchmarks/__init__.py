"""Ratio benchmarks of the toolkit against a plain baseline, measured in the same process on the same data.

    python -m benchmarks [--quick]              every benchmark, one table (and the machine)
    python -m benchmarks.<name> [--quick]       one benchmark, its own rows of that table

``--quick`` shrinks data, steps and trials to a smoke test of minutes (tests/test_benchmarks.py, long tests run
by hand, not in CI); its figures are smoke-test figures, not results. ``python -m benchmarks --write README.md``
puts a full run's table in the README; docs/performance.md gives the reasons behind each goal met or missed.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before any TensorFlow import: no C++ log noise

from study import quiet_tf  # noqa: E402

quiet_tf.install()  # the native lines TF_CPP_MIN_LOG_LEVEL cannot silence (oneDNN, CUDA) stay out of the tables

# Run order of ``python -m benchmarks``: cheap and independent first, the searches last.
BENCHMARKS = (
    "input_pipeline",
    "frozen_features",
    "trial_overhead",
    "memory",
    "precision",
    "flops",
    "peer",
    "estimate",
    "search_efficiency",
)
