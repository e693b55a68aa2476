"""The one training path: schedules, artifacts, early stopping, NaN handling, atomic run dirs."""
from __future__ import annotations

import json
import shutil

import keras
import numpy as np
import pandas as pd
import pytest

from study.config import TrainConfig
from study.data import CLASSES, Dataset, LoadReport, Split
from study.errors import ModelError, TrialFailed
from study.model import backbone_of
from study.runs import ARTIFACTS, Run, RunError, staging_dir
from study.training import HISTORY_COLUMNS, schedule, train

FAST = {"backbone": "mini_xception", "batch_size": 16, "rotation": 0.0, "zoom": 0.0, "flip": False,
        "dense1_units": 16, "dense2_units": 16, "dense3_units": 16}


def _split(rng: np.random.Generator, n: int, shuffle_labels: bool = False) -> Split:
    """Images whose mean brightness encodes the class: learnable in an epoch or two."""
    y = np.arange(n) % len(CLASSES)
    x = (y[:, None, None, None] * 30 + rng.integers(0, 40, (n, 48, 48, 1))).astype(np.uint8)
    if shuffle_labels:
        y = rng.permutation(y)
    return Split(x, y.astype(np.int64))


def tiny_dataset(n: int = 56, shuffled_val: bool = False) -> Dataset:
    rng = np.random.default_rng(0)
    return Dataset(
        train=_split(rng, n), val=_split(rng, 28, shuffled_val), test=_split(rng, 28),
        fingerprint="tiny", source="memory", layout="arrays", synthetic=True,
        report=LoadReport(files=0, converted=0, skipped=()),
    )


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> str:
    """A scratch run's model.keras: the transfer regime's pretrained backbone in tests."""
    run = tmp_path_factory.mktemp("pre") / "run"
    train(TrainConfig(regime="scratch", epochs=1, **FAST), tiny_dataset(), run)
    return str(run / "model.keras")


def test_schedules_follow_the_paper():
    assert [(p.name, p.learning_rate, p.epochs, p.early_stopping) for p in schedule(TrainConfig())] == [
        ("scratch", 0.001, 20, False)]
    assert [(p.name, p.learning_rate, p.epochs, p.early_stopping) for p in schedule(TrainConfig(regime="transfer"))] == [
        ("frozen", 0.01, 30, True), ("finetune", 0.001, 20, False)]


def test_scratch_run_writes_every_artifact(tmp_path):
    run_dir = tmp_path / "run"
    result = train(TrainConfig(regime="scratch", epochs=2, **FAST), tiny_dataset(), run_dir)
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(ARTIFACTS)
    run = Run.load(run_dir)
    assert list(run.history.columns) == HISTORY_COLUMNS
    assert run.history["epoch"].tolist() == [1, 2] and set(run.history["phase"]) == {"scratch"}
    assert "test" not in run.metrics and "test_labels" not in run.predictions  # a trial never touches test
    labels, probs = run.split("val")
    assert probs.shape == (28, 7) and np.allclose(probs.sum(axis=1), 1, atol=1e-4)
    assert run.metrics["val"]["accuracy"] == result.metrics["val"]["accuracy"]
    assert run.manifest["data"]["fingerprint"] == "tiny" and run.manifest["seed"] == 0
    assert {"tensorflow", "keras"} <= set(run.manifest["versions"])
    with pytest.raises(RunError, match="no test predictions"):
        run.split("test")


def test_a_run_without_its_model_loads_and_every_use_of_the_model_says_why(tmp_path, tiny_run):
    from study.inference.models import resolve_model_path
    from study.model import resolve_weights
    from study.runs import drop_model

    run_dir = tmp_path / "trial-4"
    train(TrainConfig(regime="scratch", epochs=1, **FAST), tiny_dataset(), run_dir,
          model_dropped=lambda metrics: f"not wanted at val accuracy {metrics['val']['accuracy']:.2f}")
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(set(ARTIFACTS) - {"model.keras"})
    run = Run.load(run_dir)  # predictions, metrics and history are all there
    assert run.manifest["model"]["kept"] is False and run.split("val")[1].shape == (28, 7)
    reason = "it was not wanted at val accuracy"
    with pytest.raises(RunError, match=reason):
        run.model_path
    with pytest.raises(ModelError, match=reason):
        resolve_model_path(str(run_dir), "sqlite:///unused.db")
    with pytest.raises(ModelError, match=reason):
        resolve_weights(str(run_dir), "mini_xception")

    kept = shutil.copytree(tiny_run, tmp_path / "kept")  # a finished run that kept its model
    size = (kept / "model.keras").stat().st_size
    assert drop_model(kept, "pushed out") == size and drop_model(kept, "pushed out") == 0
    assert Run.load(kept).manifest["model"] == {"kept": False, "reason": "pushed out"}
    (tmp_path / "incomplete").mkdir()  # a run that should have a model and lacks one is still incomplete
    for name in ARTIFACTS:
        if name != "model.keras":
            shutil.copy(tiny_run / name, tmp_path / "incomplete" / name)
    with pytest.raises(RunError, match="incomplete: missing model.keras"):
        Run.load(tmp_path / "incomplete")


@pytest.mark.slow  # a training test the slow suite (CI) runs: the default one stays within 10 minutes
def test_evaluate_test_is_opt_in(tmp_path):
    result = train(TrainConfig(regime="scratch", epochs=1, **FAST), tiny_dataset(), tmp_path / "r",
                   evaluate_test=True)
    assert result.metrics["test"]["n"] == 28
    assert "test_accuracy" in json.loads((tmp_path / "r" / "metrics.json").read_text())["summary"]


class _TrainableSpy(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seen: list[tuple[int, int, int]] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.seen.append((epoch, len(backbone_of(self.model).trainable_weights), len(self.model.trainable_weights)))


def test_transfer_freezes_then_unfreezes(tmp_path, pretrained):
    spy = _TrainableSpy()
    config = TrainConfig(regime="transfer", weights=pretrained, frozen_epochs=1, epochs=1, **FAST)
    result = train(config, tiny_dataset(), tmp_path / "t", callbacks=[spy])
    (e1, backbone1, total1), (e2, backbone2, total2) = spy.seen
    assert (e1, e2) == (0, 1)  # epochs count on across the phases
    assert backbone1 == 0 and total1 == 8  # phase 1: only the head's 4 kernels + 4 biases train
    assert backbone2 > 0 and total2 == total1 + backbone2
    assert result.history["phase"].tolist() == ["frozen", "finetune"]


class _WeightsLog(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.by_epoch: dict[int, list[np.ndarray]] = {}
        self.at_finetune: list[np.ndarray] | None = None

    def on_epoch_end(self, epoch, logs=None):
        self.by_epoch.setdefault(epoch + 1, [w.copy() for w in self.model.get_layer("head_output").get_weights()])

    def on_train_begin(self, logs=None):
        if self.by_epoch:  # the fine-tune phase starts from whatever the frozen phase left
            self.at_finetune = [w.copy() for w in self.model.get_layer("head_output").get_weights()]


@pytest.mark.slow  # a training test the slow suite (CI) runs: the default one stays within 10 minutes
def test_early_stopping_restores_the_best_epoch(tmp_path, pretrained):
    # validation labels are shuffled: val_loss gets worse as the head fits train, so it stops early.
    # On such labels the head may well give one answer to every validation face, which the stall guard
    # (a different mechanism, tested in test_learning) would rightly stop the run for: it is off here.
    log = _WeightsLog()
    config = TrainConfig(regime="transfer", weights=pretrained, frozen_epochs=12, frozen_patience=1,
                         frozen_learning_rate=0.1, momentum=0.9, l2=0.0, epochs=1, stall_epochs=0, **FAST)
    result = train(config, tiny_dataset(shuffled_val=True), tmp_path / "es", callbacks=[log])
    frozen = result.history[result.history["phase"] == "frozen"]
    best = int(frozen.loc[frozen["val_loss"].idxmin(), "epoch"])
    assert len(frozen) < 12, "early stopping should have ended the frozen phase"
    assert best < len(frozen), "the best epoch is not the last, so restoring is observable"
    for restored, kept in zip(log.at_finetune, log.by_epoch[best]):
        np.testing.assert_array_equal(restored, kept)
    assert result.history["phase"].tolist()[-1] == "finetune"  # and the run went on to its fine-tune phase
    assert result.metrics["val"]
    assert json.loads((tmp_path / "es" / "metrics.json").read_text())["summary"]["frozen_best_epoch"] == best


def test_nan_loss_fails_the_run_and_leaves_nothing(tmp_path):
    run_dir = tmp_path / "nan"
    config = TrainConfig(regime="scratch", epochs=2, learning_rate=1e6, l2=10.0, **FAST)
    with pytest.raises(TrialFailed, match="loss became .* lower the learning rate"):
        train(config, tiny_dataset(), run_dir)
    assert not run_dir.exists() and not staging_dir(run_dir).exists()


@pytest.mark.slow  # a training test the slow suite (CI) runs: the default one stays within 10 minutes
def test_interrupted_run_leaves_no_run_dir(tmp_path):
    class Boom(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt

    run_dir = tmp_path / "boom"
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(regime="scratch", epochs=2, **FAST), tiny_dataset(), run_dir, callbacks=[Boom()])
    assert not run_dir.exists() and not staging_dir(run_dir).exists()
    with pytest.raises(RunError, match="does not exist"):
        Run.load(run_dir)


def test_existing_run_dir_is_never_overwritten(tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(RunError, match="already exists"):
        train(TrainConfig(regime="scratch", epochs=1, **FAST), tiny_dataset(), tmp_path / "taken")


def test_corrupt_run_files_are_named(tmp_path):
    run_dir = tmp_path / "run"
    train(TrainConfig(regime="scratch", epochs=1, **FAST), tiny_dataset(), run_dir)
    (run_dir / "metrics.json").write_text("{truncated")
    with pytest.raises(RunError, match="metrics.json is corrupt"):
        Run.load(run_dir)
    (run_dir / "history.csv").unlink()
    with pytest.raises(RunError, match="incomplete: missing history.csv"):
        Run.load(run_dir)


def test_balanced_class_weights_and_augmentation_run(tmp_path):
    config = TrainConfig(regime="scratch", epochs=1, class_weight="balanced",
                         **{**FAST, "rotation": 15.0, "zoom": 0.2, "flip": True})
    result = train(config, tiny_dataset(), tmp_path / "aug")
    assert isinstance(result.history, pd.DataFrame) and len(result.history) == 1


@pytest.mark.parametrize("augmentation", ["live", "none"])
def test_each_phase_traces_its_training_step_once(tmp_path, pretrained, monkeypatch, augmentation):
    """The optimizer's slots and the compiled metrics exist before the first step: a tf.function that
    creates variables while tracing is traced twice, and a phase then traced its whole model twice."""
    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

    traced: list[str] = []
    step = TensorFlowTrainer.train_step

    def counting(self, data):
        traced.append(self.name)
        return step(self, data)

    monkeypatch.setattr(TensorFlowTrainer, "train_step", counting)
    config = TrainConfig(regime="transfer", weights=pretrained, frozen_epochs=2, frozen_patience=2, epochs=2,
                         frozen_augmentation=augmentation, stall_epochs=0,
                         **{**FAST, "rotation": 10.0})  # live: through the backbone
    result = train(config, tiny_dataset(), tmp_path / "t")
    assert result.history["phase"].tolist() == ["frozen", "frozen", "finetune", "finetune"]
    head = ["fer_mini_xception_head"] if augmentation == "none" else ["fer_mini_xception"]
    assert traced == [*head, "fer_mini_xception"], traced  # one trace per phase, not two


@pytest.mark.parametrize("n, batch, sizes", [
    (19523, 64, [64] * 305),  # the real faces' training split: its 3-image last batch is dropped
    (56, 16, [16, 16, 16, 8]),  # half a batch stays
    (50, 16, [16, 16, 16]),  # 2 images do not
    (5, 16, [5]),  # fewer than half a batch: all of them, once
])
def test_a_training_epoch_has_no_batch_smaller_than_half_a_batch(n, batch, sizes):
    from study.pipeline import index_batches, training_steps

    epochs = [[len(b) for b in index_batches(n, batch, training=True, seed=0, epoch=e)] for e in range(2)]
    assert epochs[0] == epochs[1] == sizes and training_steps(n, batch) == len(sizes)
    seen = [np.concatenate(index_batches(n, batch, training=True, seed=0))]
    assert len(set(seen[0].tolist())) == sum(sizes)  # no row twice in an epoch
    assert [len(b) for b in index_batches(n, batch, training=False, seed=0)][-1] == n % batch or n % batch == 0
