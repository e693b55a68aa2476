"""Search spaces are pure descriptions: three adapters read one space, defaults are the paper's."""
from __future__ import annotations

import dataclasses
import subprocess
import sys

import keras_tuner as kt
import optuna
import pytest

from search_spaces import (
    SCRATCH,
    SPACES,
    TRANSFER,
    Choice,
    Fixed,
    Float,
    Int,
    Space,
    When,
    cap_epochs,
    describe,
    distributions,
    from_dict,
    from_keras_tuner,
    from_optuna,
    grid_space,
    grid_values,
    space_for,
    to_config,
)
from search_spaces.regimes import max_phase_epochs, max_schedule_epochs
from study.config import TrainConfig, field_default, to_dict
from study.errors import ConfigError

REQUIRED = {
    "dense1_units", "dense2_units", "dense3_units", "dropout1", "dropout2", "dropout3", "l2", "learning_rate",
    "momentum", "nesterov", "epochs", "rotation", "zoom", "flip", "class_weight", "batch_size",
    # what FER practice tunes beside the paper's settings
    "head_layers", "optimizer", "weight_decay", "lr_schedule", "warmup_epochs", "label_smoothing", "shift",
    "brightness", "contrast",
    # the rare classes (issue 29): off by default, as in the paper
    "focal_gamma", "sampling",
}
TRANSFER_ONLY = {"frozen_learning_rate", "frozen_epochs", "frozen_patience", "unfreeze", "input_size"}


@pytest.mark.parametrize("regime", ["scratch", "transfer"])
def test_each_space_covers_the_brief_and_defaults_to_the_paper(regime):
    space = space_for(regime)
    expected = REQUIRED | (TRANSFER_ONLY if regime == "transfer" else set())
    assert set(space.names) == expected
    for param in space.params:
        assert param.contains(param.default)
    # every parameter the default configuration uses defaults to TrainConfig's value; one it does not use
    # (AdamW's weight decay under SGD) may default to a value inside its range that TrainConfig's "off" is not
    assert space.defaults() == {name: field_default(name) for name in space.defaults()}
    assert set(space.names) - set(space.defaults()) == {"weight_decay"}


def test_log_scales_where_magnitudes_matter():
    for space in SPACES.values():
        assert space["l2"].log and space["learning_rate"].log
    assert TRANSFER["frozen_learning_rate"].log
    assert TRANSFER["unfreeze"].values == ("all", "2", "8")


@pytest.mark.parametrize("regime", ["scratch", "transfer"])
def test_dict_adapter_with_no_values_is_the_default_config(regime):
    assert to_config(regime, {}) == TrainConfig(regime=regime)
    assert to_dict(to_config(regime, {}, {"seed": 3})) == to_dict(TrainConfig(regime=regime, seed=3))


def test_dict_adapter_rejects_unknown_keys_and_values_outside_the_space():
    with pytest.raises(ConfigError, match="unknown scratch search parameter.*frozen_epochs"):
        from_dict(SCRATCH, {"frozen_epochs": 5})
    with pytest.raises(ConfigError, match=r"epochs=7 lies outside .*10 \.\. 60 step 5"):
        from_dict(SCRATCH, {"epochs": 7})
    with pytest.raises(ConfigError, match="learning_rate"):
        from_dict(SCRATCH, {"learning_rate": 0.5})
    with pytest.raises(ConfigError, match="unfreeze"):
        from_dict(TRANSFER, {"unfreeze": "3"})


def test_dict_adapter_maps_equal_values_to_the_spaces_own():
    values = from_dict(TRANSFER, {"unfreeze": 2, "nesterov": 1, "batch_size": 32.0, "frozen_epochs": 10.0})
    assert values["unfreeze"] == "2" and values["nesterov"] is True
    assert values["batch_size"] == 32 and isinstance(values["frozen_epochs"], int)


@pytest.mark.parametrize("space", [SCRATCH, TRANSFER], ids=["scratch", "transfer"])
def test_optuna_fixed_trial_reads_the_space(space):
    chosen = {**space.defaults(), "learning_rate": 0.01, "batch_size": 128}
    assert from_optuna(space, optuna.trial.FixedTrial(chosen)) == chosen


@pytest.mark.parametrize("space", [SCRATCH, TRANSFER], ids=["scratch", "transfer"])
def test_keras_tuner_adapter_declares_the_same_names_and_paper_defaults(space):
    hp = kt.HyperParameters()
    assert from_keras_tuner(space, hp) == space.defaults()
    assert [p.name for p in hp.space] == list(space.names)
    assert {p.name: p.default for p in hp.space if hp.is_active(p)} == {
        n: (int(v) if isinstance(v, bool) else v) for n, v in space.defaults().items()  # kt stores bools as 0/1
    }


def test_optuna_samples_lie_in_the_space_and_distributions_match():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = set()
    for _ in range(40):
        trial = study.ask()
        values = from_optuna(TRANSFER, trial)
        assert from_dict(TRANSFER, values) == values
        assert trial.distributions == distributions(TRANSFER, values)
        seen |= set(values)
        study.tell(trial, 0.0)
    assert seen == set(TRANSFER.names)


def test_conditional_parameters_are_sampled_only_when_their_condition_holds():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=2))
    for _ in range(40):
        trial = study.ask()
        values = from_optuna(SCRATCH, trial)
        assert ("momentum" in values) == ("nesterov" in values) == (values["optimizer"] == "sgd")
        assert ("weight_decay" in values) == (values["optimizer"] == "adamw")
        assert ("warmup_epochs" in values) == (values["lr_schedule"] in ("constant", "cosine"))
        assert ("dense3_units" in values) == (values["head_layers"] == 3)
        assert ("dense1_units" in values) == ("l2" in values) == (values["head_layers"] >= 1)
        assert set(trial.params) == set(values)
        study.tell(trial, 0.0)
    config = to_config("scratch", {"optimizer": "adam", "head_layers": 1})
    assert (config.optimizer, config.head_layers, config.momentum) == ("adam", 1, TrainConfig().momentum)
    with pytest.raises(ValueError, match="must come before"):
        Space("scratch", (Float("momentum", 0.0, 0.99, when=When("optimizer", ("sgd",))),
                          Choice("optimizer", ("sgd", "adam"))))


def test_keras_tuner_declares_conditional_parameters_in_scopes():
    hp = kt.HyperParameters()
    from_keras_tuner(SCRATCH, hp)
    hp.values.update({"optimizer": "adamw", "weight_decay": 0.05, "head_layers": 1})  # as an oracle would set them
    values = from_keras_tuner(SCRATCH, hp)
    assert values["optimizer"] == "adamw" and "weight_decay" in values and "momentum" not in values
    assert "dense1_units" in values and "dense2_units" not in values


class _Build(kt.HyperModel):
    def __init__(self, space):
        super().__init__()
        self.space = space

    def build(self, hp):
        return from_keras_tuner(self.space, hp)


def test_a_pinned_parent_leaves_its_conditional_parameters_undeclared(tmp_path):
    """keras-tuner activates every conditional scope when a tuner starts, by setting the parent to the
    scope's value; a parent pinned outside that value would then be refused, so the scope is never declared."""
    pinned = Space("scratch", tuple(Fixed(p.name, "sgd") if p.name == "optimizer" else p for p in SCRATCH.params))
    tuner = kt.RandomSearch(_Build(pinned), objective="val_accuracy", max_trials=1, directory=str(tmp_path))
    space = tuner.oracle.get_space()
    assert "weight_decay" not in space.values and space.values["optimizer"] == "sgd"
    assert "momentum" in space.values

def test_paper_default_outside_its_range_is_refused_when_the_space_is_defined():
    with pytest.raises(ValueError, match="learning_rate"):
        Float("learning_rate", 0.01, 0.1)
    with pytest.raises(ValueError, match="batch_size"):
        Choice("batch_size", (16, 32))
    with pytest.raises(ValueError, match="step 1"):
        Int("epochs", 1, 64, step=2, log=True)
    with pytest.raises(ValueError, match="twice"):
        Space("scratch", (Fixed("epochs", 3), Int("epochs", 1, 30)))


def test_regime_specific_default_overrides_the_config():
    assert Int("epochs", 1, 60, default=40).default == 40


def test_grid_enumerates_choices_and_pins_ranges_to_the_paper():
    grid = grid_space(TRANSFER)
    values = grid_values(grid)
    assert set(values) == {p.name for p in TRANSFER.params if isinstance(p, Choice)}
    assert grid["learning_rate"] == Fixed("learning_rate", 0.001)
    assert from_optuna(grid, optuna.trial.FixedTrial({k: v[0] for k, v in values.items()}))["l2"] == field_default("l2")
    with pytest.raises(ConfigError, match="Choice/Fixed"):
        grid_values(SCRATCH)


def test_max_epochs_caps_each_phase_after_validation():
    values = from_dict(TRANSFER, {"epochs": 40, "frozen_epochs": 50})
    assert cap_epochs(values, 2) == {**values, "epochs": 2, "frozen_epochs": 2}
    config = to_config("transfer", values, {"weights": "imagenet"}, max_epochs=2)
    assert (config.epochs, config.frozen_epochs, config.max_epochs) == (2, 2, 4)
    assert cap_epochs(values, None) == values
    with pytest.raises(ConfigError):
        cap_epochs(values, 0)
    assert max_schedule_epochs(TRANSFER) == 90 and max_schedule_epochs(TRANSFER, 3) == 6
    assert max_phase_epochs(TRANSFER) == 50 and max_schedule_epochs(SCRATCH, 1) == 1


def test_describe_gives_plain_rows():
    rows = describe(TRANSFER)
    assert [r["name"] for r in rows] == list(TRANSFER.names)
    assert next(r for r in rows if r["name"] == "l2") == {
        "name": "l2", "kind": "float", "range": "1e-05 .. 0.1", "log": True, "default": TrainConfig().l2,
        "when": "head_layers in 1, 2, 3"}


def test_unknown_regime_is_a_config_error():
    with pytest.raises(ConfigError, match="regime"):
        space_for("finetune")


def test_spaces_import_no_tensorflow():
    code = "import sys, search_spaces; sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_every_space_value_is_a_trainconfig_field():
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert all(set(space.names) <= fields for space in SPACES.values())


def test_space_shows_every_setting_it_does_not_vary_with_where_its_default_comes_from():
    from click.testing import CliRunner

    from cli import cli

    result = CliRunner().invoke(cli, ["space", "--regime", "scratch"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") == 4}
    assert "0.9" in rows["bn_momentum"] and "ours (paper silent)" in rows["bn_momentum"]
    assert "48" in rows["input_size"] and "paper" in rows["input_size"]
    assert "learning_rate" not in rows  # searched: in the first table, not this one
    sources = {line.split("│")[1].strip(): line.split("│")[6].strip() for line in result.output.splitlines()
               if line.count("│") == 8}  # the first table; a long source wraps onto a row without a name
    assert sources["optimizer"].startswith("paper: sgd;") and sources["lr_schedule"].startswith("paper: constant;")


def test_trial_0_trains_what_train_trains_over_the_same_base():
    from search_spaces import defaults_over

    assert defaults_over(SCRATCH, {})["optimizer"] == "adam" and "momentum" not in defaults_over(SCRATCH, {})
    over = defaults_over(SCRATCH, {"backbone": "mini_xception"})
    assert over["optimizer"] == "sgd" and over["momentum"] == 0.99
    assert defaults_over(TRANSFER, {})["optimizer"] == "sgd"
    for base in ({}, {"backbone": "mini_xception"}, {"backbone": "densenet121", "subset": 0.5}):
        assert to_config("scratch", defaults_over(SCRATCH, base), base) == TrainConfig(regime="scratch", **base)
