"""One typed, validated configuration for a training run; the paper's values are the defaults.

``TrainConfig`` is the single place that knows the paper's settings (section IV of
``../shared/paper.md``). The search spaces read their defaults from here, the command line builds one from
its options, and every run saves the resolved config beside its artifacts.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from study.errors import ConfigError

Regime = Literal["scratch", "transfer"]
REGIMES: tuple[str, ...] = get_args(Regime)
CLASS_WEIGHTS = ("none", "balanced")
SAMPLINGS = ("uniform", "balanced")
OPTIMIZERS = ("sgd", "adam", "adamw")
LR_SCHEDULES = ("constant", "cosine", "plateau")
STALL_ACTIONS = ("stop", "warn")
MAX_HEAD_LAYERS = 3  # the paper's head has three hidden Dense layers
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
FROZEN_AUGMENTATIONS = ("live", "none", "views")
TTA_MODES = ("none", "flip", "crops")  # test-time augmentation (study.tta)
MAX_FEATURE_VIEWS = 32
MIN_INPUT_SIZE, MAX_INPUT_SIZE = 32, 224  # the smallest input keras.applications takes; ImageNet's size
DEFAULT_DATA = "data/sample"  # every command's default dataset: where `data sample` writes the generated faces
# The backbones study.model builds (its BACKBONES registry, which a test holds to this list), named here without
# importing Keras: a config with another name is refused when it is made, not when a model is built.
BACKBONE_NAMES = ("densenet121", "densenet169", "densenet201", "resnet50", "vgg16", "efficientnetb0", "mobilenetv3small",
                  "mini_xception")
FACE_SIZE = 48  # the faces' side in pixels (FER2013's): every model takes 48x48 faces  # each view costs one backbone pass over the training split, and its memory


# The settings whose default the paper states (section IV of ../shared/paper.md); every other default
# is ours: where the paper is silent (the L2 factor, momentum, augmentation strengths) chosen by
# measurement (docs/learning.md), and what it does not use (Adam, schedules, label smoothing, shift,
# brightness, contrast) off. ``default_source`` says which, for every table that shows a default.
PAPER_STATES = frozenset({
    "regime", "backbone", "weights", "input_size", "head_layers", "dense1_units", "dense2_units", "dense3_units", "dropout1",
    "dropout2", "dropout3", "optimizer", "batch_size", "learning_rate", "epochs", "frozen_learning_rate",
    "frozen_epochs", "frozen_patience", "unfreeze", "lr_schedule", "flip",
})
NOT_IN_PAPER_OFF = frozenset({"weight_decay", "warmup_epochs", "label_smoothing", "shift", "brightness", "contrast",
                              "class_weight", "sampling", "focal_gamma", "tta"})


def default_source(name: str) -> str:
    """"paper" (stated there), "ours (paper silent)" (chosen here) or "off (not in the paper)"; a default that
    depends on the regime and backbone (``RESOLVED``) says both."""
    if name in RESOLVED:
        source = "paper" if name in PAPER_STATES else "off (not in the paper)" if name in NOT_IN_PAPER_OFF \
            else "ours (paper silent)"
        variants = (("from scratch", DENSENET_SCRATCH), ("in the transfer regime", DENSENET_TRANSFER))
        return "; ".join([f"{source}: {PAPER_VALUES[name]}", *(f"ours for a DenseNet {where}: {values[name]}"
                                                              for where, values in variants
                                                              if values[name] != PAPER_VALUES[name])])
    if name in PAPER_STATES:
        return "paper"
    return "off (not in the paper)" if name in NOT_IN_PAPER_OFF else "ours (paper silent)"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what a run trains. Unknown keys are rejected by ``from_dict``."""

    regime: str = "scratch"
    backbone: str = "densenet169"
    # "imagenet", "none", a backbone weights file, or a previous run's model.keras / run dir.
    # Empty means the regime's default: "none" for scratch, "imagenet" for transfer.
    weights: str = ""

    # The paper's head: GAP -> Dense256 -> Drop.3 -> Dense1024 -> Drop.5 -> Dense512 -> Drop.5 -> 7.
    # head_layers < 3 keeps the first head_layers Dense+Dropout pairs (0: GAP -> softmax).
    head_layers: int = 3
    dense1_units: int = 256
    dense2_units: int = 1024
    dense3_units: int = 512
    dropout1: float = 0.3
    dropout2: float = 0.5
    dropout3: float = 0.5
    # The side in pixels the backbone sees. Faces stay 48x48 (the paper's) at the model's input; a
    # larger input_size upsamples them (bilinear) inside the model, so a saved model still takes 48x48
    # faces. ImageNet's features were learnt on objects larger than a 48x48 face: transfer may gain
    # from it, at (input_size / 48)^2 times the backbone's compute. 48 is the paper's.
    input_size: int = 48
    # The paper names L2 on every hidden Dense layer but not its factor. Keras's own default, 0.01, made
    # the penalty 87% of the objective; 1e-4 and 1e-3 learn alike (docs/learning.md): the smaller is ours.
    l2: float = 1e-4

    # Optimizer: the paper's is SGD. learning_rate / epochs: scratch's only phase, or transfer's
    # fine-tune phase. momentum and nesterov apply to SGD; weight_decay is decoupled weight decay
    # (AdamW's; Keras applies it to any optimizer), on every trainable weight. Empty means the default
    # for the regime and backbone (``resolved_defaults``): SGD, except Adam for a DenseNet from scratch.
    optimizer: str = ""
    batch_size: int = 64
    learning_rate: float = 0.001
    # The paper is silent on momentum. Without it (Keras's default) SGD at the paper's 0.001 left every
    # run at the majority-class rate; 0.99 gives 0.001 the step of SGD at 0.01 with momentum 0.9
    # (lr / (1 - momentum) = 0.1) and learns (docs/learning.md). -1 means the default for the regime and
    # backbone (``resolved_defaults``): 0.99, except 0 (Keras's) for a DenseNet in the transfer regime,
    # whose frozen phase at the paper's 0.01 diverges with any momentum.
    momentum: float = -1.0
    nesterov: bool = False
    # Every BatchNormalization layer of the backbone: the weight its moving statistics give the past.
    # Validation and test read the model on those statistics. Keras's (and keras.applications') 0.99
    # averages over ~100 steps, and they lagged weights that change fast: DenseNet169 answered worse in
    # inference mode than in training mode (docs/learning.md). 0.9 (PyTorch's default) tracks within ~20.
    bn_momentum: float = 0.9
    weight_decay: float = 0.0
    epochs: int = 20
    # Each phase's learning rate over its epochs: "constant" (the paper), "cosine" (decay to 0 over
    # the phase) or "plateau" (x plateau_factor after plateau_patience epochs without a lower
    # val_loss); "constant" and "cosine" start with warmup_epochs of linear warmup from 0. Empty (and
    # warmup_epochs -1) mean the default for the regime and backbone (``resolved_defaults``): the paper's
    # constant rate without warmup, except cosine after 1 warmup epoch for a DenseNet from scratch.
    lr_schedule: str = ""
    warmup_epochs: int = -1
    plateau_factor: float = 0.5
    plateau_patience: int = 2
    label_smoothing: float = 0.0  # of the training loss only; every reported loss is plain cross-entropy
    # Focal loss (Lin et al.): cross-entropy times (1 - p)^gamma, p the true class's probability, so the faces
    # a model already gets right weigh less; 0 is plain cross-entropy (the paper). Training loss only.
    focal_gamma: float = 0.0

    # Transfer only: frozen phase, then unfreeze and fine-tune.
    frozen_learning_rate: float = 0.01
    frozen_epochs: int = 30
    frozen_patience: int = 3
    unfreeze: str = "all"  # "all", or "K": the top K blocks of the backbone
    finetune_batchnorm: bool = False  # Keras guide: BatchNorm stays in inference mode when unfrozen

    # Augmentation (training batches only). The paper names rotation, flip and zoom, not strengths.
    rotation: float = 10.0  # degrees, +-
    zoom: float = 0.1  # +- fraction
    flip: bool = True  # horizontal
    shift: float = 0.0  # +- fraction of the image size, random translation in x and y
    brightness: float = 0.0  # +- fraction of the 0..255 range, added
    contrast: float = 0.0  # +- fraction: pixels scaled about the image's mean by 1 +- contrast

    class_weight: str = "none"
    # How a training epoch draws its faces: "uniform" (each face once, shuffled: the paper) or "balanced"
    # (as many faces, drawn with replacement so that each class is equally likely: the rare classes,
    # disgust above all, are seen as often as the others; ``study.pipeline.sampling_weights``).
    sampling: str = "uniform"
    seed: int = 0
    val_fraction: float = 0.2
    subset: float = 1.0  # stratified fraction of the training split (cheap searches)
    precision: str = "float32"
    jit: bool = False
    # Transfer phase 1 (study.features): how it augments -- "live" (a new augmentation each epoch,
    # through the frozen backbone: the paper's schedule), "none" (no augmentation in phase 1: its
    # backbone features are computed once and shared by every trial of a study) or "views"
    # (frozen_feature_views augmented views of each image, computed once, one drawn per epoch).
    # Whenever phase 1 has no augmentation it trains on cached features unless feature_cache is off.
    frozen_augmentation: str = "live"
    frozen_feature_views: int = 4
    feature_cache: bool = True
    # The stall guard (study.learning): a run whose validation answers are (nearly) all one class, at
    # the majority-class rate, for each of its first stall_epochs epochs is not learning; "stop" ends
    # it there (its artifacts are written and flagged), "warn" says so and trains on. 0 turns it off.
    stall_epochs: int = 3
    stall_action: str = "stop"
    # Evaluation (validation and test predictions of the trained model): test-time augmentation (study.tta),
    # "none" (the paper's: each face once), "flip" (with its mirror) or "crops" (ten crops). metrics.json
    # and every report table that reads the predictions name it.
    tta: str = "none"

    def __post_init__(self) -> None:
        if not self.weights:
            object.__setattr__(self, "weights", "none" if self.regime == "scratch" else "imagenet")
        for name, value in resolved_defaults(self.regime, self.backbone).items():
            if getattr(self, name) == RESOLVED[name]:
                object.__setattr__(self, name, value)
        _validate(self)

    # ------------------------------------------------------------------ helpers
    @property
    def unfreeze_top_blocks(self) -> int | None:
        """None for the whole backbone, else the number of top blocks to unfreeze."""
        return None if self.unfreeze == "all" else int(self.unfreeze)

    @property
    def max_epochs(self) -> int:
        """Upper bound on epochs of the whole schedule (both phases for transfer)."""
        return self.epochs + (self.frozen_epochs if self.regime == "transfer" else 0)

    def replace(self, **changes: Any) -> "TrainConfig":
        return from_dict({**to_dict(self), **changes})


# Defaults that depend on the regime and backbone: a config that leaves one of these fields at its
# "unset" value (``RESOLVED``) gets the paper's (``PAPER_VALUES``) everywhere but for a DenseNet trained
# from scratch, which gets ``DENSENET_SCRATCH`` (docs/learning.md, "The paper's own model"):
# - Adam: SGD at the paper's 0.001 with momentum 0.99 (and BatchNorm momentum 0.9, no short last batch)
#   was still at the majority rate after 2 epochs on the real faces (validation 0.260 against 0.251;
#   densenet169-sgd-2-epochs), its kernels barely moving, where Adam at the same 0.001 learns
#   (densenet169-5-epochs);
# - cosine decay after one warmup epoch: at Adam's constant 0.001 the paper's 20 epochs reached 0.530 test
#   accuracy, validation accuracy still rising at epoch 20 and dropping for an epoch twice on the way; with
#   the rate decaying to 0 after one warmup epoch, 0.569, and 0.454 validation accuracy after 5 epochs
#   (benchmarks.accuracy's row (c) in the README; docs/learning.md compares the two runs).
# A DenseNet in the transfer regime gets ``DENSENET_TRANSFER``: SGD without momentum (Keras's default). On the
# real faces, the head on a face-pretrained DenseNet169's frozen features at the paper's 0.01 turned its loss
# to NaN within the first epoch with momentum 0.99 and with 0.9, and learned without (validation 0.493 after
# one epoch; docs/learning.md, "Transfer"); with live augmentation, momentum 0.99 left it at the majority
# rate for 3 epochs, where the stall guard ended the run.
# DenseNet121 and 201 share DenseNet169's design (a 1x1 last block at 48x48) and its defaults, unmeasured.
# The paper's schedule is ``--set optimizer=sgd lr_schedule=constant warmup_epochs=0``.
DENSENETS = frozenset({"densenet121", "densenet169", "densenet201"})
RESOLVED: dict[str, Any] = {"optimizer": "", "lr_schedule": "", "warmup_epochs": -1, "momentum": -1.0}
# The default where no backbone says otherwise: the paper's, or ours where the paper is silent (momentum).
PAPER_VALUES: dict[str, Any] = {"optimizer": "sgd", "lr_schedule": "constant", "warmup_epochs": 0, "momentum": 0.99}
DENSENET_SCRATCH: dict[str, Any] = {**PAPER_VALUES, "optimizer": "adam", "lr_schedule": "cosine", "warmup_epochs": 1}
DENSENET_TRANSFER: dict[str, Any] = {**PAPER_VALUES, "momentum": 0.0}
PAPER_OPTIMIZER = PAPER_VALUES["optimizer"]


def resolved_defaults(regime: str, backbone: str) -> dict[str, Any]:
    """The values the ``RESOLVED`` fields of a config that leaves them unset train with."""
    if backbone not in DENSENETS:
        return dict(PAPER_VALUES)
    return dict(DENSENET_SCRATCH if regime == "scratch" else DENSENET_TRANSFER)


def field_default(name: str) -> Any:
    """The field's default as the paper states it (a ``RESOLVED`` field's "per regime and backbone" is the
    paper's value)."""
    if name in PAPER_VALUES:
        return PAPER_VALUES[name]
    return {f.name: f.default for f in dataclasses.fields(TrainConfig)}[name]


def to_dict(config: TrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


def from_dict(values: dict[str, Any]) -> TrainConfig:
    """Build a config, rejecting unknown keys (naming them and the valid ones) and coercing types."""
    known = {f.name: f for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown config key(s) {', '.join(unknown)}; valid keys: {', '.join(known)}"
        )
    coerced = {k: _coerce(known[k], v) for k, v in values.items()}
    return TrainConfig(**coerced)


def load(path: str | Path) -> TrainConfig:
    return from_dict(read_file(path))


def read_file(path: str | Path) -> dict[str, Any]:
    """The raw keys of a JSON config file (validated later, together with any overrides)."""
    path = Path(path)
    try:
        values = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must hold a JSON object of config keys")
    return values


def _coerce(f: dataclasses.Field, value: Any) -> Any:
    kind = type(f.default)
    if f.name == "unfreeze":
        return str(value)
    try:
        if kind is bool:
            if isinstance(value, str):
                if value.lower() in ("true", "1", "yes"):
                    return True
                if value.lower() in ("false", "0", "no"):
                    return False
                raise ValueError(value)
            return bool(value)
        if kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"config key {f.name} must be a {kind.__name__}, got {value!r}"
        ) from None


def _validate(c: TrainConfig) -> None:
    def check(ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(message)

    check(c.regime in REGIMES, f"regime must be one of {', '.join(REGIMES)}, got {c.regime!r}")
    check(c.backbone in BACKBONE_NAMES, f"unknown backbone {c.backbone!r}; valid backbones: {', '.join(BACKBONE_NAMES)}")
    check(0 <= c.head_layers <= MAX_HEAD_LAYERS, f"head_layers must be in [0, {MAX_HEAD_LAYERS}], got {c.head_layers}")
    check(c.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {c.optimizer!r}")
    check(c.weight_decay >= 0.0, f"weight_decay must be >= 0, got {c.weight_decay}")
    check(c.lr_schedule in LR_SCHEDULES, f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {c.lr_schedule!r}")
    check(c.warmup_epochs >= 0, f"warmup_epochs must be >= 0, got {c.warmup_epochs}")
    check(0.0 < c.plateau_factor < 1.0, f"plateau_factor must be in (0, 1), got {c.plateau_factor}")
    check(c.plateau_patience >= 1, f"plateau_patience must be >= 1, got {c.plateau_patience}")
    check(0.0 <= c.label_smoothing < 1.0, f"label_smoothing must be in [0, 1), got {c.label_smoothing}")
    check(c.stall_epochs >= 0, f"stall_epochs must be >= 0 (0 turns the stall guard off), got {c.stall_epochs}")
    check(c.stall_action in STALL_ACTIONS, f"stall_action must be one of {', '.join(STALL_ACTIONS)}, got {c.stall_action!r}")
    check(c.tta in TTA_MODES, f"tta must be one of {', '.join(TTA_MODES)}, got {c.tta!r}")
    check(MIN_INPUT_SIZE <= c.input_size <= MAX_INPUT_SIZE,
          f"input_size must be in [{MIN_INPUT_SIZE}, {MAX_INPUT_SIZE}] pixels, got {c.input_size}")
    for name in ("dense1_units", "dense2_units", "dense3_units", "batch_size"):
        check(getattr(c, name) >= 1, f"{name} must be at least 1, got {getattr(c, name)}")
    for name in ("dropout1", "dropout2", "dropout3"):
        check(0.0 <= getattr(c, name) < 1.0, f"{name} must be in [0, 1), got {getattr(c, name)}")
    check(c.l2 >= 0.0, f"l2 must be >= 0, got {c.l2}")
    for name in ("learning_rate", "frozen_learning_rate"):
        check(getattr(c, name) > 0.0, f"{name} must be > 0, got {getattr(c, name)}")
    check(0.0 <= c.momentum < 1.0, f"momentum must be in [0, 1), got {c.momentum}")
    check(0.0 <= c.bn_momentum < 1.0, f"bn_momentum must be in [0, 1), got {c.bn_momentum}")
    check(c.epochs >= 0, f"epochs must be >= 0, got {c.epochs}")
    check(c.frozen_epochs >= 0, f"frozen_epochs must be >= 0, got {c.frozen_epochs}")
    check(c.frozen_patience >= 1, f"frozen_patience must be >= 1, got {c.frozen_patience}")
    check(c.max_epochs >= 1, "the schedule has no epochs: set epochs (or frozen_epochs) >= 1")
    check(
        c.unfreeze == "all" or (c.unfreeze.isdigit() and int(c.unfreeze) >= 1),
        f"unfreeze must be 'all' or a positive number of top blocks, got {c.unfreeze!r}",
    )
    check(0.0 <= c.rotation <= 180.0, f"rotation must be in [0, 180] degrees, got {c.rotation}")
    check(0.0 <= c.zoom < 1.0, f"zoom must be in [0, 1), got {c.zoom}")
    check(0.0 <= c.shift < 0.5, f"shift must be in [0, 0.5), got {c.shift}")
    check(0.0 <= c.brightness < 1.0, f"brightness must be in [0, 1), got {c.brightness}")
    check(0.0 <= c.contrast < 1.0, f"contrast must be in [0, 1), got {c.contrast}")
    check(c.class_weight in CLASS_WEIGHTS, f"class_weight must be one of {', '.join(CLASS_WEIGHTS)}, got {c.class_weight!r}")
    check(c.sampling in SAMPLINGS, f"sampling must be one of {', '.join(SAMPLINGS)}, got {c.sampling!r}")
    check(0.0 <= c.focal_gamma <= 10.0, f"focal_gamma must be in [0, 10], got {c.focal_gamma}")
    check(0.0 < c.val_fraction < 1.0, f"val_fraction must be in (0, 1), got {c.val_fraction}")
    check(0.0 < c.subset <= 1.0, f"subset must be in (0, 1], got {c.subset}")
    check(c.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}, got {c.precision!r}")
    check(c.frozen_augmentation in FROZEN_AUGMENTATIONS,
          f"frozen_augmentation must be one of {', '.join(FROZEN_AUGMENTATIONS)}, got {c.frozen_augmentation!r}")
    check(1 <= c.frozen_feature_views <= MAX_FEATURE_VIEWS,
          f"frozen_feature_views must be in [1, {MAX_FEATURE_VIEWS}], got {c.frozen_feature_views}")
    if c.regime == "transfer":
        check(c.weights != "none", "the transfer regime needs pretrained weights: «weights» imagenet, a weights file, or a run's model.keras")
