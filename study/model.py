"""The model: raw 48x48 grayscale in, a registered backbone, the paper's head out.

``build_model`` is the only constructor: every backbone gets the same input (one channel of raw
0..255 pixels), its own preprocessing as a layer *inside* the model, and the paper's head
(section IV.C of ``../shared/paper.md``). So a saved ``model.keras`` predicts from raw pixels with
no outside code, and scratch and transfer runs differ only in ``config.weights`` and in how the
backbone is frozen and unfrozen (``freeze_backbone`` / ``unfreeze_backbone``; recompile after
either, as Keras requires).

The backbone is a nested functional model named ``"backbone"`` (``backbone_of``), so weights move
between runs backbone-to-backbone whatever head or image size each run used.
"""
from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import keras
import numpy as np
from keras import layers, ops

from study.config import FACE_SIZE, TrainConfig
from study.model_files import check_weights_file
from study.runs import not_kept_note
from study.errors import ConfigError, ModelError

BACKBONE_LAYER = "backbone"

# ImageNet statistics the pretrained backbones were trained with (keras.applications.imagenet_utils).
TORCH_MEAN_RGB = (0.485, 0.456, 0.406)
TORCH_STD_RGB = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
# "torch": /255 then mean/std; "caffe": BGR mean subtraction; "unit": /255 only;
# "none": the backbone rescales by itself (EfficientNet, MobileNetV3 include it).
PREPROCESSING_MODES = ("torch", "caffe", "unit", "none")

BuildBackbone = Callable[[Literal["imagenet"] | None, tuple[int, int, int]], keras.Model]


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one backbone, feed it, and cut it into blocks for partial unfreezing.

    ``block_pattern``'s first group names the block a layer belongs to; a layer it does not match
    (a transition, an auto-named activation, the final norm) belongs to the block before it, and
    the layers before the first match form block 0, the stem.
    """

    build: BuildBackbone
    preprocessing: str
    channels: int
    block_pattern: str
    imagenet_file: str | None  # keras's cache name in ~/.keras/models; None = no ImageNet weights


def _application(constructor: Callable[..., keras.Model]) -> BuildBackbone:
    def build(weights: Literal["imagenet"] | None, input_shape: tuple[int, int, int]) -> keras.Model:
        return constructor(include_top=False, weights=weights, input_shape=input_shape)

    return build


# ----------------------------------------------------------------------------- preprocessing
@keras.saving.register_keras_serializable(package="fer_study")
class GrayscalePreprocessing(layers.Layer):
    """Raw 0..255 grayscale -> the input the backbone expects, inside the model so a saved
    model needs no outside preprocessing (a Lambda layer would not load in safe mode)."""

    def __init__(self, mode: str, channels: int, **kwargs) -> None:
        if mode not in PREPROCESSING_MODES:
            raise ValueError(f"mode must be one of {', '.join(PREPROCESSING_MODES)}, got {mode!r}")
        if channels not in (1, 3) or (mode in ("torch", "caffe") and channels != 3):
            raise ValueError(f"mode {mode!r} cannot produce {channels} channel(s)")
        super().__init__(**kwargs)
        self.mode = mode
        self.channels = channels

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        if self.channels == 3:
            x = ops.concatenate([x, x, x], axis=-1)
        if self.mode == "torch":
            return (x / 255.0 - ops.array(TORCH_MEAN_RGB, self.compute_dtype)) / ops.array(
                TORCH_STD_RGB, self.compute_dtype
            )
        if self.mode == "caffe":
            # RGB->BGR is a no-op on three copies of one gray channel; only the BGR means remain.
            return x - ops.array(CAFFE_MEAN_BGR, self.compute_dtype)
        if self.mode == "unit":
            return x / 255.0
        return x

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (*input_shape[:-1], self.channels)

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode, "channels": self.channels}


# ----------------------------------------------------------------------------- mini-Xception
@keras.saving.register_keras_serializable(package="fer_study")
class Subsample2D(layers.Layer):
    """Keeps every ``stride``-th row and column: ``x[:, ::s, ::s, :]``.

    Followed by a 1x1 stride-1 Conv2D it computes exactly a 1x1 stride-s ``padding="same"``
    Conv2D (a 1x1 kernel needs no padding), with the same weights. mini_xception's shortcuts use
    it because on TF 2.21 (oneDNN 3.7.3, AVX-512 CPUs) the oneDNN kernel for the *weight
    gradient* of a strided 1x1 convolution (``jit_avx512_common_1x1_convolution_bwd_weights``)
    corrupts the heap when the input has fewer than 16 channels and the batch is odd, as the last
    partial batch of an epoch often is: "corrupted double-linked list", SIGSEGV, default settings
    only (``TF_ENABLE_ONEDNN_OPTS=0`` hides it). The first module's shortcut sees 8 channels.
    Bisection cleared SeparableConv2D, BatchNorm, MaxPool and Add; the stride-1 1x1 gradient is
    unaffected and slicing runs outside oneDNN.
    """

    def __init__(self, stride: int = 2, **kwargs) -> None:
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        super().__init__(**kwargs)
        self.stride = stride

    def call(self, inputs):
        return inputs[:, :: self.stride, :: self.stride, :]

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        def out(size: int | None) -> int | None:
            return None if size is None else -(-size // self.stride)

        return (input_shape[0], out(input_shape[1]), out(input_shape[2]), input_shape[3])

    def get_config(self) -> dict:
        return {**super().get_config(), "stride": self.stride}


MINI_XCEPTION_STEM = (8, 8)
MINI_XCEPTION_MODULES = (16, 32, 64, 128)
MINI_XCEPTION_EXIT = 256
# mini_xception is for short CPU runs (a few hundred steps). With Keras's default BatchNorm momentum
# of 0.99 the moving statistics still lag the batch statistics after ~200 steps, and the model in
# inference mode predicted the majority class while reaching 0.50 train accuracy on the sample.
# 0.9 tracks within ~20 steps.
MINI_XCEPTION_BN_MOMENTUM = 0.9  # as built; build_model sets every backbone's to config.bn_momentum


def _bn(name: str) -> layers.BatchNormalization:
    return layers.BatchNormalization(momentum=MINI_XCEPTION_BN_MOMENTUM, name=name)


def _conv_bn_relu(x, filters: int, name: str):
    x = layers.Conv2D(filters, 3, use_bias=False, name=f"{name}_conv")(x)
    x = _bn(f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def _residual_module(x, filters: int, name: str):
    """Arriaga et al.'s module: two separable convs + max pool, plus a 1x1 stride-2 shortcut
    written as Subsample2D + 1x1 conv (the same function; see Subsample2D for why)."""
    shortcut = Subsample2D(2, name=f"{name}_shortcut_subsample")(x)
    shortcut = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_shortcut_conv")(shortcut)
    shortcut = _bn(f"{name}_shortcut_bn")(shortcut)
    x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_sepconv1")(x)
    x = _bn(f"{name}_bn1")(x)
    x = layers.Activation("relu", name=f"{name}_relu1")(x)
    x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_sepconv2")(x)
    x = _bn(f"{name}_bn2")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_pool")(x)
    return layers.Add(name=f"{name}_add")([x, shortcut])


def mini_xception(input_shape: tuple[int, int, int] = (48, 48, 1), name: str = "mini_xception") -> keras.Model:
    """A mini-Xception feature extractor (Arriaga et al. 2017) ending in a feature map.

    The original's class-score conv is left to the paper's head; a separable exit conv widens the
    features from 128 to 256 instead, which puts the backbone at about 85k parameters.
    """
    inputs = keras.Input(input_shape)
    x = inputs
    for i, filters in enumerate(MINI_XCEPTION_STEM, start=1):
        x = _conv_bn_relu(x, filters, f"stem{i}")
    for i, filters in enumerate(MINI_XCEPTION_MODULES, start=1):
        x = _residual_module(x, filters, f"module{i}")
    x = layers.SeparableConv2D(MINI_XCEPTION_EXIT, 3, padding="same", use_bias=False, name="exit_sepconv")(x)
    x = _bn("exit_bn")(x)
    x = layers.Activation("relu", name="exit_relu")(x)
    return keras.Model(inputs, x, name=name)


def _mini_xception(weights: Literal["imagenet"] | None, input_shape: tuple[int, int, int]) -> keras.Model:
    return mini_xception(input_shape)


# ----------------------------------------------------------------------------- registry
_DENSENET_BLOCKS = r"^(conv\d+_block\d+)_"
BACKBONES: dict[str, BackboneSpec] = {
    "densenet121": BackboneSpec(
        _application(keras.applications.DenseNet121), "torch", 3, _DENSENET_BLOCKS,
        "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ),
    "densenet169": BackboneSpec(
        _application(keras.applications.DenseNet169), "torch", 3, _DENSENET_BLOCKS,
        "densenet169_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ),
    "densenet201": BackboneSpec(
        _application(keras.applications.DenseNet201), "torch", 3, _DENSENET_BLOCKS,
        "densenet201_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ),
    "resnet50": BackboneSpec(
        _application(keras.applications.ResNet50), "caffe", 3, r"^(conv\d+_block\d+)_",
        "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ),
    "vgg16": BackboneSpec(
        _application(keras.applications.VGG16), "caffe", 3, r"^(block\d+)_",
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ),
    "efficientnetb0": BackboneSpec(
        _application(keras.applications.EfficientNetB0), "none", 3, r"^(block\d+[a-z])_",
        "efficientnetb0_notop.h5",
    ),
    "mobilenetv3small": BackboneSpec(
        _application(keras.applications.MobileNetV3Small), "none", 3, r"^(expanded_conv(?:_\d+)?)_",
        "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
    ),
    "mini_xception": BackboneSpec(_mini_xception, "unit", 1, r"^(module\d+|exit)_", None),
}


def backbone_spec(name: str) -> BackboneSpec:
    try:
        return BACKBONES[name]
    except KeyError:
        raise ConfigError(f"unknown backbone {name!r}; valid backbones: {', '.join(BACKBONES)}") from None


# ----------------------------------------------------------------------------- weights
@dataclass(frozen=True)
class WeightsSource:
    """``config.weights`` resolved and checked before any layer is built."""

    kind: Literal["imagenet", "none", "file", "model"]
    path: Path | None = None


WEIGHTS_HELP = (
    "«weights» takes imagenet, none, a backbone weights file (.weights.h5 or .h5), "
    "a run's model.keras, or a run directory holding one"
)


def resolve_weights(weights: str, backbone: str) -> WeightsSource:
    """Turn ``config.weights`` into a source, failing early on a missing or unusable path."""
    if weights == "none":
        return WeightsSource("none")
    if weights == "imagenet":
        if backbone_spec(backbone).imagenet_file is None:
            raise ModelError(f"{backbone} has no ImageNet weights; use «weights» FILE or a run's model.keras")
        return WeightsSource("imagenet")
    check_weights_file(weights)  # a run and a search check it at their start too; build_backbone takes any string
    path = Path(weights).expanduser()
    if path.is_dir():
        if not (path / "model.keras").is_file():
            raise ModelError(f"run directory {path} holds no model.keras{not_kept_note(path)}; {WEIGHTS_HELP}")
        return WeightsSource("model", path / "model.keras")
    if not path.is_file():
        raise ModelError(f"«weights» {path} does not exist (it is not imagenet, none, or an existing file); "
                         f"{WEIGHTS_HELP}")
    if path.suffix == ".keras":
        return WeightsSource("model", path)
    if path.suffix in (".h5", ".hdf5"):
        return WeightsSource("file", path)
    raise ModelError(f"weights file {path} is neither a .keras model nor an .h5 weights file; {WEIGHTS_HELP}")


def _keras_models_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "models"


def _build_imagenet(name: str, spec: BackboneSpec, input_shape: tuple[int, int, int]) -> keras.Model:
    """keras downloads and caches the file itself; offline that fails with a bare Exception."""
    try:
        return spec.build("imagenet", input_shape)
    except Exception as exc:
        expected = _keras_models_dir() / str(spec.imagenet_file)
        if expected.is_file():
            raise  # not a download problem: let the real error through
        raise ModelError(
            f"the ImageNet weights for {name} could not be downloaded ({_first_line(exc)}); "
            f"put {spec.imagenet_file} in {expected.parent} or pass «weights» FILE"
        ) from exc


def _load_weights_file(backbone: keras.Model, name: str, path: Path) -> None:
    """Load all of the file or fail: keras only warns when it skips part of a file."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        try:
            backbone.load_weights(str(path))  # keras picks Keras 3 or legacy format by suffix
        except Exception as exc:  # ValueError, KeyError or OSError depending on the mismatch
            raise ModelError(f"weights file {path} does not fit the {name} backbone: {_summary(exc)}") from exc
    skipped = [str(w.message) for w in caught if "Skipping" in str(w.message)]
    if skipped:
        raise ModelError(f"weights file {path} fits only part of the {name} backbone: {skipped[0]}")


def _copy_from_saved_model(backbone: keras.Model, name: str, path: Path) -> None:
    """Reuse a previous run's backbone: same architecture required, any head or image size."""
    try:
        saved = keras.models.load_model(path, compile=False)
    except Exception as exc:
        raise ModelError(f"cannot load model {path}: {_first_line(exc)}") from exc
    source = backbone_of(saved)
    saved_name = saved.name.removeprefix("fer_")  # build_model names each model after its backbone
    if saved_name != name:
        raise ModelError(f"model {path} has a {saved_name} backbone, not {name}; pick a run of {name}")
    try:
        backbone.set_weights(source.get_weights())
    except ValueError as exc:
        raise ModelError(f"the backbone in {path} does not fit {name}: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _summary(exc: BaseException, limit: int = 300) -> str:
    """keras's load errors put the cause on the second line, then dump the tensor values."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()][:2]
    text = " ".join(lines).split(" Target variable")[0] or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def build_backbone(name: str, weights: str = "none", image_size: int = 48) -> keras.Model:
    """The named backbone, renamed ``"backbone"``, with its weights in place.

    A backbone handed back with ``release_backbone`` (``study.training.train`` does, when a run
    ends) is kept and handed out again, restored, to the next call that asks for the same one: the
    trials of a search then skip rebuilding it and reading its weights (``benchmarks.trial_overhead``
    measures the difference: a study's first trial against a later one). See ``_Kept``.
    """
    global _KEPT
    spec = backbone_spec(name)
    source = resolve_weights(weights, name)
    key = _Kept.key(name, source, image_size)
    if key is not None and _KEPT is not None and _KEPT.key_ == key and _KEPT.returned:
        return _KEPT.lend()
    backbone = _build_backbone(name, spec, source, (image_size, image_size, spec.channels))
    if key is not None and _Kept.allowed(backbone):
        _KEPT = _Kept(key, backbone)  # one at a time: a search uses one backbone
    return backbone


def release_backbone(model: keras.Model) -> None:
    """The model is done with: its backbone may be reused by the next ``build_model`` of the same
    backbone and weights (the model must not be used after this)."""
    if _KEPT is not None and _KEPT.backbone is _backbone_or_none(model):
        _KEPT.returned = True


def forget_backbones() -> None:
    """Drop the kept backbone: the next build_backbone builds afresh."""
    global _KEPT
    _KEPT = None


class _Kept:
    """A built backbone with loaded weights, and what it looked like then: its weights, every layer's
    ``trainable`` flag and its graph connections (a model built on it records which of the
    backbone's calls it uses, so a new model must find the backbone as a fresh one would be).
    Restoring all three makes it indistinguishable from a newly built backbone for any model built
    on it. It is lent to one model at a time.

    Only backbones whose values are fixed by their weights source qualify: not random init
    (``weights=none`` depends on the seed), and not one with random layers (EfficientNet's dropout),
    whose seed state a fresh build would draw anew.
    """

    def __init__(self, key: tuple, backbone: keras.Model) -> None:
        self.key_ = key
        self.backbone = backbone
        self.weights = backbone.get_weights()
        self.trainable = [(layer, layer.trainable) for layer in all_layers(backbone)]
        self.nodes = (list(backbone._inbound_nodes), list(backbone._outbound_nodes))
        self.returned = False

    @staticmethod
    def key(name: str, source: WeightsSource, image_size: int) -> tuple | None:
        if source.kind == "none":
            return None
        path = source.path or _keras_models_dir() / str(backbone_spec(name).imagenet_file)
        try:
            stat = path.stat()
        except OSError:
            return None  # an ImageNet file not downloaded yet: build (and download) as usual
        return (name, source.kind, str(path.resolve()), stat.st_size, stat.st_mtime_ns, image_size,
                keras.config.dtype_policy().name)

    @staticmethod
    def allowed(backbone: keras.Model) -> bool:
        return not any(hasattr(layer, "seed_generator") for layer in all_layers(backbone))

    def lend(self) -> keras.Model:
        backbone = self.backbone
        backbone._inbound_nodes[:], backbone._outbound_nodes[:] = self.nodes
        for layer, trainable in self.trainable:
            layer.trainable = trainable
        backbone.set_weights(self.weights)
        self.returned = False
        return backbone


_KEPT: _Kept | None = None


def all_layers(model: keras.Model) -> list[keras.layers.Layer]:
    found: list[keras.layers.Layer] = [model]
    for layer in model.layers:
        found += all_layers(layer) if isinstance(layer, keras.Model) else [layer]
    return found


def _backbone_or_none(model: keras.Model) -> keras.Model | None:
    try:
        return model.get_layer(BACKBONE_LAYER)
    except ValueError:
        return None


def _build_backbone(name: str, spec: BackboneSpec, source: WeightsSource,
                    input_shape: tuple[int, int, int]) -> keras.Model:
    if source.kind == "imagenet":
        backbone = _build_imagenet(name, spec, input_shape)
    else:
        backbone = spec.build(None, input_shape)
    if source.kind == "file":
        _load_weights_file(backbone, name, source.path)
    elif source.kind == "model":
        _copy_from_saved_model(backbone, name, source.path)
    backbone.name = BACKBONE_LAYER
    return backbone


# ----------------------------------------------------------------------------- the model
HEAD_LAYERS = (
    "head_gap",
    "head_dense1",
    "head_dropout1",
    "head_dense2",
    "head_dropout2",
    "head_dense3",
    "head_dropout3",
    "head_output",
)


def head_layer_names(depth: int = 3) -> list[str]:
    """The head's layers, input to output, for a head of ``depth`` hidden Dense layers (the paper's: 3)."""
    hidden = [name for i in range(1, depth + 1) for name in (f"head_dense{i}", f"head_dropout{i}")]
    return [HEAD_LAYERS[0], *hidden, HEAD_LAYERS[-1]]


def head_layers_of(model: keras.Model) -> list[str]:
    """The head layers ``model`` has, input to output (its depth is read from the model, not a config)."""
    names = {layer.name for layer in model.layers}
    return [name for name in HEAD_LAYERS if name in names]


def _head(features, config: TrainConfig, num_classes: int):
    """The paper's head (``config.head_layers`` < 3 keeps its first Dense+Dropout pairs); the output
    stays float32 so mixed precision keeps a stable softmax.

    Its initial weights and dropout draws are seeded from ``config.seed`` alone, not from the global
    random state: they do not depend on what was drawn before (a freshly built backbone's own
    initializers draw from it, a reused one's do not).
    """
    x = layers.GlobalAveragePooling2D(name="head_gap")(features)
    sizes = (
        (config.dense1_units, config.dropout1),
        (config.dense2_units, config.dropout2),
        (config.dense3_units, config.dropout3),
    )[: config.head_layers]
    seed = 1000 * config.seed
    for i, (units, rate) in enumerate(sizes, start=1):
        regularizer = keras.regularizers.L2(config.l2) if config.l2 > 0 else None
        x = layers.Dense(units, activation="relu", kernel_regularizer=regularizer, name=f"head_dense{i}",
                         kernel_initializer=keras.initializers.GlorotUniform(seed + i))(x)
        x = layers.Dropout(rate, seed=seed + 10 + i, name=f"head_dropout{i}")(x)
    return layers.Dense(num_classes, activation="softmax", dtype="float32", name="head_output",
                        kernel_initializer=keras.initializers.GlorotUniform(seed + 4))(x)


def build_model(config: TrainConfig, num_classes: int = 7) -> keras.Model:
    """Grayscale 0..255 48x48 input -> preprocessing -> (upsampling to ``config.input_size``) ->
    backbone -> the paper's head.

    In the transfer regime BatchNorm keeps its pretrained statistics, even once unfrozen, as the
    Keras transfer-learning guide advises, unless ``config.finetune_batchnorm``; from scratch it
    trains normally. The backbone is called with ``training=False`` as the guide does, but in
    Keras 3 ``fit``'s ``training=True`` overrides that inside a functional model
    (keras-team/keras#20285), so what really holds BatchNorm in inference mode is making its
    layers non-trainable (Keras 3 BatchNorm normalizes with its moving statistics then).
    The model is named ``fer_<backbone>`` so a later run can tell which backbone it holds.
    """
    spec = backbone_spec(config.backbone)
    if num_classes < 2:
        raise ModelError(f"num_classes must be at least 2, got {num_classes}")
    backbone = build_backbone(config.backbone, config.weights, config.input_size)
    set_batchnorm_momentum(backbone, config.bn_momentum)
    inputs = keras.Input((FACE_SIZE, FACE_SIZE, 1), name="image")
    x = GrayscalePreprocessing(spec.preprocessing, spec.channels, name="preprocess")(inputs)
    if config.input_size != FACE_SIZE:
        x = layers.Resizing(config.input_size, config.input_size, interpolation="bilinear", name="upsample")(x)
    if config.regime == "transfer" and not config.finetune_batchnorm:
        _freeze_batchnorm(backbone)
        features = backbone(x, training=False)
    else:
        features = backbone(x)
    outputs = _head(features, config, num_classes)
    return keras.Model(inputs, outputs, name=f"fer_{config.backbone}")


def set_batchnorm_momentum(backbone: keras.Model, momentum: float) -> None:
    """``momentum`` for every BatchNormalization layer of ``backbone`` (it is read when the layer is
    called, and saved with it)."""
    for layer in all_layers(backbone):
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = momentum


def backbone_of(model: keras.Model) -> keras.Model:
    try:
        return model.get_layer(BACKBONE_LAYER)
    except ValueError:
        raise ModelError(f"model {model.name!r} has no {BACKBONE_LAYER!r} layer; it was not built by study.model") from None


def predict(model: keras.Model, batches) -> np.ndarray:
    """``model``'s float32 outputs for every batch of ``batches`` (a sequence of image batches, or of
    (images, labels) pairs, such as ``pipeline.Batches``), in order.

    What ``model.predict`` computes (the same call, ``training=False``, the same numbers), compiled once
    for any number of images: a batch smaller than the first is padded to its size and the padding's
    outputs dropped (in inference mode each image's output depends on that image alone), where Keras's
    predict compiles anew for an epoch's last, smaller batch, which on a large backbone costs seconds
    per run.
    """
    outputs, size = [], None
    for index in range(len(batches)):
        batch = batches[index]
        x = keras.ops.convert_to_numpy(batch[0] if isinstance(batch, (tuple, list)) else batch)
        size = size or len(x)
        outputs.append(predict_batch(model, x, size))
    if not outputs:
        return np.zeros((0, *model.output_shape[1:]), dtype=np.float32)
    return np.concatenate(outputs).astype(np.float32, copy=False)


def predict_batch(model: keras.Model, x: np.ndarray, size: int) -> np.ndarray:
    """``model``'s float32 outputs for the images ``x``, padded to ``size`` images (the compiled batch shape)."""
    n = len(x)
    if n < size:
        x = np.concatenate([x, np.zeros((size - n, *x.shape[1:]), x.dtype)])
    return np.asarray(model.predict_on_batch(x))[:n].astype(np.float32, copy=False)


# ----------------------------------------------------------------------------- freezing
def freeze_backbone(model: keras.Model) -> None:
    """Transfer phase 1: only the head trains. Recompile the model afterwards."""
    backbone_of(model).trainable = False


def unfreeze_backbone(model: keras.Model, top_blocks: int | None, finetune_batchnorm: bool) -> None:
    """Transfer phase 2: the whole backbone (None) or its top ``top_blocks`` blocks train.

    BatchNorm layers stay frozen unless ``finetune_batchnorm``: small fine-tuning batches would
    otherwise overwrite the pretrained statistics. Recompile the model afterwards.
    """
    if top_blocks is not None and top_blocks < 1:
        raise ConfigError(f"top_blocks must be None (all) or >= 1, got {top_blocks}")
    backbone = backbone_of(model)
    backbone.trainable = True
    if top_blocks is not None:
        for block in backbone_blocks(backbone)[:-top_blocks]:
            for layer in block:
                layer.trainable = False
    if not finetune_batchnorm:
        _freeze_batchnorm(backbone)


def _freeze_batchnorm(backbone: keras.Model) -> None:
    for layer in backbone.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.trainable = False


def _block_pattern(backbone: keras.Model) -> re.Pattern[str]:
    """The registry's rule that fits the most layer names (each architecture names blocks its own way)."""
    names = [layer.name for layer in backbone.layers]
    patterns = {re.compile(spec.block_pattern) for spec in BACKBONES.values()}
    best = max(patterns, key=lambda p: (sum(bool(p.match(n)) for n in names), p.pattern))
    if not any(best.match(n) for n in names):
        raise ModelError(f"cannot group the layers of {backbone.name!r} into blocks: no registered naming rule fits")
    return best


def backbone_blocks(backbone: keras.Model) -> list[list[keras.layers.Layer]]:
    """The backbone's layers grouped into blocks, bottom (the stem, if any) to top."""
    pattern = _block_pattern(backbone)
    blocks: dict[str, list[keras.layers.Layer]] = {"": []}
    current = ""
    for layer in backbone.layers:
        if isinstance(layer, layers.InputLayer):
            continue
        match = pattern.match(layer.name)
        if match:
            current = match.group(1)
        blocks.setdefault(current, []).append(layer)
    return [block for block in blocks.values() if block]
