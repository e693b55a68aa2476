"""Input pipeline: images/s of ours vs the plain Keras 3 pipeline, and the share of each training step spent waiting for data.

The plain pipeline is Keras's own recipe: ``keras.utils.image_dataset_from_directory`` reading the
class folders every epoch (grayscale, 48x48) with the augmentation as layers in the model. Ours is
``study.pipeline.make_dataset``: a ``keras.utils.PyDataset`` over the decoded uint8 arrays, each batch
augmented by one ``keras.ops`` resampling, the same on every Keras backend. The tf.data pipeline it
replaced (``benchmarks.tf_data_pipeline``, TensorFlow only) is the baseline of the rows that say so:
on TensorFlow's CPU ours must train within 10% of its speed. All run the paper's augmentation strengths
(rotation 10 degrees, zoom 0.1, flip).

The input-wait share of a training step is measured, not estimated: the same model trains the same
number of steps once fed by the pipeline and once fed one resident batch (no input work at all);
the extra wall time of the first is the time the step waited for data or lost CPU to the pipeline.
"""
from __future__ import annotations

import math
import time

import keras
import numpy as np
import tensorflow as tf

from benchmarks import tf_data_pipeline
from benchmarks.common import Clock, Row, faces, log, main, percent, rate, sample
from study.backend import releasing_traced_graphs
from study.config import TrainConfig
from study.data import load_dataset
from study.model import BACKBONES, build_model
from study.pipeline import Augmentation, augment, batch_rng, make_dataset

BATCH = 64
FAST_BACKBONES = ("mini_xception", "mobilenetv3small", "efficientnetb0")  # short steps: noisier, measured twice
AUGMENTED = {"rotation": 10.0, "zoom": 0.1, "flip": True}
WAIT_GOAL = 0.05
DATA_GOAL = 5.0
REPLACED_GOAL = 0.90  # ours against the tf.data pipeline it replaced, training on TensorFlow's CPU


class Endless(keras.utils.PyDataset):
    """A ``PyDataset``'s batches over and over (new epochs as it wraps): a stream for timed steps."""

    def __init__(self, inner: keras.utils.PyDataset) -> None:
        super().__init__()
        self.inner = inner

    @property
    def num_batches(self) -> None:
        return None

    def __getitem__(self, index: int):
        if index and index % len(self.inner) == 0:
            self.inner.on_epoch_end()
        return self.inner[index % len(self.inner)]


def stream(ds):
    """Endless batches of a tf.data dataset or a ``PyDataset``."""
    return ds.repeat() if isinstance(ds, tf.data.Dataset) else Endless(ds)


def resident(ds):
    """One batch of ``ds`` over and over: the step with no input work at all."""
    first = next(iter(ds)) if isinstance(ds, tf.data.Dataset) else ds[0]
    return tf.data.Dataset.from_tensors(tuple(tf.convert_to_tensor(t) for t in first)).repeat()


def plain_dataset(folder, seed: int = 0) -> tf.data.Dataset:
    return keras.utils.image_dataset_from_directory(
        folder, color_mode="grayscale", image_size=(48, 48), batch_size=BATCH, label_mode="categorical",
        shuffle=True, seed=seed, verbose=False,
    )


def keras_augmentation(seed: int = 0) -> list[keras.layers.Layer]:
    """The augmentation as Keras's preprocessing layers (what the plain recipe puts in the model)."""
    return [
        keras.layers.RandomRotation(AUGMENTED["rotation"] / 360.0, fill_mode="reflect", seed=seed),
        keras.layers.RandomFlip("horizontal", seed=seed + 1),
        keras.layers.RandomZoom((-AUGMENTED["zoom"], AUGMENTED["zoom"]), fill_mode="reflect", seed=seed + 2),
    ]


def plain_model(config: TrainConfig) -> keras.Model:
    model = keras.Sequential([keras.Input((48, 48, 1)), *keras_augmentation(), build_model(config)])
    _compile(model)
    return model


def _compile(model: keras.Model) -> None:
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="categorical_crossentropy", metrics=["accuracy"])


def images_per_second(ds, limit: int | None = None) -> float:
    """One pass over ``ds`` (after a few warm-up batches), as images/s: a tf.data dataset iterated, or
    a ``PyDataset``'s batches gathered in order."""
    if isinstance(ds, tf.data.Dataset):
        for _ in ds.take(3):
            pass
        batches = ds.take(limit) if limit else ds
    else:
        for i in range(min(3, len(ds))):
            ds[i]
        batches = (ds[i] for i in range(min(limit or len(ds), len(ds))))
    count = 0
    with Clock() as clock:
        for x, _ in batches:
            count += int(x.shape[0])
    return count / clock.seconds


def resampling_only(batches: int = 200) -> float:
    """images/s of ``augment`` alone (its one resampling op and the multiply-add) on one resident batch."""
    x = np.random.default_rng(0).integers(0, 256, (BATCH, 48, 48, 1)).astype(np.float32)
    augmentation = Augmentation(**AUGMENTED)
    keras.ops.convert_to_numpy(augment(x, batch_rng(0, 0, 0), augmentation))
    with Clock() as clock:
        for i in range(batches):
            keras.ops.convert_to_numpy(augment(x, batch_rng(0, 0, i), augmentation))
    return batches * BATCH / clock.seconds


class _StepClock(keras.callbacks.Callback):
    """Times the steady state: from the end of the first batch (iterator started, pipeline warm)
    to the end of the last."""

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        now = time.perf_counter()
        if batch == 0:
            self.first, self.count = now, 0
        self.last, self.count = now, batch

    def per_step(self) -> float:
        return (self.last - self.first) / max(self.count, 1)


def step_seconds(model: keras.Model, ds, steps: int) -> float:
    """Steady-state seconds per training step over ``steps`` steps."""
    clock = _StepClock()
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False, callbacks=[clock])
    return clock.per_step()


def wait_share(model: keras.Model, ds, steps: int, rounds: int) -> tuple[float, float]:
    """(share of step time lost to input, seconds per step): the pipeline vs one resident batch,
    alternated ``rounds`` times, the least time of each kept."""
    still = resident(ds)
    fed = stream(ds)
    step_seconds(model, still, 2)  # trace
    real, free = math.inf, math.inf
    for _ in range(rounds):
        real = min(real, step_seconds(model, fed, steps))
        free = min(free, step_seconds(model, still, steps))
    return max(0.0, (real - free) / real), free


def steps_for(backbone: str) -> int:
    """Steps per measurement: ~2-3 s of steady training on this CPU, at least 4 steps."""
    return {"mini_xception": 20, "mobilenetv3small": 12, "efficientnetb0": 8}.get(backbone, 4)


def run(quick: bool) -> list[Row]:
    folder, note = (sample(per_class=20), "generated sample") if quick else faces(quick)
    data = load_dataset(folder)
    where = f" ({note})" if note else ""
    plain = plain_dataset(folder / "train")
    ours_plain = make_dataset(data.train, BATCH, training=True, config=TrainConfig(rotation=0, zoom=0, flip=False))
    ours_aug = make_dataset(data.train, BATCH, training=True, config=TrainConfig(**AUGMENTED))
    replaced = tf_data_pipeline.make_dataset(data.train, BATCH, training=True, config=TrainConfig(**AUGMENTED))
    augment = keras.Sequential(keras_augmentation())
    plain_aug = plain.map(lambda x, y: (augment(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    log("input: data only")
    plain_rate, plain_aug_rate = images_per_second(plain), images_per_second(plain_aug.prefetch(2))
    ours_rate, ours_aug_rate = images_per_second(ours_plain), images_per_second(ours_aug)
    rows = [
        Row(f"input: data only, as each feeds its model (ours augmented){where}", rate(plain_rate, "img/s"),
            rate(ours_aug_rate, "img/s"), ours_aug_rate / plain_rate, f">= {DATA_GOAL:.0f}x",
            ours_aug_rate / plain_rate >= DATA_GOAL),
        Row("input: data only, same work (no augmentation)", rate(plain_rate, "img/s"), rate(ours_rate, "img/s"),
            ours_rate / plain_rate, f">= {DATA_GOAL:.0f}x", ours_rate / plain_rate >= DATA_GOAL),
        Row("input: data only, same work (both augmented)", rate(plain_aug_rate, "img/s"),
            rate(ours_aug_rate, "img/s"), ours_aug_rate / plain_aug_rate, f">= {DATA_GOAL:.0f}x",
            ours_aug_rate / plain_aug_rate >= DATA_GOAL),
    ]
    replaced_rate = images_per_second(replaced)
    rows.append(Row("input: data only, both augmented, against the tf.data pipeline it replaced (TensorFlow only; "
                    "ours gathers in one thread, tf.data in parallel)", rate(replaced_rate, "img/s"),
                    rate(ours_aug_rate, "img/s"), ours_aug_rate / replaced_rate))
    bound = resampling_only()
    rows.append(Row("input: the augmentation's resampling alone, on a resident batch (the ceiling of any "
                    "pipeline that augments here)", rate(plain_rate, "img/s"), rate(bound, "img/s"),
                    bound / plain_rate))
    rows += _training_epoch(plain, ours_aug, replaced, quick)
    rows += _waits(plain, ours_aug, quick)
    return rows


def _training_epoch(plain: tf.data.Dataset, ours, replaced: tf.data.Dataset, quick: bool) -> list[Row]:
    """mini_xception trained by each pipeline, as images/s of the training loop (--quick: ours against the
    pipeline it replaced only, a few steps)."""
    log("input: a mini_xception training epoch")
    steps = 3 if quick else 20
    config = TrainConfig(backbone="mini_xception", **AUGMENTED)
    with releasing_traced_graphs():
        return _loop_rows(config, plain, ours, replaced, steps, quick)


def _loop_rows(config: TrainConfig, plain: tf.data.Dataset, ours, replaced: tf.data.Dataset, steps: int,
               quick: bool) -> list[Row]:
    """Ours and the tf.data pipeline it replaced feed the same model in turns (``rounds`` each, the
    fastest of each kept: the load of this machine moves between rounds); then Keras's plain recipe."""
    model = build_model(config)
    _compile(model)
    fed = {"ours": stream(ours), "replaced": replaced.repeat()}
    for ds in fed.values():
        step_seconds(model, ds, 2)  # trace
    seconds = {name: math.inf for name in fed}
    for _ in range(1 if quick else 3):
        for name, ds in fed.items():
            seconds[name] = min(seconds[name], step_seconds(model, ds, steps))
    ours_rate, replaced_rate = BATCH / seconds["ours"], BATCH / seconds["replaced"]
    ratio = ours_rate / replaced_rate
    rows = [Row(f"input: mini_xception training loop, ours against the tf.data pipeline it replaced (TensorFlow, "
                f"this CPU; {'1 round' if quick else 'fastest of 3 rounds'} of {steps} steps each)",
                rate(replaced_rate, "img/s"), rate(ours_rate, "img/s"), ratio, f">= {REPLACED_GOAL:.2f}x",
                None if quick else ratio >= REPLACED_GOAL)]
    if quick:
        return rows
    baseline = plain_model(config)
    step_seconds(baseline, plain.repeat(), 2)
    plain_rate = BATCH / min(step_seconds(baseline, plain.repeat(), steps) for _ in range(2))
    keras.backend.clear_session()
    return rows + [Row("input: mini_xception training loop", rate(plain_rate, "img/s"), rate(ours_rate, "img/s"),
                       ours_rate / plain_rate)]


def _waits(plain: tf.data.Dataset, ours, quick: bool) -> list[Row]:
    """The input-wait share of the training step for every backbone (the plain one for mini_xception,
    which has the shortest step and so the most to lose; measured twice, the others once)."""
    names = ["mini_xception"] + ([] if quick else [n for n in BACKBONES if n != "mini_xception"])
    rows = []
    for name in names:
        log(f"input: wait share, {name}")
        with releasing_traced_graphs():
            rows.append(_wait_row(name, plain, ours, quick))
    return rows


def _wait_row(name: str, plain: tf.data.Dataset, ours, quick: bool) -> Row:
    config = TrainConfig(backbone=name, **AUGMENTED)
    model = build_model(config)
    _compile(model)
    steps, rounds = (3, 1) if quick else (steps_for(name), 2 if name in FAST_BACKBONES else 1)
    share, step = wait_share(model, ours, steps, rounds)
    baseline = "-"
    if name == "mini_xception" and not quick:
        baseline = percent(wait_share(plain_model(config), plain, steps, rounds)[0])
    keras.backend.clear_session()
    return Row(f"input wait share of a {name} step ({step * 1000:.0f} ms, {steps} steps)", baseline,
               percent(share), None, f"< {percent(WAIT_GOAL)}", share < WAIT_GOAL)


if __name__ == "__main__":
    main(run)
