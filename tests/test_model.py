"""The model contract: paper's head, every backbone, preprocessing inside, weights, (un)freezing."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

from study.config import TrainConfig, field_default
from study.errors import ConfigError, ModelError
from study.model import (
    BACKBONES,
    GrayscalePreprocessing,
    Subsample2D,
    backbone_blocks,
    backbone_of,
    build_backbone,
    build_model,
    forget_backbones,
    freeze_backbone,
    head_layer_names,
    release_backbone,
    unfreeze_backbone,
)

REPO = Path(__file__).resolve().parents[1]
TINY_HEAD = {"dense1_units": 8, "dense2_units": 8, "dense3_units": 8}


@pytest.fixture(autouse=True)
def _fresh_keras():
    """Same seed per test, and no layer-name counters, dtype policy or kept backbone leaking between tests."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    forget_backbones()
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.fixture(scope="module")
def densenet169() -> keras.Model:
    return build_model(TrainConfig(backbone="densenet169"))


def _gray(n: int, size: int = 48, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 1)).astype("uint8")


def _saved_backbone_weights(tmp_path: Path, name: str = "mini_xception") -> tuple[Path, list[np.ndarray]]:
    backbone = build_backbone(name)
    path = tmp_path / f"{name}.weights.h5"
    backbone.save_weights(path)
    return path, backbone.get_weights()


def _kernel(model: keras.Model, layer: str = "module3_shortcut_conv") -> np.ndarray:
    return backbone_of(model).get_layer(layer).get_weights()[0]


def _trainable_ids(layer_list) -> set[int]:
    return {id(w) for layer in layer_list for w in layer.trainable_weights}


# ----------------------------------------------------------------------------- architecture
def test_densenet169_has_the_papers_head(densenet169):
    model = densenet169
    assert model.input_shape == (None, 48, 48, 1)
    assert model.output_shape == (None, 7)
    head = [layer.name for layer in model.layers if layer.name.startswith("head_")]
    assert head == head_layer_names() == [
        "head_gap", "head_dense1", "head_dropout1", "head_dense2", "head_dropout2",
        "head_dense3", "head_dropout3", "head_output",
    ]
    assert isinstance(model.get_layer("head_gap"), keras.layers.GlobalAveragePooling2D)
    for i, (units, rate) in enumerate([(256, 0.3), (1024, 0.5), (512, 0.5)], start=1):
        dense = model.get_layer(f"head_dense{i}")
        assert dense.units == units
        assert dense.activation is keras.activations.relu
        assert isinstance(dense.kernel_regularizer, keras.regularizers.L2)
        assert dense.kernel_regularizer.l2 == pytest.approx(field_default("l2"))
        assert model.get_layer(f"head_dropout{i}").rate == rate
    output = model.get_layer("head_output")
    assert output.units == 7
    assert output.activation is keras.activations.softmax
    assert output.dtype_policy.compute_dtype == "float32"
    assert backbone_of(model).name == "backbone"
    assert backbone_of(model).input_shape == (None, 48, 48, 3)


def test_head_sizes_come_from_the_config():
    model = build_model(TrainConfig(backbone="mini_xception", dense1_units=16, dense2_units=32, dense3_units=8,
                                    dropout1=0.1, dropout2=0.2, dropout3=0.0, l2=0.0), num_classes=3)
    assert [model.get_layer(f"head_dense{i}").units for i in (1, 2, 3)] == [16, 32, 8]
    assert [model.get_layer(f"head_dropout{i}").rate for i in (1, 2, 3)] == [0.1, 0.2, 0.0]
    assert model.get_layer("head_dense1").kernel_regularizer is None
    assert model.output_shape == (None, 3)


@pytest.mark.parametrize("name", list(BACKBONES))
def test_every_backbone_builds_at_48(name):
    model = build_model(TrainConfig(backbone=name, **TINY_HEAD))
    assert model.input_shape == (None, 48, 48, 1)
    assert model.output_shape == (None, 7)
    assert backbone_of(model).input_shape == (None, 48, 48, BACKBONES[name].channels)
    assert len(backbone_blocks(backbone_of(model))) >= 4


def test_a_larger_input_size_upsamples_inside_the_model_and_still_takes_48x48_faces(tmp_path):
    model = build_model(TrainConfig(backbone="mini_xception", input_size=96, **TINY_HEAD))
    assert model.input_shape == (None, 48, 48, 1)
    assert backbone_of(model).input_shape == (None, 96, 96, 1)
    assert model.get_layer("upsample").output.shape[1:3] == (96, 96)
    faces = _gray(3)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(loaded.predict(faces, verbose=0), model.predict(faces, verbose=0), rtol=1e-5, atol=1e-6)
    assert "upsample" not in {layer.name for layer in build_model(TrainConfig(backbone="mini_xception")).layers}


@pytest.mark.parametrize("momentum", [0.9, 0.99])
def test_bn_momentum_reaches_every_batchnorm_of_the_backbone(tmp_path, momentum):
    model = build_model(TrainConfig(backbone="densenet121", bn_momentum=momentum, **TINY_HEAD))
    norms = [layer for layer in backbone_of(model).layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) > 100 and {layer.momentum for layer in norms} == {momentum}


def test_mini_xception_is_small():
    assert 60_000 <= build_backbone("mini_xception").count_params() <= 100_000


def test_mixed_precision_keeps_a_float32_output():
    keras.mixed_precision.set_global_policy("mixed_float16")
    model = build_model(TrainConfig(backbone="mini_xception", **TINY_HEAD))
    assert backbone_of(model).get_layer("stem1_conv").compute_dtype == "float16"
    assert model(_gray(2).astype("float32")).dtype == "float32"


def test_unknown_backbone_is_refused_when_the_config_is_made_and_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown backbone 'alexnet'; valid backbones: densenet121, densenet169.*mini_xception"):
        TrainConfig(backbone="alexnet")


def test_the_light_list_of_backbones_is_the_models_registry():
    from study.config import BACKBONE_NAMES
    from study.model import BACKBONES

    assert tuple(BACKBONES) == BACKBONE_NAMES


# ----------------------------------------------------------------------------- preprocessing
@pytest.mark.parametrize("name, module", [("densenet169", "densenet"), ("resnet50", "resnet50"), ("vgg16", "vgg16")])
def test_preprocessing_matches_keras_own(name, module):
    """The in-model layer must feed the backbone exactly what keras's preprocess_input would."""
    gray = _gray(2).astype("float32")
    preprocess = GrayscalePreprocessing(BACKBONES[name].preprocessing, 3)
    expected = getattr(keras.applications, module).preprocess_input(np.repeat(gray, 3, axis=-1))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(preprocess(gray)), expected, rtol=1e-5, atol=1e-4)


def test_mini_xception_sees_unit_pixels():
    model = build_model(TrainConfig(backbone="mini_xception", **TINY_HEAD))
    scaled = model.get_layer("preprocess")(_gray(1).astype("float32"))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(scaled), _gray(1) / 255.0, rtol=1e-6)


def test_subsample_then_1x1_conv_equals_a_strided_1x1_conv():
    """mini_xception's shortcut avoids the oneDNN strided-1x1 bug with this identity (forward only here)."""
    x = np.random.default_rng(0).normal(size=(3, 11, 12, 8)).astype("float32")
    strided = keras.layers.Conv2D(16, 1, strides=2, padding="same", use_bias=False)
    plain = keras.layers.Conv2D(16, 1, use_bias=False)
    expected = strided(x)
    plain.build((None, 6, 6, 8))
    plain.set_weights(strided.get_weights())
    np.testing.assert_allclose(plain(Subsample2D(2)(x)), expected, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- regimes and freezing
def test_transfer_runs_the_backbone_in_inference_mode(tmp_path):
    """BatchNorm keeps its statistics in transfer unless finetune_batchnorm, and trains from scratch."""
    weights, _ = _saved_backbone_weights(tmp_path)
    x = _gray(4).astype("float32")
    for config, frozen_bn in [
        (TrainConfig(backbone="mini_xception", **TINY_HEAD), False),
        (TrainConfig(regime="transfer", backbone="mini_xception", weights=str(weights), **TINY_HEAD), True),
        (TrainConfig(regime="transfer", backbone="mini_xception", weights=str(weights),
                     finetune_batchnorm=True, **TINY_HEAD), False),
    ]:
        model = build_model(config)
        features = keras.Model(model.input, model.get_layer("head_gap").output)
        same = np.allclose(features(x, training=True), features(x, training=False), atol=1e-6)
        assert same == frozen_bn, config


def test_fine_tuning_fit_leaves_batchnorm_statistics_alone(tmp_path):
    """fit() calls the model with training=True; the unfrozen convs must learn, BatchNorm must not move."""
    weights, _ = _saved_backbone_weights(tmp_path)
    model = build_model(TrainConfig(regime="transfer", backbone="mini_xception", weights=str(weights), **TINY_HEAD))
    freeze_backbone(model)
    unfreeze_backbone(model, None, finetune_batchnorm=False)
    bn = backbone_of(model).get_layer("module3_bn1")
    stats_before, kernel_before = bn.moving_mean.numpy().copy(), _kernel(model).copy()
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    model.fit(_gray(8), np.arange(8) % 7, batch_size=8, epochs=1, verbose=0)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), stats_before)
    assert not np.allclose(_kernel(model), kernel_before)


def test_freeze_backbone_leaves_only_the_head_trainable():
    model = build_model(TrainConfig(backbone="mini_xception", **TINY_HEAD))
    freeze_backbone(model)
    assert backbone_of(model).trainable_weights == []
    head = [model.get_layer(name) for name in head_layer_names()]
    assert {id(w) for w in model.trainable_weights} == _trainable_ids(head)
    assert len(model.trainable_weights) == 8  # 4 Dense layers x (kernel, bias)


def test_unfreeze_all_keeps_batchnorm_frozen_unless_asked():
    model = build_model(TrainConfig(backbone="mini_xception", **TINY_HEAD))
    backbone = backbone_of(model)
    everything = _trainable_ids(backbone.layers)
    not_bn = _trainable_ids(l for l in backbone.layers if not isinstance(l, keras.layers.BatchNormalization))
    assert 0 < len(not_bn) < len(everything)

    freeze_backbone(model)
    unfreeze_backbone(model, None, finetune_batchnorm=False)
    assert {id(w) for w in backbone.trainable_weights} == not_bn
    assert all(not l.trainable for l in backbone.layers if isinstance(l, keras.layers.BatchNormalization))

    freeze_backbone(model)
    unfreeze_backbone(model, None, finetune_batchnorm=True)
    assert {id(w) for w in backbone.trainable_weights} == everything


@pytest.mark.parametrize("name, top", [("mini_xception", 2), ("mini_xception", 10), ("efficientnetb0", 3)])
def test_unfreeze_top_k_trains_exactly_those_blocks(name, top):
    model = build_model(TrainConfig(backbone=name, **TINY_HEAD))
    backbone = backbone_of(model)
    blocks = backbone_blocks(backbone)
    freeze_backbone(model)
    unfreeze_backbone(model, top, finetune_batchnorm=False)
    top_layers = [l for block in blocks[-top:] for l in block if not isinstance(l, keras.layers.BatchNormalization)]
    assert {id(w) for w in backbone.trainable_weights} == _trainable_ids(top_layers)
    assert len(backbone.trainable_weights) > 0
    assert len(model.trainable_weights) == len(backbone.trainable_weights) + 8


def test_blocks_follow_each_architectures_names(densenet169):
    blocks = backbone_blocks(backbone_of(densenet169))
    assert "conv1_conv" in [l.name for l in blocks[0]]  # the stem
    assert [l.name for l in blocks[1]][0] == "conv2_block1_0_bn"
    assert "pool2_conv" in [l.name for l in blocks[6]]  # a transition joins the dense layer before it
    assert [l.name for l in blocks[-1]][-2:] == ["bn", "relu"]
    assert len(blocks) == 1 + 6 + 12 + 32 + 32
    mini = backbone_blocks(build_backbone("mini_xception"))
    assert [sorted({l.name.split("_")[0] for l in block}) for block in mini] == [
        ["stem1", "stem2"], ["module1"], ["module2"], ["module3"], ["module4"], ["exit"]]


# ----------------------------------------------------------------------------- weights
def test_weights_file_is_really_loaded(tmp_path):
    path, saved = _saved_backbone_weights(tmp_path)
    loaded = build_model(TrainConfig(regime="transfer", backbone="mini_xception", weights=str(path), **TINY_HEAD))
    fresh = build_model(TrainConfig(backbone="mini_xception", **TINY_HEAD))
    for a, b in zip(backbone_of(loaded).get_weights(), saved):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(_kernel(loaded), _kernel(fresh))


def test_legacy_h5_weights_file_is_loaded(tmp_path):
    """keras's own ImageNet notop files are legacy .h5; write one the way keras 2 did."""
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group

    backbone = build_backbone("mini_xception")
    path = tmp_path / "notop.h5"
    with h5py.File(path, "w") as f:
        save_weights_to_hdf5_group(f, backbone)
    loaded = build_model(TrainConfig(backbone="mini_xception", weights=str(path), **TINY_HEAD))
    np.testing.assert_array_equal(_kernel(loaded), backbone.get_layer("module3_shortcut_conv").get_weights()[0])


def test_weights_from_a_previous_model_keras_and_its_run_dir(tmp_path):
    previous = build_model(TrainConfig(backbone="mini_xception", dense1_units=4, dense2_units=4, dense3_units=4))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    previous.save(run_dir / "model.keras")
    for weights in (run_dir / "model.keras", run_dir):
        reused = build_model(TrainConfig(regime="transfer", backbone="mini_xception", weights=str(weights), **TINY_HEAD))
        for a, b in zip(backbone_of(reused).get_weights(), backbone_of(previous).get_weights()):
            np.testing.assert_array_equal(a, b)


def test_previous_model_with_another_backbone_is_refused(tmp_path):
    build_model(TrainConfig(backbone="mobilenetv3small", **TINY_HEAD)).save(tmp_path / "model.keras")
    with pytest.raises(ModelError, match="has a mobilenetv3small backbone, not mini_xception"):
        build_model(TrainConfig(backbone="mini_xception", weights=str(tmp_path / "model.keras")))


def test_weights_file_of_another_backbone_is_refused(tmp_path):
    path, _ = _saved_backbone_weights(tmp_path, "mobilenetv3small")
    with pytest.raises(ModelError, match=f"{path}.*does not fit the mini_xception backbone"):
        build_model(TrainConfig(backbone="mini_xception", weights=str(path)))


@pytest.mark.parametrize("weights, message", [
    ("missing.weights.h5", "not imagenet, none, or an existing file"),
    ("emptydir", "holds no model.keras"),
    ("notes.txt", "neither a .keras model nor an .h5"),
])
def test_unusable_weights_paths_are_refused(tmp_path, weights, message):
    (tmp_path / "emptydir").mkdir()
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ModelError, match=message):
        build_model(TrainConfig(backbone="mini_xception", weights=str(tmp_path / weights)))


def test_mini_xception_has_no_imagenet_weights():
    from command_line.errors import word

    with pytest.raises(ModelError, match="mini_xception has no ImageNet weights; use weights FILE") as caught:
        build_model(TrainConfig(regime="transfer", backbone="mini_xception"))
    assert "mini_xception has no ImageNet weights; use --weights FILE" in word(caught.value)  # as the CLI says it


def test_offline_imagenet_download_is_a_one_line_model_error(monkeypatch, tmp_path):
    """Offline, keras's get_file raises a bare Exception; we name the file it wanted and the fix."""
    from keras.src.utils import file_utils

    def offline(fname, origin, **kwargs):
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -2] Name or service not known")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(ModelError) as error:
        build_model(TrainConfig(regime="transfer", backbone="vgg16"))
    from command_line.errors import word

    message = word(error.value)  # as the command line prints it
    assert "\n" not in message
    assert "ImageNet weights for vgg16 could not be downloaded" in message
    assert str(tmp_path / "models") in message and "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert "--weights FILE" in message


# ----------------------------------------------------------------------------- saving and training
def test_saved_model_round_trips_with_identical_predictions(tmp_path):
    weights, _ = _saved_backbone_weights(tmp_path)
    model = build_model(TrainConfig(regime="transfer", backbone="mini_xception", weights=str(weights), **TINY_HEAD))
    images = _gray(5)
    before = model.predict(images, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")  # safe_mode: no Lambda layers
    np.testing.assert_array_equal(loaded.predict(images, verbose=0), before)
    assert loaded.name == "fer_mini_xception"
    assert backbone_of(loaded).name == "backbone"


def test_mini_xception_trains_with_default_onednn_settings():
    """Odd batches (7 -> last batch 1) are what crashed the strided-1x1 design under oneDNN;
    a subprocess so a native crash is reported as a failure, not a dead test run."""
    script = (
        "import keras, numpy as np\n"
        "from study.config import TrainConfig\n"
        "from study.model import build_model\n"
        "keras.utils.set_random_seed(0)\n"
        "model = build_model(TrainConfig(backbone='mini_xception'))\n"
        "model.compile('sgd', 'sparse_categorical_crossentropy')\n"
        "rng = np.random.default_rng(0)\n"
        "x = rng.integers(0, 256, (64, 48, 48, 1)).astype('float32')\n"
        "history = model.fit(x, rng.integers(0, 7, 64), batch_size=7, epochs=2, verbose=0)\n"
        "assert np.isfinite(history.history['loss']).all()\n"
        "print('trained', len(history.history['loss']))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "trained 2" in done.stdout


def test_a_released_backbone_is_reused_as_if_built_afresh(tmp_path):
    """A search's trials reuse the backbone (study.training releases it): the next model must not be
    able to tell, whatever the previous one trained, froze or connected."""
    path, saved = _saved_backbone_weights(tmp_path)
    config = TrainConfig(regime="transfer", backbone="mini_xception", weights=str(path), **TINY_HEAD)
    first = build_model(config)
    fresh_config = first.get_config()
    x = _gray(8)
    expected = first.predict(x, verbose=0)
    unfreeze_backbone(first, None, finetune_batchnorm=True)  # then "train" it: every weight changes
    backbone_of(first).set_weights([w + 1.0 for w in saved])
    release_backbone(first)
    for _ in range(3):
        keras.backend.clear_session()
        again = build_model(config)
        assert backbone_of(again) is backbone_of(first)  # reused, not rebuilt
        assert again.get_config() == fresh_config  # same graph: saves and loads like a fresh model
        for got, want in zip(backbone_of(again).get_weights(), saved):
            np.testing.assert_array_equal(got, want)
        assert [l.trainable for l in again.layers] == [l.trainable for l in first.layers]
        assert not any(l.trainable for l in backbone_of(again).layers if isinstance(l, keras.layers.BatchNormalization))
        np.testing.assert_allclose(again.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
        assert len(backbone_of(again)._outbound_nodes) == 1  # no trail of earlier models kept alive
        release_backbone(again)


def test_a_backbone_in_use_or_randomly_initialized_is_never_shared(tmp_path):
    path, _ = _saved_backbone_weights(tmp_path)
    config = TrainConfig(regime="transfer", backbone="mini_xception", weights=str(path), **TINY_HEAD)
    in_use = build_model(config)
    second = build_model(config)
    assert backbone_of(second) is not backbone_of(in_use)  # not released: two models, two backbones
    scratch = TrainConfig(backbone="mini_xception", **TINY_HEAD)
    model = build_model(scratch)
    release_backbone(model)
    assert backbone_of(build_model(scratch)) is not backbone_of(model)  # weights=none: the seed decides
    release_backbone(second)
    assert backbone_of(build_model(config.replace(seed=1))) is backbone_of(second)  # the seed only moves the head
