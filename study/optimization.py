"""The optimizer and learning-rate schedule of one training phase, built from the config.

The paper trains with SGD at a constant rate per phase (section IV.D); ``optimizer``, ``lr_schedule``,
``warmup_epochs``, ``weight_decay`` and ``label_smoothing`` are what FER practice tunes beside it.
Every phase gets a fresh optimizer (its state and schedule start again), as a recompile after
freezing or unfreezing requires anyway.
"""
from __future__ import annotations

import keras

from study.config import TrainConfig


def make_optimizer(config: TrainConfig, learning_rate: float, epochs: int, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """``config.optimizer`` at ``learning_rate``, under ``config.lr_schedule`` over ``epochs`` epochs."""
    rate = learning_rate_schedule(config, learning_rate, epochs, steps_per_epoch)
    decay = config.weight_decay or None
    if config.optimizer == "adam":
        return keras.optimizers.Adam(rate, weight_decay=decay)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(rate, weight_decay=config.weight_decay)
    return keras.optimizers.SGD(rate, momentum=config.momentum, nesterov=config.nesterov, weight_decay=decay)


def learning_rate_schedule(config: TrainConfig, learning_rate: float, epochs: int,
                           steps_per_epoch: int) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """After ``warmup_epochs`` of linear warmup from 0 (capped below the phase's steps): a constant
    rate ("constant", and "plateau", whose callback lowers it; "plateau" takes no warmup, since its
    callback sets the rate itself), or cosine decay to 0 over the rest of the phase ("cosine")."""
    total = max(1, epochs * steps_per_epoch)
    warmup = min(config.warmup_epochs * steps_per_epoch, total - 1) if config.lr_schedule != "plateau" else 0
    if config.lr_schedule != "cosine" and warmup <= 0:
        return learning_rate
    if warmup <= 0:
        return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=total)
    # alpha=1: the "decay" after the warmup stays at the target, a constant rate
    alpha = 0.0 if config.lr_schedule == "cosine" else 1.0
    return keras.optimizers.schedules.CosineDecay(0.0, decay_steps=total - warmup, warmup_target=learning_rate,
                                                  warmup_steps=warmup, alpha=alpha)


def schedule_callbacks(config: TrainConfig) -> list[keras.callbacks.Callback]:
    """``lr_schedule="plateau"``: Keras's ReduceLROnPlateau on val_loss; the others need none."""
    if config.lr_schedule != "plateau":
        return []
    return [keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=config.plateau_factor,
                                              patience=config.plateau_patience, verbose=0)]


def current_learning_rate(model: keras.Model) -> float:
    """The rate the optimizer applies now (a schedule's value at the current step)."""
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
