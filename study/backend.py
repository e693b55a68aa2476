"""What differs between Keras's backends (TensorFlow, JAX, PyTorch), in one module.

Everything else in the toolkit is written in Keras 3's common API (``keras.ops``, ``keras.random``,
``PyDataset``) and never asks which backend runs it. Keras has no common API for three things, so
they live here:

* **gradients** outside ``fit``: of a function of one tensor (Grad-CAM's class score against a feature
  map, ``input_gradient``) and of objectives of a model's output against some of its variables (the
  learning diagnostics, ``variable_gradients``). TensorFlow records a tape, PyTorch its autograd
  graph, JAX differentiates a pure function (the model's ``stateless_call``);
* **the device** a run used, and the backend's name and version, which every run's manifest records;
* **TensorFlow's gradient registry**, which grows with every traced training step and is pruned
  after each run (``releasing_traced_graphs``; nothing to do on the other backends);
* **JAX's persistent compilation cache**, on as soon as this module is imported under JAX
  (``use_compilation_cache``).

TensorFlow is imported here only when it is the backend: under JAX or PyTorch nothing on the training
path imports it (``tests/test_backends.py`` checks ``sys.modules``).
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import platform
from pathlib import Path
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

import keras
import numpy as np

from study.data import cache_dir

BACKENDS = ("tensorflow", "jax", "torch")


def name() -> str:
    """The Keras backend this process runs (``KERAS_BACKEND``, else Keras's configuration)."""
    return keras.config.backend()


def version() -> str:
    """The version of the library under Keras (TensorFlow, JAX or PyTorch)."""
    return str(getattr(importlib.import_module(name()), "__version__", "")) if name() in BACKENDS else ""


def describe() -> dict[str, str]:
    """What a manifest and a study record: {"name": ..., "version": ...}."""
    return {"name": name(), "version": version()}


def device() -> str:
    """The accelerator the backend computes on (its GPUs by model name), else the CPU."""
    found: list[str] = []
    if name() == "tensorflow":
        import tensorflow as tf

        found = [tf.config.experimental.get_device_details(g).get("device_name", g.name)
                 for g in tf.config.list_physical_devices("GPU")]
    elif name() == "jax":
        import jax

        found = [getattr(d, "device_kind", "") or str(d) for d in jax.devices() if d.platform != "cpu"]
    elif name() == "torch":
        import torch

        found = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return ", ".join(found) if found else f"CPU ({platform.processor() or platform.machine()})"


def cpu_name() -> str:
    """This machine's CPU model and its core count."""
    return f"{cpu_model()}, {os.cpu_count()} cores"


def cpu_model() -> str:
    """This machine's CPU model (``/proc/cpuinfo`` where there is one)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:  # not Linux: the platform's own name below
        lines = []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else (platform.processor() or platform.machine())


def jit_compile(requested: bool) -> bool:
    """What ``compile(jit_compile=...)`` gets for the «jit» setting: as asked on TensorFlow and PyTorch;
    always on under JAX, which without ``jax.jit`` runs the training step op by op, tens of times slower
    (the setting exists for TensorFlow's XLA, docs/performance.md)."""
    return True if name() == "jax" else bool(requested)


COMPILATION_CACHE = "jax-compilation"  # under $FER_STUDY_CACHE
COMPILATION_CACHE_BYTES = 2 * 2**30  # JAX drops the least recently used programs beyond it


def use_compilation_cache() -> str | None:
    """Under JAX, turn on its persistent compilation cache: ``$JAX_COMPILATION_CACHE_DIR`` where that is set,
    else ``$FER_STUDY_CACHE/jax-compilation``. A process that compiles a program that another compiled
    before reads it back instead: the next trial of a search at the same shapes (a new model is a new
    ``jax.jit`` function, compiled again without it), a final run of a searched configuration, the same
    command run again. JAX keeps only programs that took a second or more to compile (its default), and
    drops the least recently used beyond ``COMPILATION_CACHE_BYTES`` where ``filelock`` is installed (it
    needs it for that). Returns the folder; None (nothing done) on another backend."""
    if name() != "jax":
        return None
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    folder = os.environ.get("JAX_COMPILATION_CACHE_DIR") or str(cache_dir() / COMPILATION_CACHE)
    jax.config.update("jax_compilation_cache_dir", folder)
    if importlib.util.find_spec("filelock") is not None:  # JAX needs it to bound the folder (the [jax] extra has it);
        jax.config.update("jax_compilation_cache_max_size", COMPILATION_CACHE_BYTES)  # without it, no bound
    compilation_cache.reset_cache()  # `import keras` compiled already, which settled the cache as unused: again
    return folder


use_compilation_cache()  # before the first program compiles: the training path imports this module first


def on_gpu() -> bool:
    return not device().startswith("CPU (")


@contextmanager
def releasing_traced_graphs() -> Iterator[None]:
    """Unregister the custom gradients TensorFlow traced inside the block: its global gradient registry
    (``tf.custom_gradient``, used by Keras's optimizer for its gradient all-reduce even without a
    distribution strategy) is never pruned, and each entry keeps its whole traced graph alive, about
    25 MiB per model (tensorflow#97697). Wrap any ``model.fit`` that runs many times in one process.
    Nothing to release under JAX or PyTorch."""
    if name() != "tensorflow":
        yield
        return
    from tensorflow.python.framework import ops

    registry = ops._gradient_registry._registry
    before = set(registry)
    try:
        yield
    finally:
        for key in set(registry) - before:
            if key.startswith("CustomGradient-"):
                del registry[key]


# ----------------------------------------------------------------------------------- gradients
def input_gradient(fn: Callable, x) -> tuple[np.ndarray, np.ndarray]:
    """(fn(x), d sum(fn(x)) / dx) as NumPy arrays, for ``fn`` built from Keras layers and ``keras.ops``
    in inference mode (no state changes) and a float tensor ``x``."""
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
            total = tf.reduce_sum(y)
        return np.asarray(y), np.asarray(tape.gradient(total, x))
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        y, pullback = jax.vjp(fn, jnp.asarray(x))
        return np.asarray(y), np.asarray(pullback(jnp.ones_like(y))[0])
    if backend == "torch":
        import torch

        x = keras.ops.convert_to_tensor(x).detach().requires_grad_(True)
        y = fn(x)
        (grad,) = torch.autograd.grad(y.sum(), x)
        return keras.ops.convert_to_numpy(y.detach()), keras.ops.convert_to_numpy(grad)
    raise NotImplementedError(f"gradients outside fit need TensorFlow, JAX or PyTorch as the Keras backend, not {backend!r}")


def variable_gradients(model: keras.Model, x, objectives: dict[str, Callable], variables: Sequence,
                       training: bool) -> dict[str, list[np.ndarray | None]]:
    """For each objective ``fn(outputs, losses) -> scalar`` of ``model(x, training=training)`` (``losses``:
    the model's added losses, such as its L2 penalties), its gradient against each of ``variables``
    (the model's trainable variables), as NumPy arrays (None where the objective does not depend on it).

    The model's non-trainable state (BatchNorm's moving statistics, dropout's seed) may move under
    TensorFlow and PyTorch, as a training-mode call moves it; the caller restores it if it must
    (``diagnostics.statistics_kept``). JAX's stateless call leaves it as it was.
    """
    backend = name()
    names = list(objectives)
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape(persistent=True) as tape:
            outputs = model(x, training=training)
            values = {k: objectives[k](outputs, list(model.losses)) for k in names}
        grads = {k: [_numpy_or_none(g) for g in tape.gradient(values[k], list(variables))] for k in names}
        del tape
        return grads
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        trainable = list(model.trainable_variables)
        positions = [next(i for i, v in enumerate(trainable) if v is w) for w in variables]
        frozen_values = [v.value for v in model.non_trainable_variables]

        def stacked(trainable_values):
            outputs, _, losses = model.stateless_call(trainable_values, frozen_values, x, training=training,
                                                      return_losses=True)
            return jnp.stack([jnp.asarray(objectives[k](outputs, losses), jnp.float32) for k in names])

        values, pullback = jax.vjp(stacked, [v.value for v in trainable])
        grads = {}
        for i, k in enumerate(names):
            (full,) = pullback(jnp.zeros_like(values).at[i].set(1.0))
            grads[k] = [np.asarray(full[p]) for p in positions]
        return grads
    if backend == "torch":
        import torch

        outputs = model(x, training=training)
        values = {k: objectives[k](outputs, list(model.losses)) for k in names}
        parameters = [v.value for v in variables]
        grads = {}
        for k in names:
            found = torch.autograd.grad(values[k], parameters, retain_graph=True, allow_unused=True)
            grads[k] = [None if g is None else g.detach().cpu().numpy() for g in found]
        return grads
    raise NotImplementedError(f"gradients outside fit need TensorFlow, JAX or PyTorch as the Keras backend, not {backend!r}")


def _numpy_or_none(value) -> np.ndarray | None:
    return None if value is None else np.asarray(value)
