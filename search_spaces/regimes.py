"""The search space of each regime: ranges here, the paper's values (the defaults) in TrainConfig.

Both regimes search the head (its depth, units, dropouts, L2), the optimizer (SGD with momentum and
Nesterov, Adam, AdamW with weight decay), the learning rate and its schedule (constant, cosine with
warmup, reduce-on-plateau), label smoothing, the batch size, the augmentation (the paper's rotation,
zoom and flip; shift, brightness and contrast) and class weighting. Scratch searches its single
phase's epochs; transfer adds the frozen phase (its learning rate, epochs, early-stopping patience),
how much of the backbone to unfreeze, the fine-tune epochs and the size the faces are upsampled to
for the backbone. Parameters that only some choices use
are conditional (``When``). The command line prints each one (its ``space`` command).
"""
from __future__ import annotations

from typing import Any, Mapping

from search_spaces.hp import Choice, Float, Int, Param, Space, When, active_names, cap_epochs, from_dict, pin
from study import config as config_mod
from study.config import REGIMES, TrainConfig
from study.errors import ConfigError

_LAYERS_1 = When("head_layers", (1, 2, 3))
_LAYERS_2 = When("head_layers", (2, 3))
_LAYERS_3 = When("head_layers", (3,))


def _head() -> tuple[Param, ...]:
    """The paper's three Dense layers, or fewer (0: global average pooling straight into softmax)."""
    return (
        Int("head_layers", 0, 3),
        Choice("dense1_units", (128, 256, 512), when=_LAYERS_1),
        Float("dropout1", 0.0, 0.6, when=_LAYERS_1),
        Choice("dense2_units", (512, 1024, 2048), when=_LAYERS_2),
        Float("dropout2", 0.0, 0.7, when=_LAYERS_2),
        Choice("dense3_units", (256, 512, 1024), when=_LAYERS_3),
        Float("dropout3", 0.0, 0.7, when=_LAYERS_3),
        Float("l2", 1e-5, 1e-1, log=True, when=_LAYERS_1),  # on the hidden Dense layers' kernels
    )


def _optimizer(learning_rate: Float) -> tuple[Param, ...]:
    sgd = When("optimizer", ("sgd",))
    return (
        Choice("optimizer", ("sgd", "adam", "adamw"), default="sgd"),  # the paper's; defaults_over: per backbone
        learning_rate,
        Float("momentum", 0.0, 0.99, when=sgd),
        Choice("nesterov", (False, True), when=sgd),
        Float("weight_decay", 1e-5, 1e-1, log=True, default=1e-2, when=When("optimizer", ("adamw",))),
        Choice("lr_schedule", ("constant", "cosine", "plateau")),
        Int("warmup_epochs", 0, 5, when=When("lr_schedule", ("constant", "cosine"))),
        Float("label_smoothing", 0.0, 0.2),
        Choice("focal_gamma", (0.0, 1.0, 2.0)),  # 0: cross-entropy (the paper); 2: Lin et al.'s
        Choice("batch_size", (32, 64, 128)),
    )


def _augmentation() -> tuple[Param, ...]:
    return (
        Float("rotation", 0.0, 30.0),
        Float("zoom", 0.0, 0.3),
        Choice("flip", (False, True)),
        Float("shift", 0.0, 0.2),
        Float("brightness", 0.0, 0.3),
        Float("contrast", 0.0, 0.4),
        Choice("class_weight", ("none", "balanced")),
        Choice("sampling", ("uniform", "balanced")),
    )


def _transfer_schedule() -> tuple[Param, ...]:
    """The frozen phase, then how much to unfreeze ("all", or the top K backbone blocks)."""
    return (
        Float("frozen_learning_rate", 1e-4, 1e-1, log=True),
        Int("frozen_epochs", 5, 50, step=5),
        Int("frozen_patience", 1, 6),
        Choice("unfreeze", ("all", "2", "8")),
        Int("epochs", 5, 40, step=5),
        # upsampling inside the model: ImageNet's features were learnt on larger objects (the paper: 48)
        Choice("input_size", (48, 72, 96)),
    )


# Fine-tuning a pretrained backbone searches lower rates: the demo's best transfer trial fine-tuned at
# 0.06 and its final runs diverged (NaN loss); the paper's 0.001 sits inside both ranges.
SCRATCH = Space("scratch", (*_head(), *_optimizer(Float("learning_rate", 1e-4, 1e-1, log=True)),
                            Int("epochs", 10, 60, step=5), *_augmentation()))
TRANSFER = Space("transfer", (*_head(), *_optimizer(Float("learning_rate", 1e-5, 1e-2, log=True)),
                              *_transfer_schedule(), *_augmentation()))
SPACES: dict[str, Space] = {"scratch": SCRATCH, "transfer": TRANSFER}
# What an edge search (a metric against latency or size) weighs: from a network 150 times smaller than the
# paper's to the paper's own. Transfer only over backbones with ImageNet weights (mini_xception has none).
EDGE_BACKBONES: dict[str, tuple[str, ...]] = {
    "scratch": ("mini_xception", "mobilenetv3small", "efficientnetb0", "densenet121", "densenet169"),
    "transfer": ("mobilenetv3small", "efficientnetb0", "densenet121", "densenet169"),
}


def edge_backbones(regime: str) -> tuple[str, ...]:
    space_for(regime)  # an unknown regime is a ConfigError
    return EDGE_BACKBONES[regime]


def with_backbones(space: Space, backbones: tuple[str, ...]) -> Space:
    """``space`` with the backbone as its first parameter, one of ``backbones`` (the paper's by default, where
    it is one of them); ``space`` itself when there are none to choose from."""
    if not backbones:
        return space
    paper = TrainConfig().backbone
    default = paper if paper in backbones else backbones[-1]
    return Space(space.regime, (Choice("backbone", tuple(backbones), default=default), *space.params))


def space_for(regime: str) -> Space:
    if regime not in SPACES:
        raise ConfigError(f"regime must be one of {', '.join(REGIMES)}, got {regime!r}")
    return SPACES[regime]


def to_config(
    regime: str, values: Mapping[str, Any], base: Mapping[str, Any] | None = None, *, max_epochs: int | None = None
) -> TrainConfig:
    """Sampled ``values`` (validated, paper values filled in, epochs capped) over ``base`` settings.

    ``base`` holds what the search does not vary (backbone, weights, seed, subset, ...). A base key
    that names a parameter of the space pins it (``pin``): the search does not vary it. ``values`` with a
    backbone are an edge search's (``with_backbones``).
    """
    base = dict(base or {})
    resolved = config_mod.from_dict({**base, "regime": regime})  # every base key checked, and typed
    searched = with_backbones(space_for(regime), EDGE_BACKBONES[regime] if "backbone" in values else ())
    space = pin(searched, {k: getattr(resolved, k) for k in base})
    sampled = cap_epochs(from_dict(space, {**defaults_over(space, base), **values}), max_epochs)
    return config_mod.from_dict({**base, **sampled, "regime": regime})


def defaults_over(space: Space, base: Mapping[str, Any]) -> dict[str, Any]:
    """The space's defaults as a run over ``base`` trains them: where the configuration resolves a
    parameter for its regime and backbone (``optimizer``: Adam for a DenseNet from scratch), that value,
    not the paper's. A search's trial 0 trains these: the same configuration as ``train`` with the base."""
    resolved = config_mod.from_dict({**base, "regime": space.regime})
    everything = {p.name: p.default for p in space.params}
    for param in space.params:
        value = getattr(resolved, param.name)
        if param.name not in base and value != param.default and param.contains(value):
            everything[param.name] = value
    return {name: everything[name] for name in active_names(space, everything)}


def max_schedule_epochs(space: Space, max_epochs: int | None = None) -> int:
    """The most epochs any trial of ``space`` trains (both phases for transfer), after the cap:
    optuna's HyperbandPruner ``max_resource``."""
    return sum(_phase_epochs(space, max_epochs))


def max_phase_epochs(space: Space, max_epochs: int | None = None) -> int:
    """The most epochs one phase trains, after the cap: keras-tuner Hyperband's ``max_epochs``
    (its per-trial budget caps each phase, as a search's epoch cap does)."""
    return max(_phase_epochs(space, max_epochs))


def _phase_epochs(space: Space, max_epochs: int | None) -> list[int]:
    phases = ("frozen_epochs", "epochs") if space.regime == "transfer" else ("epochs",)
    highest = [int(getattr(space[name], "high", space[name].default)) for name in phases]
    return [min(h, max_epochs or h) for h in highest]
