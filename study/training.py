"""One function trains every run: ``train(config, data, run_dir) -> RunResult``.

The CLI's ``train``, every tuner trial and every final run call it, so what a report shows is what a
search optimized. The schedule follows the paper (section IV.D):

* scratch: one phase, SGD at ``learning_rate`` for ``epochs``;
* transfer: a frozen phase (backbone frozen, SGD at ``frozen_learning_rate``, up to
  ``frozen_epochs``, EarlyStopping on val_loss with ``frozen_patience``, best weights restored),
  then the backbone (all of it, or its top K blocks) is unfrozen and fine-tuned at
  ``learning_rate`` for ``epochs``.

Epochs are counted globally across phases, so callbacks (pruners) and events (progress) see one sequence.

Phase 1 of transfer trains the head on cached backbone features (``study.features``) where that
is exact (no augmentation in phase 1) or where ``frozen_augmentation="views"`` asks for K augmented
views: the head-on-features model shares the full model's head layers, so early stopping's best-weight
restore and every artifact (``model.keras`` with the trained head in place) are the same as through
the backbone. Callbacks passed in still see the full model.

A run hands its backbone back when it ends (``study.model.release_backbone``): the next run of the
same backbone and weights, the next trial of a search, gets it restored instead of building it and
reading its weights again.

Each run removes, when it ends, what its traced training steps left in TensorFlow's global gradient
registry (``study.backend.releasing_traced_graphs``): that was the memory that grew with every trial of
a search despite ``clear_session``. The loop itself is Keras's ``fit`` on ``pipeline.Batches``, the same
on every Keras backend.
"""
from __future__ import annotations

import gc
import math
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import keras
import numpy as np
import pandas as pd

from study import backend
from study import config as config_mod
from study import runs
from study.config import TrainConfig
from study.data import CLASSES, Dataset, Split
from study.errors import TrialFailed, WriteFailed
from study.evaluation import compute_metrics
from study.features import (
    FrozenFeatures,
    cached_views,
    feature_dataset,
    frozen_features,
    head_model,
)
from study.events import SILENT, Events
from study.learning import ANSWER_SHARE, AnswerShare, StallGuard, StallState, baseline
from study.model import build_model, freeze_backbone, predict, predict_batch, release_backbone, unfreeze_backbone
from study.optimization import current_learning_rate, make_optimizer, schedule_callbacks
from study.pipeline import class_weights, make_dataset, training_steps
from study.pretraining import leave_out_pretraining_faces
from study.tta import predict_views

# loss / val_loss are Keras's objective (cross-entropy, label-smoothed if asked, + the head's L2
# penalty; early stopping watches val_loss, as in the paper); cross_entropy / val_cross_entropy are
# the plain data term alone, comparable with the evaluated loss (scikit-learn's log loss) and with the
# paper's Table I. val_top_answer_share is the share of validation faces given the most common answer
# (1.0: the model answers one class); learning_rate is the rate at the epoch's end.
HISTORY_COLUMNS = ["epoch", "phase", "loss", "cross_entropy", "accuracy", "val_loss", "val_cross_entropy",
                   "val_accuracy", f"val_{ANSWER_SHARE}", "learning_rate", "seconds"]
HEAD_STEPS_PER_EXECUTION = 32
_LOGGED = ("loss", "cross_entropy", "accuracy", "val_loss", "val_cross_entropy", "val_accuracy", f"val_{ANSWER_SHARE}")


class HistoryRows(keras.callbacks.Callback):
    """A callback that also hears each epoch's row of history.csv as train() records it: the phase,
    both losses, accuracy, the validation metrics, the learning rate at the epoch's end and its
    seconds, which Keras's epoch logs lack (they know no phase). ``history_row`` is called before any
    caller's ``on_epoch_end`` of that epoch (a pruner's included); a plain ``fit`` never calls it."""

    def history_row(self, row: dict[str, Any]) -> None:
        pass


@dataclass(frozen=True)
class Phase:
    name: str  # "scratch" | "frozen" | "finetune"
    learning_rate: float
    epochs: int
    early_stopping: bool = False


@dataclass
class RunResult:
    run_dir: Path
    config: TrainConfig
    history: pd.DataFrame
    metrics: dict[str, Any]
    epochs: int
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)


def schedule(config: TrainConfig) -> list[Phase]:
    """The paper's phases for the config's regime; a phase with zero epochs is dropped."""
    if config.regime == "scratch":
        phases = [Phase("scratch", config.learning_rate, config.epochs)]
    else:
        phases = [
            Phase("frozen", config.frozen_learning_rate, config.frozen_epochs, early_stopping=True),
            Phase("finetune", config.learning_rate, config.epochs),
        ]
    return [p for p in phases if p.epochs > 0]


def train(
    config: TrainConfig,
    data: Dataset,
    run_dir: str | Path,
    *,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    evaluate_test: bool = False,
    events: Events = SILENT,
    extra_manifest: dict[str, Any] | None = None,
    model_dropped: Callable[[dict[str, Any]], str | None] | None = None,
    artifacts: dict[str, Callable[[Path], None]] | None = None,
) -> RunResult:
    """Train, evaluate and write every artifact of one run; the run directory appears atomically.

    ``model_dropped(metrics)``, asked once the run is evaluated, may return why its model.keras is not
    worth writing (a search trial outside the best few): every other file is written, the manifest
    says why the model is not, and the model's saving time and disk are spared. ``artifacts`` maps
    further file names to writers, called with the file's path in the run directory before it appears.

    A run whose «weights» is a pretraining run (``study.pretraining``) trains without the faces that
    backbone was pretrained on; its manifest says how many were left out. ``events``
    (``study.events``) hears each phase, epoch and step, and a stall's warning; by default no one."""
    run_dir = Path(run_dir)
    data, left_out = leave_out_pretraining_faces(data, config)
    if left_out is not None:
        extra_manifest = {**(extra_manifest or {}), "pretraining_faces": left_out.describe()}
        events.say(left_out.sentence())
    stage = runs.start(run_dir)
    job = _Job(config, data, stage, tuple(callbacks), evaluate_test, events, extra_manifest or {}, model_dropped)
    try:
        with backend.releasing_traced_graphs():
            result = _train_into(job)
        for name, write in (artifacts or {}).items():
            write(stage / name)
        runs.finish(stage, run_dir)
    except WriteFailed as exc:  # a full disk: the trained model lives only in this process, and it is gone
        runs.abandon(stage)
        raise exc.consequence("the trained model was not kept: free some space and run it again") from exc
    except BaseException:
        runs.abandon(stage)
        raise
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
        keras.backend.clear_session()
        gc.collect()
    result.run_dir = run_dir
    return result


@dataclass
class _Job:
    """One ``train()`` call, handed down whole: what to train on what, who hears it, what it writes where."""

    config: TrainConfig
    data: Dataset
    stage: Path  # the staging folder, renamed to the run directory once every file is in it
    callbacks: tuple[keras.callbacks.Callback, ...]
    evaluate_test: bool
    events: Events
    extra_manifest: dict[str, Any]
    model_dropped: Callable[[dict[str, Any]], str | None] | None
    started: float = field(default_factory=time.perf_counter)
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class _Fitted:
    """What the schedule leaves for evaluation besides the trained model."""

    history: pd.DataFrame
    stall: StallState
    head: keras.Model | None = None  # phase 1's head-on-features model, when the cache was used
    features: FrozenFeatures | None = None
    backbone_trained: bool = False  # once True, cached features no longer describe the model


def _train_into(job: _Job) -> RunResult:
    config = job.config
    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_dtype_policy(config.precision)
    model = build_model(config, num_classes=len(CLASSES))
    job.timings["build"] = time.perf_counter() - job.started
    try:
        return _run(job, model)
    finally:
        release_backbone(model)  # the next run of this backbone and weights reuses it (restored)


def _run(job: _Job, model: keras.Model) -> RunResult:
    config, data = job.config, job.data
    fitted = _fit_schedule(job, model)
    t = time.perf_counter()
    splits = {"val": data.val, **({"test": data.test} if job.evaluate_test else {})}
    predictions = {name: _predict(model, fitted, name, split, config.batch_size, config.tta)
                   for name, split in splits.items()}
    metrics = {name: {**compute_metrics(split.y, predictions[name]), "tta": config.tta} for name, split in splits.items()}
    job.timings["evaluate"] = time.perf_counter() - t
    metrics["stall"] = fitted.stall.to_dict()
    dropped = job.model_dropped(metrics) if job.model_dropped else None
    extra = {**job.extra_manifest, **({"frozen_features": fitted.features.describe()} if fitted.features else {}),
             "model": {"kept": True} if dropped is None else {"kept": False, "reason": dropped}}
    _write_artifacts(job, None if dropped else model, fitted.history, metrics, predictions, extra)
    seconds = time.perf_counter() - job.started
    return RunResult(job.stage, config, fitted.history, metrics, int(len(fitted.history)), seconds, job.timings)


def _fit_schedule(job: _Job, model: keras.Model) -> _Fitted:
    config, data, events = job.config, job.data, job.events
    weights = class_weights(data.train.y, config.class_weight)
    stall = StallState(baseline(data.val.y).majority_rate, config.stall_epochs, config.stall_action)
    guard = StallGuard(stall, say=events.warn)
    fitted = _Fitted(pd.DataFrame(columns=HISTORY_COLUMNS), stall)
    frames: list[pd.DataFrame] = []
    epoch = 0
    for phase in schedule(config):
        t = time.perf_counter()
        trained, train_ds, val_ds, outside = _phase_inputs(job, model, phase, fitted)
        _prepare(model, trained, config, phase, training_steps(len(data.train.y), config.batch_size), train_ds)
        recorder = _EpochRecorder(phase.name, [c for c in job.callbacks if isinstance(c, HistoryRows)])
        told = [] if events is SILENT else [_PhaseEvents(events, phase.name, epoch + 1, epoch + phase.epochs)]
        phase_callbacks = [recorder, _NaNGuard(phase.name), *_early_stopping(config, phase),
                           *schedule_callbacks(config), *outside]
        try:
            trained.fit(
                train_ds,
                validation_data=val_ds,
                initial_epoch=epoch,
                epochs=epoch + phase.epochs,
                class_weight=weights,
                shuffle=False,  # the batches shuffle (seeded, every epoch)
                callbacks=phase_callbacks + told + [guard],  # the guard speaks after the epoch line
                verbose=0,
            )
        finally:
            events.phase_ended()
        fitted.backbone_trained = fitted.backbone_trained or trained is model
        frames.append(recorder.frame())
        epoch += len(recorder.rows)
        job.timings[phase.name] = time.perf_counter() - t
        if stall.stopped or (trained.stop_training and not phase.early_stopping):
            break  # the stall guard or a user callback asked to stop: no further phases
    fitted.history = pd.concat(frames, ignore_index=True)[HISTORY_COLUMNS]
    return fitted


class _PhaseEvents(keras.callbacks.Callback):
    """Tells ``events`` one phase's epochs and steps, numbered from 1 (epochs across phases)."""

    def __init__(self, events: Events, phase: str, first_epoch: int, last_epoch: int) -> None:
        super().__init__()
        self.events, self.phase, self.first_epoch, self.last_epoch = events, phase, first_epoch, last_epoch

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.events.phase_started(self.phase, self.first_epoch, self.last_epoch, self.params.get("steps"))

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.events.epoch_started(epoch + 1)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        # With steps_per_execution (the cached head's 32) Keras names the chunk's last step, even past the epoch's.
        steps = self.params.get("steps")
        self.events.batch_ended(min(batch + 1, steps) if steps else batch + 1, logs or {})

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.events.epoch_ended(epoch + 1, logs or {})


def _phase_inputs(job: _Job, model: keras.Model, phase: Phase, fitted: _Fitted):
    """(model to fit, train batches, val batches, the caller's callbacks) for one phase.

    The frozen phase fits the head alone on cached features when ``cached_views`` allows it; the
    caller's callbacks then still see (and may stop) the full model.
    """
    config, data, callbacks = job.config, job.data, job.callbacks
    views = cached_views(config) if phase.name == "frozen" else 0
    if not views:
        augmented = config if phase.name != "frozen" or config.frozen_augmentation != "none" else None
        train_ds = make_dataset(data.train, config.batch_size, training=True, config=augmented, seed=config.seed,
                                sampling=config.sampling)
        return model, train_ds, make_dataset(data.val, config.batch_size, training=False), list(callbacks)
    t = time.perf_counter()
    fitted.features = frozen_features(model, config, data, views)
    job.timings["features"] = time.perf_counter() - t
    fitted.head = head_model(model, fitted.features)
    train_ds = feature_dataset(fitted.features, data.train, config.batch_size, training=True, seed=config.seed,
                               sampling=config.sampling)
    val_ds = feature_dataset(fitted.features, data.val, config.batch_size, training=False)
    return fitted.head, train_ds, val_ds, [_OnFullModel(c, model) for c in callbacks]


def training_loss(config: TrainConfig) -> keras.losses.Loss:
    """Cross-entropy (the paper's), or the focal loss when ``focal_gamma`` > 0 (alpha 1: no constant factor, so
    gamma 0 would be cross-entropy exactly); label smoothing either way. Every reported loss stays plain
    cross-entropy (the ``cross_entropy`` metric)."""
    if config.focal_gamma > 0:
        return keras.losses.CategoricalFocalCrossentropy(alpha=1.0, gamma=config.focal_gamma,
                                                         label_smoothing=config.label_smoothing)
    return keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)


def _prepare(model: keras.Model, trained: keras.Model, config: TrainConfig, phase: Phase, steps: int,
             batches) -> None:
    """Set what trains in this phase and compile what is fitted (a change of trainable weights needs a
    recompile)."""
    if phase.name == "frozen":
        freeze_backbone(model)
    elif phase.name == "finetune":
        unfreeze_backbone(model, config.unfreeze_top_blocks, config.finetune_batchnorm)
    trained.compile(
        optimizer=make_optimizer(config, phase.learning_rate, phase.epochs, steps),
        loss=training_loss(config),
        metrics=["accuracy", keras.metrics.CategoricalCrossentropy(name="cross_entropy"), AnswerShare()],
        jit_compile=backend.jit_compile(config.jit),
        # A batch of the head alone on cached features is cheaper than Keras's per-call overhead, so
        # one call runs many batches (the same batches in the same order, the same results).
        steps_per_execution=HEAD_STEPS_PER_EXECUTION if trained is not model else 1,
    )
    build_training_state(trained, batches)


def build_training_state(model: keras.Model, batches) -> None:
    """Create what ``fit`` creates on its first step (the optimizer's slots, the compiled loss's and
    metrics' totals) before it, outside the traced step.

    Without a distribution strategy Keras 3 defers that to the trace of the first train step, and a
    ``tf.function`` that creates variables is traced twice: for DenseNet169's fine-tune step the
    second trace of the whole backbone's forward and backward pass was about half of the time between
    a trial's two phases (``benchmarks.trial_overhead`` measures before and after). Keras's own
    ``_symbolic_build`` (what it runs under a strategy) builds it from the batches' shapes.
    """
    model._symbolic_build(data_batch=batches.spec())


_HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_train_batch_begin",
          "on_train_batch_end", "on_test_begin", "on_test_end", "on_test_batch_begin", "on_test_batch_end")


class _OnFullModel(keras.callbacks.Callback):
    """A caller's callback during a phase that fits the head alone: it sees the full model, and a
    stop it asks for (``stop_training``) stops the fit."""

    def __init__(self, inner: keras.callbacks.Callback, full: keras.Model) -> None:
        super().__init__()
        self.inner, self.full = inner, full
        self.fitted: keras.Model | None = None

    def set_model(self, model: keras.Model) -> None:
        self.fitted = model
        self.full.stop_training = False
        self.inner.set_model(self.full)

    def set_params(self, params: dict) -> None:
        self.inner.set_params(params)


def _forwarding(hook: str):
    def forward(self: _OnFullModel, *args: Any, **kwargs: Any) -> None:
        getattr(self.inner, hook)(*args, **kwargs)
        if self.full.stop_training and self.fitted is not None:
            self.fitted.stop_training = True

    return forward


for _hook in _HOOKS:
    setattr(_OnFullModel, _hook, _forwarding(_hook))


def _early_stopping(config: TrainConfig, phase: Phase) -> list[keras.callbacks.Callback]:
    if not phase.early_stopping:
        return []
    return [keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.frozen_patience, restore_best_weights=True)]


class _EpochRecorder(keras.callbacks.Callback):
    """Collects one row per epoch with the phase and wall time; Keras's History forgets phases."""

    def __init__(self, phase: str, listeners: Sequence[HistoryRows] = ()) -> None:
        super().__init__()
        self.phase = phase
        self.rows: list[dict[str, Any]] = []
        self.listeners = list(listeners)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        row = {k: float(logs[k]) for k in _LOGGED if k in logs}
        self.rows.append({"epoch": epoch + 1, "phase": self.phase, **row,
                          "learning_rate": current_learning_rate(self.model), "seconds": time.perf_counter() - self._t})
        for listener in self.listeners:
            listener.history_row(dict(self.rows[-1]))

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=HISTORY_COLUMNS)


class _NaNGuard(keras.callbacks.Callback):
    """A loss that becomes NaN or infinite fails the run with a message that names the fix."""

    def __init__(self, phase: str) -> None:
        super().__init__()
        self.phase = phase

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise TrialFailed(
                f"the training loss became {float(loss)} in epoch {epoch + 1} ({self.phase} phase); "
                "lower the learning rate or the L2 factor"
            )


def _predict(model: keras.Model, fitted: _Fitted, name: str, split: Split, batch_size: int, tta: str) -> np.ndarray:
    """Validation predictions come from the cached features while the backbone is untouched (the
    same numbers, without another pass through it); anything else goes through the full model, over
    the views of test-time augmentation ``tta`` (``study.tta``) when it is on."""
    if tta != "none":
        return predict_views(lambda x: predict_batch(model, x.astype(np.float32), batch_size), split.x, tta, batch_size)
    if name == "val" and fitted.head is not None and not fitted.backbone_trained:
        ds = feature_dataset(fitted.features, split, batch_size, training=False)
        return predict(fitted.head, ds)
    ds = make_dataset(split, batch_size, training=False)
    return predict(model, ds)


def _write_artifacts(job: _Job, model: keras.Model | None, history: pd.DataFrame, metrics: dict[str, Any],
                     predictions: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
    """Every file of a run (model.keras unless ``model`` is None); the manifest, last, records the time
    spent writing the others and the run's total."""
    stage, config, data, timings = job.stage, job.config, job.data, job.timings
    t = time.perf_counter()
    runs.write_json(stage / "config.json", config_mod.to_dict(config))
    runs.write_csv(stage / "history.csv", history)
    runs.write_json(stage / "metrics.json", {**metrics, "summary": _summary(history, metrics)})
    arrays = {"class_names": np.array(CLASSES)}
    for name, probs in predictions.items():
        arrays[f"{name}_labels"] = getattr(data, name).y
        arrays[f"{name}_probs"] = probs
    runs.write_npz(stage / "predictions.npz", **arrays)
    if model is not None:
        with runs.atomic(stage / runs.MODEL, needed=_saved_bytes(model)) as tmp:
            model.save(tmp)
    timings["write"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - job.started
    runs.write_json(stage / "manifest.json", manifest(config, data, timings, extra))


def _saved_bytes(model: keras.Model) -> int:
    """About what model.keras takes, for a full disk's message: the weights and the optimizer's state."""
    optimizer = getattr(model, "optimizer", None)
    return runs.variables_bytes([*model.weights, *(optimizer.variables if optimizer is not None else [])])


def _summary(history: pd.DataFrame, metrics: dict[str, Any]) -> dict[str, Any]:
    """The paper's Table I columns: last-epoch train metrics, and the evaluated model's val/test."""
    last = history.iloc[-1]
    frozen = history[history["phase"] == "frozen"]
    summary = {
        "epochs": int(len(history)),
        "train_accuracy_last_epoch": float(last["accuracy"]),
        "train_loss_last_epoch": float(last["cross_entropy"]),
        "train_objective_last_epoch": float(last["loss"]),
        "val_accuracy": metrics["val"]["accuracy"],
        "val_loss": metrics["val"]["loss"],
        "val_majority_rate": metrics["val"]["baseline"]["majority_rate"],
        "stalled": bool(metrics["stall"]["stalled"]),
    }
    if len(frozen):
        summary["frozen_epochs_run"] = int(len(frozen))
        summary["frozen_best_epoch"] = int(frozen.loc[frozen["val_loss"].idxmin(), "epoch"])
    if "test" in metrics:
        summary["test_accuracy"] = metrics["test"]["accuracy"]
        summary["test_loss"] = metrics["test"]["loss"]
        summary["test_majority_rate"] = metrics["test"]["baseline"]["majority_rate"]
    summary["learned"] = metrics["test" if "test" in metrics else "val"]["learned"]  # on the evaluated split
    return summary


def manifest(config: TrainConfig, data: Dataset, timings: dict[str, float], extra: dict | None) -> dict[str, Any]:
    import sklearn

    return {
        "backend": backend.describe(),
        "versions": {
            "python": platform.python_version(),
            backend.name(): backend.version(),
            "keras": keras.__version__,
            "numpy": np.__version__,
            "scikit_learn": sklearn.__version__,
        },
        "device": backend.device(),
        "precision": config.precision,
        "seed": config.seed,
        "data": {
            "source": data.source,
            "layout": data.layout,
            "fingerprint": data.fingerprint,
            "synthetic": data.synthetic,
            "subset": config.subset,  # the share of the training split this run trained on
            "sizes": {name: int(len(getattr(data, name).y)) for name in ("train", "val", "test")},
        },
        "timings_seconds": {k: round(v, 3) for k, v in timings.items()},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **(extra or {}),
    }
