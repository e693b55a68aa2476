"""Against the peer, end to end: one small transfer search by our toolkit vs the same search written
plainly with keras-tuner, as its documentation shows.

Both run keras-tuner's Hyperband (same ``max_epochs``, ``factor=3``, seed, one iteration, so the same
brackets and trial count) over the paper's head on a frozen DenseNet169, on the same images, and
both oracles draw from one declaration of the space with one seed (``shared_hyperparameters``): they
try the same configurations, so the accuracies compare training, not luck of the draw (a later
round's promoted configuration may still differ, as it follows each side's scores; the row counts
the configurations the two share). The
peer is ``kt.Hyperband`` over a ``build(hp)`` that builds DenseNet169, loads the weights and adds the
head, fed by ``keras.utils.image_dataset_from_directory`` from folders this benchmark writes from
our own train/validation split: every epoch pushes every image through the frozen backbone. Ours
is the toolkit's keras-tuner backend (``study.tuning.keras_tuner_backend``) with a space that
fixes what the peer does not search (no augmentation, no fine-tune phase): every trial is a full
``study.training.train`` run writing all its artifacts, and the frozen phase trains on cached
features. Ours starts later rounds from fresh weights, where keras-tuner continues a checkpoint:
ours trains more epochs.

Pretrained weights: ImageNet cannot be downloaded here, so both load one DenseNet169 weights file
trained from scratch on real faces (``common.face_pretrained``: a stratified 40% of the training
split, trained once and cached), and both searches draw their training and validation faces from
the other 60%: transfer from faces the searches never see, NOT from ImageNet. Where ImageNet
weights exist, ``FER_BENCH_WEIGHTS=<keras's densenet169 ..._notop.h5>`` makes both use them. Both
best val accuracies are judged against the validation faces' majority rate (a binomial test,
p < 0.01, as ``learned`` is everywhere): a speed ratio between searches that learned nothing would
mean nothing. "Best val accuracy" is keras-tuner's score for both: the best epoch of the best trial
(keras-tuner keeps each trial's best-epoch checkpoint); ours is read from its trials' histories,
and the row also gives the best of our kept models, which hold each trial's epoch of least val_loss
(the paper's early stopping restores it) and so can score lower. Ours must have learned by the
stricter figure. ``--quick`` (a smoke test) uses the generated sample and random-init weights.
"""
from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import keras
import keras_tuner as kt
import optuna
import pandas as pd

from benchmarks.common import (
    Clock,
    Row,
    backbone_weights,
    face_pretrained,
    faces,
    fresh_feature_cache,
    from_pool,
    log,
    main,
    sample,
    scratch_dir,
    write_folders,
)
from benchmarks.common import seconds as fmt_seconds
from benchmarks.frozen_features import first
from search_spaces import Fixed, Float, Space, from_keras_tuner
from search_spaces.regimes import TRANSFER
from study.data import Dataset, load_dataset
from study.events import SearchEvents
from study.learning import baseline, learned_pvalue
from study.model import TORCH_MEAN_RGB, TORCH_STD_RGB
from study.backend import releasing_traced_graphs
from study.store import records
from study.tuning.keras_tuner_backend.tuner import make_oracle
from study.tuning.keras_tuner_backend.tuner import run as run_keras_tuner
from study.tuning.objective import Objective

GOAL = 5.0
N_TRAIN, N_VAL = 9000, 1500  # real faces, from those the backbone's pretraining did not see
WEIGHTS_ENV = "FER_BENCH_WEIGHTS"  # a backbone weights file for both searches, instead of a random one
FACTOR = 3
FIXED = {"epochs": 5, "rotation": 0.0, "zoom": 0.0, "flip": False, "class_weight": "none", "unfreeze": "all",
         "batch_size": 64, "nesterov": False,
         # what the peer's build(hp) has no knob for: its Adam, constant rate, plain loss, 3-layer head
         "optimizer": "adam", "lr_schedule": "constant", "label_smoothing": 0.0, "head_layers": 3, "shift": 0.0,
         "brightness": 0.0, "contrast": 0.0,
         # the fine-tune phase's rate: FrozenOnly drops that phase, and a searched rate nobody uses would make
         # our configurations differ from the peer's in a value that changes nothing
         "learning_rate": 1e-3}
# Both search Adam's rate over keras-tuner's getting-started range. Adam, as that guide's examples use:
# the features of a backbone pretrained here from scratch are large, and SGD at 0.01 on them diverges
# (benchmarks.frozen_augmentation says more).
RATE = Float("frozen_learning_rate", 1e-4, 1e-2, log=True)
SEED = 0  # both oracles'; keras-tuner's own seed is SEED + 1, as make_oracle gives it (it takes 0 for none)


def build_peer(hp: kt.HyperParameters, backbone_name: str, weights: str) -> keras.Model:
    """The plain recipe: application backbone, frozen, the paper's head, Adam; hyperparameters as ours."""
    application = {"densenet169": keras.applications.DenseNet169, "mobilenetv3small":
                   keras.applications.MobileNetV3Small}[backbone_name]
    backbone = application(include_top=False, weights=None, input_shape=(48, 48, 3))
    backbone.load_weights(weights)
    backbone.trainable = False
    inputs = keras.Input((48, 48, 1))
    x = keras.layers.Concatenate()([inputs, inputs, inputs])
    x = keras.layers.Rescaling(1 / 255)(x)
    x = keras.layers.Normalization(mean=TORCH_MEAN_RGB, variance=[s**2 for s in TORCH_STD_RGB])(x)
    x = keras.layers.GlobalAveragePooling2D()(backbone(x, training=False))
    l2 = hp.Float("l2", 1e-5, 1e-1, sampling="log")
    for i, (units, rate) in enumerate((((128, 256, 512), 0.6), ((512, 1024, 2048), 0.7), ((256, 512, 1024), 0.7)), 1):
        x = keras.layers.Dense(hp.Choice(f"dense{i}_units", units), activation="relu",
                               kernel_regularizer=keras.regularizers.L2(l2))(x)
        x = keras.layers.Dropout(hp.Float(f"dropout{i}", 0.0, rate))(x)
    model = keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(x))
    model.compile(optimizer=keras.optimizers.Adam(hp.Float(RATE.name, RATE.low, RATE.high, sampling="log")),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def shared_hyperparameters(max_epochs: int) -> kt.HyperParameters:
    """Our space, declared on keras-tuner's container as our backend declares it (same names, order and
    ranges): given to the peer's oracle (keras-tuner's documented ``hyperparameters=`` with
    ``tune_new_entries=False``), so that both oracles, seeded alike, draw the same configurations. The
    peer's ``build(hp)`` declares its own hyperparameters as the getting-started guide does; keras-tuner
    hands a name it already holds the oracle's value (``HyperParameters._register``)."""
    hps = kt.HyperParameters()
    from_keras_tuner(frozen_only_space(max_epochs), hps)
    return hps


def configurations(values: list[dict], max_epochs: int) -> list[tuple]:
    """The searched values of each trial (the space's non-fixed parameters; None for one its fixed choices
    never activate, SGD's momentum under Adam), comparable across the two searches."""
    names = [p.name for p in frozen_only_space(max_epochs).params if not isinstance(p, Fixed)]
    return [tuple(round(v[n], 9) if isinstance(v.get(n), float) else v.get(n) for n in names) for v in values]


def peer_search(data: Dataset, backbone: str, weights: str, max_epochs: int) -> tuple[float, float, list[tuple]]:
    """(seconds, best val accuracy, each trial's configuration) of the plain keras-tuner search."""
    folder = write_folders(scratch_dir() / "peer-data", {"train": data.train, "val": data.val})
    common = {"color_mode": "grayscale", "image_size": (48, 48), "batch_size": 64, "label_mode": "categorical",
              "verbose": False}
    keras.utils.set_random_seed(SEED)  # as keras' docs do for a reproducible run (ours seeds every trial)
    with releasing_traced_graphs(), Clock() as clock:  # purged after: the leak is the peer's, not ours
        train = keras.utils.image_dataset_from_directory(folder / "train", shuffle=True, seed=0, **common)
        val = keras.utils.image_dataset_from_directory(folder / "val", shuffle=False, **common)
        tuner = kt.Hyperband(lambda hp: build_peer(hp, backbone, weights), objective="val_accuracy",
                             max_epochs=max_epochs, factor=FACTOR, hyperband_iterations=1, seed=SEED + 1,
                             hyperparameters=shared_hyperparameters(max_epochs), tune_new_entries=False,
                             directory=str(scratch_dir() / "peer-kt"), project_name="peer", overwrite=True)
        with contextlib.redirect_stdout(io.StringIO()):
            tuner.search(train, validation_data=val, verbose=0)
    best = tuner.oracle.get_best_trials(1)[0].score
    trials = sorted(tuner.oracle.trials.values(), key=lambda t: t.trial_id)
    return clock.seconds, float(best), configurations([t.hyperparameters.values for t in trials], max_epochs)


def frozen_only_space(max_epochs: int) -> Space:
    """The transfer space with what the peer does not search pinned (inside the space's own ranges:
    phase-1 epochs are then capped by Hyperband's budget, and ``FrozenOnly`` drops the fine-tune)."""
    pinned = {**FIXED, "frozen_epochs": 5, "frozen_patience": max_epochs}
    return Space("transfer", tuple(Fixed(p.name, pinned[p.name]) if p.name in pinned else RATE if p.name == RATE.name
                                   else p for p in TRANSFER.params))


class FrozenOnly(Objective):
    """The toolkit's objective with the fine-tune phase removed, as the peer has none."""

    def _train(self, trial, config, keeping):
        return super()._train(trial, config.replace(epochs=0), keeping)


def our_search(data: Dataset, backbone: str, weights: str, max_epochs: int,
               trials: int) -> tuple[float, float, float, list[tuple]]:
    """(seconds, best val accuracy of a kept model, best val accuracy of any epoch, each trial's
    configuration) of the toolkit's
    keras-tuner Hyperband search, same budget. keras-tuner scores a trial by its best epoch's
    objective (the epoch whose checkpoint it keeps); a trial of ours keeps the epoch of least
    val_loss (the paper's early stopping restores it), so its score can be below its best epoch's
    accuracy. The third figure reads every epoch's val accuracy from the trials' history.csv: the
    peer's definition, applied to ours."""
    study = optuna.create_study(direction="maximize", study_name="ours", pruner=optuna.pruners.NopPruner())  # as search does
    objective = FrozenOnly("ours", frozen_only_space(max_epochs), {"backbone": backbone, "weights": weights}, data,
                          scratch_dir() / "ours-runs", max_epochs=max_epochs)
    oracle = make_oracle("hyperband", "accuracy", "maximize", max_epochs=max_epochs, seed=SEED, failures=trials + 1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with fresh_feature_cache(), Clock() as clock:
        run_keras_tuner(study, objective, oracle, tuner_name="hyperband", trials=trials, total=trials, timeout=None,
                        events=SearchEvents())
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    any_epoch = max(float(pd.read_csv(Path(records.run_dir(t)) / "history.csv")["val_accuracy"].max())
                    for t in complete)
    tried = [t.params for t in sorted(study.trials, key=lambda t: t.number)]
    return clock.seconds, float(study.best_value), any_epoch, configurations(tried, max_epochs)


def run(quick: bool) -> list[Row]:
    if quick:
        folder, note = sample(per_class=30), "generated sample, random-init weights (--quick)"
        backbone, data = "mobilenetv3small", first(load_dataset(folder), 64, 32)
        weights, max_epochs = str(backbone_weights("mobilenetv3small")), 1
    else:
        folder, note = faces(quick)
        backbone, max_epochs = "densenet169", 3
        pretrained = face_pretrained(backbone, folder)
        data = from_pool(folder, pretrained.pool, N_TRAIN, N_VAL)
        weights = os.environ.get(WEIGHTS_ENV) or str(pretrained.weights)
        note = ", ".join(filter(None, [note, "ImageNet weights from " + WEIGHTS_ENV if os.environ.get(WEIGHTS_ENV)
                                       else pretrained.describe()]))
    log(f"peer: plain keras-tuner Hyperband, {backbone}")
    peer_seconds, peer_best, peer_tried = peer_search(data, backbone, weights, max_epochs)
    trials = len(peer_tried)
    log(f"peer: ours, {trials} trials")
    our_seconds, our_kept, our_best, our_tried = our_search(data, backbone, weights, max_epochs, trials)
    alike = sum(1 for config in our_tried if config in peer_tried)
    keras.backend.clear_session()
    ratio = peer_seconds / our_seconds
    majority = baseline(data.val.y).majority_rate
    learned = {name: learned_pvalue(round(acc * len(data.val.y)), len(data.val.y), majority) < 0.01
               for name, acc in (("peer", peer_best), ("ours", our_kept))}
    where = f"{backbone}, {len(data.train.y):,}+{len(data.val.y):,} images" + (f"; {note}" if note else "")
    said = lambda ok: "learned" if ok else "did NOT learn"
    return [Row(f"peer: transfer search, Hyperband max_epochs={max_epochs}, {trials} trials, {alike} of {len(our_tried)} "
                f"configurations the peer's too ({where}); wall time, "
                f"best val acc of any trial's epoch, keras-tuner's score (majority rate {majority:.3f})",
                f"{fmt_seconds(peer_seconds)}, {peer_best:.3f} ({said(learned['peer'])})",
                f"{fmt_seconds(our_seconds)}, {our_best:.3f} ({said(learned['ours'])}; kept models' best {our_kept:.3f})",
                ratio,
                f">= {GOAL:.0f}x, acc >= peer's, both learned",
                ratio >= GOAL and our_best >= peer_best and all(learned.values()))]


if __name__ == "__main__":
    main(run)
