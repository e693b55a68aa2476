"""Did a run learn: baselines, the binomial check, the answer-share metric, the stall guard, and the
settings FER practice tunes (optimizers, schedules, label smoothing, head depth, augmentation)."""
from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from study.config import TrainConfig
from study.diagnostics import LearningProbe, ProbeBatches
from study.evaluation import compute_metrics
from study.learning import AnswerShare, StallGuard, StallState, baseline, learned_pvalue, top_answer_share
from study.model import build_model, head_layer_names, head_layers_of
from study.optimization import learning_rate_schedule, make_optimizer, schedule_callbacks
from study.pipeline import Augmentation, augment, batch_rng
from study.training import train
from tests.test_training import FAST, tiny_dataset


# ----------------------------------------------------------------------------------- baselines
def test_baseline_is_the_majority_and_stratified_rate_of_the_labels():
    base = baseline(np.array([3, 3, 3, 0]))
    assert (base.majority_class, base.majority_rate) == ("happy", 0.75)
    assert base.stratified_rate == pytest.approx(0.75**2 + 0.25**2)


def test_a_model_answering_one_class_never_counts_as_learned():
    labels = np.array([3] * 25 + [0, 1, 2, 4, 5, 6] * 12 + [0, 4, 5])
    probs = np.full((len(labels), 7), 0.01)
    probs[:, 3] = 0.94  # "happy" for every face
    metrics = compute_metrics(labels, probs)
    assert metrics["accuracy"] == pytest.approx(metrics["baseline"]["majority_rate"])
    assert metrics["top_answer_share"] == 1.0
    assert metrics["learned"] is False and metrics["learned_pvalue"] > 0.4
    perfect = np.eye(7)[labels]
    assert compute_metrics(labels, perfect)["learned"] is True


def test_learned_pvalue_separates_chance_from_skill():
    assert learned_pvalue(260, 1000, 0.25) > 0.1  # 26% against a 25% majority: could be chance
    assert learned_pvalue(350, 1000, 0.25) < 1e-9
    assert learned_pvalue(0, 0, 0.25) == 1.0


def test_answer_share_metric_counts_the_most_common_answer():
    metric = AnswerShare()
    metric.update_state(None, np.eye(7)[[3, 3, 3, 1]])
    metric.update_state(None, np.eye(7)[[3, 0]])
    assert float(metric.result()) == pytest.approx(4 / 6)
    assert top_answer_share(np.array([3, 3, 3, 1, 3, 0])) == pytest.approx(4 / 6)
    metric.reset_state()
    assert float(metric.result()) == 0.0


# ----------------------------------------------------------------------------------- the guard
class _Model:
    stop_training = False


def _guard(action: str, epochs: int = 3) -> tuple[StallGuard, list[str]]:
    said: list[str] = []
    guard = StallGuard(StallState(majority_rate=0.25, epochs=epochs, action=action), say=said.append)
    guard.set_model(_Model())
    return guard, said


def test_the_guard_stops_a_run_stalled_in_each_of_its_first_epochs():
    guard, said = _guard("stop")
    for epoch in range(3):
        guard.on_epoch_end(epoch, {"val_accuracy": 0.251, "val_top_answer_share": 0.999})
    assert guard.state.fired_at == 3 and guard.state.stopped and guard.model.stop_training
    assert len(said) == 1 and "NOT LEARNING" in said[0] and "majority-class rate 0.250" in said[0]


def test_the_guard_leaves_a_run_that_starts_to_learn_and_only_warns_when_asked():
    guard, said = _guard("stop")
    for epoch, share in enumerate((1.0, 0.95, 1.0)):  # one epoch with varied answers: not a stall
        guard.on_epoch_end(epoch, {"val_accuracy": 0.25, "val_top_answer_share": share})
    assert guard.state.fired_at is None and not guard.model.stop_training and not said
    warn, said = _guard("warn", epochs=1)
    warn.on_epoch_end(0, {"val_accuracy": 0.25, "val_top_answer_share": 1.0})
    assert warn.state.fired_at == 1 and not warn.state.stopped and not warn.model.stop_training
    assert "training goes on" in said[0]


@pytest.mark.slow  # a training test the slow suite (CI) runs: the default one stays within 10 minutes
def test_a_stalled_run_is_stopped_written_and_flagged(tmp_path):
    config = TrainConfig(regime="scratch", epochs=6, learning_rate=1e-9, momentum=0.0, stall_epochs=2, **FAST)
    result = train(config, tiny_dataset(), tmp_path / "stalled")
    metrics = json.loads((tmp_path / "stalled" / "metrics.json").read_text())
    assert len(result.history) == 2  # stopped after the guard's epochs, not the 6 asked for
    assert metrics["stall"]["stalled"] and metrics["stall"]["stopped"] and metrics["stall"]["epoch"] == 2
    assert metrics["summary"]["stalled"] and not metrics["summary"]["learned"]
    warned = train(config.replace(stall_action="warn", epochs=3), tiny_dataset(), tmp_path / "warned")
    assert len(warned.history) == 3 and warned.metrics["stall"]["stalled"] and not warned.metrics["stall"]["stopped"]


@pytest.mark.slow  # a training test the slow suite (CI) runs: the default one stays within 10 minutes
def test_a_learning_run_is_not_flagged(tmp_path):
    # 6 epochs: at 4, a fresh install (2026-12-02) scored exactly twice the majority rate (8 of 28)
    config = TrainConfig(regime="scratch", epochs=6, optimizer="adam", learning_rate=0.003, l2=0.0, **FAST)
    result = train(config, tiny_dataset(224), tmp_path / "learns", evaluate_test=True)
    assert not result.metrics["stall"]["stalled"] and len(result.history) == 6
    test = result.metrics["test"]
    assert test["learned"] and test["accuracy"] > 2 * test["baseline"]["majority_rate"], test["accuracy"]


# ----------------------------------------------------------------------------- optimization
def test_optimizers_follow_the_config():
    sgd = make_optimizer(TrainConfig(optimizer="sgd", momentum=0.9, nesterov=True), 0.01, 5, 10)
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.momentum == 0.9 and sgd.nesterov
    adam = make_optimizer(TrainConfig(optimizer="adam"), 1e-3, 5, 10)
    assert type(adam) is keras.optimizers.Adam and adam.weight_decay is None
    adamw = make_optimizer(TrainConfig(optimizer="adamw", weight_decay=0.05), 1e-3, 5, 10)
    assert isinstance(adamw, keras.optimizers.AdamW) and adamw.weight_decay == 0.05


def test_cosine_with_warmup_rises_then_decays_to_zero_within_the_phase():
    config = TrainConfig(lr_schedule="cosine", warmup_epochs=1)
    schedule = learning_rate_schedule(config, 0.1, epochs=4, steps_per_epoch=10)
    rates = [float(schedule(step)) for step in (0, 5, 10, 25, 40)]
    assert rates[0] == pytest.approx(0.0) and rates[1] == pytest.approx(0.05)
    assert rates[2] == pytest.approx(0.1) and 0.0 < rates[3] < 0.1 and rates[4] == pytest.approx(0.0, abs=1e-7)
    assert learning_rate_schedule(TrainConfig(backbone="mini_xception"), 0.1, 4, 10) == 0.1  # the paper's constant rate
    densenet = learning_rate_schedule(TrainConfig(), 0.1, 4, 10)  # ours for a DenseNet from scratch: as above
    assert [float(densenet(step)) for step in (0, 5, 10, 25, 40)] == pytest.approx(rates, abs=1e-7)


def test_constant_with_warmup_rises_then_stays_and_plateau_takes_no_warmup():
    schedule = learning_rate_schedule(TrainConfig(lr_schedule="constant", warmup_epochs=1), 0.1, epochs=4,
                                      steps_per_epoch=10)
    rates = [float(schedule(step)) for step in (0, 5, 10, 25, 40, 400)]
    assert rates[0] == pytest.approx(0.0) and rates[1] == pytest.approx(0.05)
    assert rates[2:] == pytest.approx([0.1] * 4)
    assert learning_rate_schedule(TrainConfig(lr_schedule="plateau", warmup_epochs=1), 0.1, 4, 10) == 0.1
    assert schedule_callbacks(TrainConfig()) == []
    [plateau] = schedule_callbacks(TrainConfig(lr_schedule="plateau", plateau_factor=0.2, plateau_patience=1))
    assert isinstance(plateau, keras.callbacks.ReduceLROnPlateau) and plateau.factor == 0.2


def test_history_records_the_scheduled_rate_and_smoothing_leaves_the_reported_loss_plain(tmp_path):
    config = TrainConfig(regime="scratch", epochs=2, lr_schedule="cosine", label_smoothing=0.2, l2=0.0,
                         learning_rate=0.05, momentum=0.9, stall_epochs=0, **FAST)
    result = train(config, tiny_dataset(), tmp_path / "run")
    rates = list(result.history["learning_rate"])
    assert rates[0] == pytest.approx(0.025, rel=0.05) and rates[1] == pytest.approx(0.0, abs=1e-6)
    # the objective is smoothed, the cross-entropy metric is not: they differ though L2 is off
    assert not np.allclose(result.history["loss"], result.history["cross_entropy"])


# ----------------------------------------------------------------------------------- model
@pytest.mark.parametrize("depth", [0, 1, 2, 3])
def test_head_depth_keeps_the_first_dense_layers(depth):
    model = build_model(TrainConfig(backbone="mini_xception", head_layers=depth, dense1_units=8, dense2_units=8,
                                    dense3_units=8))
    assert head_layers_of(model) == head_layer_names(depth)
    assert model.output_shape == (None, 7)


@pytest.mark.slow  # a training test the slow suite (CI) runs: the default one stays within 10 minutes
def test_a_shallow_head_trains_on_cached_features(tmp_path):
    pre = train(TrainConfig(regime="scratch", epochs=1, stall_epochs=0, **FAST), tiny_dataset(), tmp_path / "pre")
    config = TrainConfig(regime="transfer", weights=str(pre.run_dir), head_layers=1, frozen_epochs=1, epochs=1,
                         frozen_augmentation="none", stall_epochs=0, **FAST)
    result = train(config, tiny_dataset(), tmp_path / "transfer")
    assert list(result.history["phase"]) == ["frozen", "finetune"]
    assert json.loads((tmp_path / "transfer" / "manifest.json").read_text())["frozen_features"]["views"] == 1


# ----------------------------------------------------------------------------- augmentation
def _batch() -> np.ndarray:
    image = np.zeros((48, 48, 1), np.float32)
    image[20:28, 20:28] = 200.0
    return np.stack([image] * 8)


def _augmented(augmentation: Augmentation) -> np.ndarray:
    return keras.ops.convert_to_numpy(augment(_batch(), batch_rng(1, 0, 2), augmentation))


def test_shift_moves_the_face_and_photometric_changes_keep_pixels_in_range():
    shifted = _augmented(Augmentation(shift=0.2))
    centres = [np.argwhere(img[..., 0] > 100).mean(axis=0) for img in shifted]
    assert max(np.abs(np.array(c) - 23.5).max() for c in centres) > 2.0  # moved by pixels, not by rounding
    lit = _augmented(Augmentation(brightness=0.3, contrast=0.4))
    assert lit.min() >= 0.0 and lit.max() <= 255.0
    assert len({round(float(img.mean()), 3) for img in lit}) > 1  # each image gets its own change
    np.testing.assert_array_equal(lit, _augmented(Augmentation(brightness=0.3, contrast=0.4)))
    assert not Augmentation().active and Augmentation(contrast=0.1).active and not Augmentation(contrast=0.1).geometric


# ----------------------------------------------------------------------------------- probe
@pytest.mark.slow  # minutes of training: CI runs it; the default suite stays within 10 minutes
def test_the_probe_reads_a_run_without_changing_it(tmp_path):
    data = tiny_dataset()
    config = TrainConfig(regime="scratch", epochs=1, stall_epochs=0, **FAST)
    probe = LearningProbe(ProbeBatches.of(data.train, data.val), every=2)
    probed = train(config, data, tmp_path / "probed", callbacks=[probe])
    plain = train(config, data, tmp_path / "plain")
    pd_probed, pd_plain = probed.history.drop(columns="seconds"), plain.history.drop(columns="seconds")
    np.testing.assert_allclose(pd_probed.select_dtypes("number").values, pd_plain.select_dtypes("number").values,
                               rtol=1e-5)
    first, last = probe.rows[0], probe.rows[-1]
    assert first["step"] == 0 and last["step"] == 4  # 56 images / 16 per batch = 4 steps
    for key in ("data_term", "penalty", "grad_head_dense1", "penalty_grad_head_dense1", "grad_backbone_bottom",
                "dead_head_dense1", "entropy", "top_class_share", "val_accuracy", "majority_rate"):
        assert np.isfinite(last[key]), key
    assert 0.0 <= last["entropy"] <= 1.0 and last["penalty"] > 0
