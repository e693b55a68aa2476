"""One typed, validated configuration for a training run; the paper's values are the defaults.

``TrainConfig`` is the single place that knows the paper's settings (section IV of
``../shared/paper.md``). The search spaces read their defaults from here, the CLI builds one from
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
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
FROZEN_AUGMENTATIONS = ("live", "none", "views")
MAX_FEATURE_VIEWS = 32  # each view costs one backbone pass over the training split, and its memory


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what a run trains. Unknown keys are rejected by ``from_dict``."""

    regime: str = "scratch"
    backbone: str = "densenet169"
    # "imagenet", "none", a backbone weights file, or a previous run's model.keras / run dir.
    # Empty means the regime's default: "none" for scratch, "imagenet" for transfer.
    weights: str = ""

    # The paper's head: GAP -> Dense256 -> Drop.3 -> Dense1024 -> Drop.5 -> Dense512 -> Drop.5 -> 7.
    dense1_units: int = 256
    dense2_units: int = 1024
    dense3_units: int = 512
    dropout1: float = 0.3
    dropout2: float = 0.5
    dropout3: float = 0.5
    l2: float = 0.01  # the paper names L2 on every Dense layer but not its factor; 0.01 is Keras's own default

    # Optimizer (SGD). learning_rate / epochs: scratch's only phase, or transfer's fine-tune phase.
    batch_size: int = 64
    learning_rate: float = 0.001
    momentum: float = 0.0
    nesterov: bool = False
    epochs: int = 20

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

    class_weight: str = "none"
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

    def __post_init__(self) -> None:
        if not self.weights:
            object.__setattr__(self, "weights", "none" if self.regime == "scratch" else "imagenet")
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


def field_names() -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(TrainConfig))


def field_default(name: str) -> Any:
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
    for name in ("dense1_units", "dense2_units", "dense3_units", "batch_size"):
        check(getattr(c, name) >= 1, f"{name} must be at least 1, got {getattr(c, name)}")
    for name in ("dropout1", "dropout2", "dropout3"):
        check(0.0 <= getattr(c, name) < 1.0, f"{name} must be in [0, 1), got {getattr(c, name)}")
    check(c.l2 >= 0.0, f"l2 must be >= 0, got {c.l2}")
    for name in ("learning_rate", "frozen_learning_rate"):
        check(getattr(c, name) > 0.0, f"{name} must be > 0, got {getattr(c, name)}")
    check(0.0 <= c.momentum < 1.0, f"momentum must be in [0, 1), got {c.momentum}")
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
    check(c.class_weight in CLASS_WEIGHTS, f"class_weight must be one of {', '.join(CLASS_WEIGHTS)}, got {c.class_weight!r}")
    check(0.0 < c.val_fraction < 1.0, f"val_fraction must be in (0, 1), got {c.val_fraction}")
    check(0.0 < c.subset <= 1.0, f"subset must be in (0, 1], got {c.subset}")
    check(c.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}, got {c.precision!r}")
    check(c.frozen_augmentation in FROZEN_AUGMENTATIONS,
          f"frozen_augmentation must be one of {', '.join(FROZEN_AUGMENTATIONS)}, got {c.frozen_augmentation!r}")
    check(1 <= c.frozen_feature_views <= MAX_FEATURE_VIEWS,
          f"frozen_feature_views must be in [1, {MAX_FEATURE_VIEWS}], got {c.frozen_feature_views}")
    if c.regime == "transfer":
        check(c.weights != "none", "the transfer regime needs pretrained weights: --weights imagenet, a weights file, or a run's model.keras")
