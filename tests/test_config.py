import json

import pytest

from study import config as config_mod
from study.config import TrainConfig
from study.errors import ConfigError


def test_defaults_are_the_papers_values():
    scratch = TrainConfig()
    assert (scratch.regime, scratch.backbone, scratch.weights) == ("scratch", "densenet169", "none")
    assert (scratch.learning_rate, scratch.epochs, scratch.batch_size) == (0.001, 20, 64)
    assert (scratch.dense1_units, scratch.dense2_units, scratch.dense3_units) == (256, 1024, 512)
    assert (scratch.dropout1, scratch.dropout2, scratch.dropout3) == (0.3, 0.5, 0.5)
    transfer = TrainConfig(regime="transfer")
    assert transfer.weights == "imagenet"
    assert (transfer.frozen_learning_rate, transfer.frozen_epochs, transfer.frozen_patience) == (0.01, 30, 3)
    assert (transfer.learning_rate, transfer.epochs, transfer.unfreeze) == (0.001, 20, "all")
    assert transfer.max_epochs == 50  # the paper's upper bound: 30 frozen + 20 fine-tune


def test_the_optimizer_is_the_papers_sgd_except_for_a_densenet_from_scratch():
    assert TrainConfig().optimizer == "adam"  # DenseNet169 did not learn from SGD here (docs/learning.md)
    assert TrainConfig(optimizer="").optimizer == "adam"  # the "unset" value resolves as the default does
    assert TrainConfig(backbone="densenet121").optimizer == TrainConfig(backbone="densenet201").optimizer == "adam"
    assert TrainConfig(regime="transfer").optimizer == "sgd"
    assert TrainConfig(backbone="mini_xception").optimizer == "sgd"
    assert TrainConfig(optimizer="sgd").optimizer == "sgd"  # the paper's, one setting away
    assert config_mod.from_dict(config_mod.to_dict(TrainConfig())) == TrainConfig()
    assert config_mod.field_default("optimizer") == "sgd" and "ours" in config_mod.default_source("optimizer")


def test_the_schedule_is_the_papers_constant_rate_except_for_a_densenet_from_scratch():
    densenet = TrainConfig()
    assert (densenet.lr_schedule, densenet.warmup_epochs) == ("cosine", 1)
    for paper in (TrainConfig(regime="transfer"), TrainConfig(backbone="mini_xception"), TrainConfig(backbone="resnet50")):
        assert (paper.lr_schedule, paper.warmup_epochs) == ("constant", 0)
    # each field is its own setting: naming one keeps the other's default
    assert (TrainConfig(lr_schedule="constant").lr_schedule, TrainConfig(lr_schedule="constant").warmup_epochs) == ("constant", 1)
    paper = TrainConfig(optimizer="sgd", lr_schedule="constant", warmup_epochs=0)  # the paper's, as the docs say
    assert (paper.optimizer, paper.lr_schedule, paper.warmup_epochs) == ("sgd", "constant", 0)
    assert config_mod.from_dict(config_mod.to_dict(paper)) == paper
    assert config_mod.from_dict({"lr_schedule": "", "warmup_epochs": -1}) == densenet
    assert config_mod.field_default("lr_schedule") == "constant" and config_mod.field_default("warmup_epochs") == 0
    assert config_mod.default_source("lr_schedule") == "paper: constant; ours for a DenseNet from scratch: cosine"
    assert config_mod.default_source("warmup_epochs") == "off (not in the paper): 0; ours for a DenseNet from scratch: 1"
    with pytest.raises(ConfigError, match="warmup_epochs must be >= 0"):
        TrainConfig(warmup_epochs=-2)


def test_unknown_key_is_named_with_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown config key.*lerning_rate.*valid keys:.*learning_rate"):
        config_mod.from_dict({"lerning_rate": 0.1})


@pytest.mark.parametrize(
    "values, message",
    [
        ({"regime": "fancy"}, "regime must be one of"),
        ({"dropout1": 1.5}, "dropout1 must be in"),
        ({"learning_rate": 0}, "learning_rate must be > 0"),
        ({"unfreeze": "some"}, "unfreeze must be 'all'"),
        ({"batch_size": "many"}, "batch_size must be a int"),
        ({"regime": "transfer", "weights": "none"}, "transfer regime needs pretrained weights"),
        ({"epochs": 0}, "the schedule has no epochs"),
        ({"input_size": 16}, r"input_size must be in \[32, 224\] pixels"),
        ({"bn_momentum": 1.0}, r"bn_momentum must be in \[0, 1\)"),
    ],
)
def test_bad_values_give_one_line_messages(values, message):
    with pytest.raises(ConfigError, match=message) as info:
        config_mod.from_dict(values)
    assert "\n" not in str(info.value)


def test_round_trip_through_json(tmp_path):
    config = TrainConfig(regime="transfer", weights="w.h5", unfreeze="4", nesterov=True, momentum=0.9)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config_mod.to_dict(config)))
    assert config_mod.load(path) == config
    assert config.unfreeze_top_blocks == 4
    assert config_mod.from_dict({"nesterov": "false", "epochs": "3", "unfreeze": 2}).unfreeze == "2"


def test_bad_config_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        config_mod.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        config_mod.load(tmp_path / "bad.json")
