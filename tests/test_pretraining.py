"""A transfer source pretrained on faces: a step of its own, whose faces later runs leave out."""
from __future__ import annotations

import json

import numpy as np
import pytest

from study.config import TrainConfig
from study.data import Split
from study.errors import ConfigError
from study.pretraining import FACES_FILE, face_digests, leave_out_pretraining_faces, pretrain, pretraining_indices
from study.runs import Run
from study.training import train
from tests.test_training import FAST, tiny_dataset


def test_face_digests_identify_faces_by_their_pixels():
    x = np.random.default_rng(0).integers(0, 256, (5, 48, 48, 1), dtype=np.uint8)
    digests = face_digests(x)
    assert len(set(digests.tolist())) == 5
    assert (face_digests(x[[3, 1]]) == digests[[3, 1]]).all()
    changed = x.copy()
    changed[2, 0, 0, 0] ^= 1
    assert face_digests(changed)[2] != digests[2]


def test_the_fraction_must_leave_faces_on_both_sides():
    for bad in (0.0, 1.0):
        with pytest.raises(ConfigError, match="pretraining fraction"):
            pretraining_indices(tiny_dataset(), bad)


def test_a_transfer_run_on_pretrained_weights_trains_without_the_pretraining_faces(tmp_path):
    data = tiny_dataset(112)
    source = pretrain(TrainConfig(epochs=1, **FAST), data, tmp_path / "pre", fraction=0.5)
    held = pretraining_indices(data, 0.5)
    pre = Run.load(tmp_path / "pre")
    assert pre.config.regime == "scratch" and pre.config.weights == "none"
    assert len(source.history) == 1
    assert pre.manifest["pretraining"]["faces"] == len(held) == pre.manifest["data"]["sizes"]["train"]
    assert (np.load(tmp_path / "pre" / FACES_FILE) == face_digests(data.train.x[held])).all()

    config = TrainConfig(regime="transfer", weights=str(tmp_path / "pre"), frozen_epochs=1, epochs=1, **FAST)
    kept, left_out = leave_out_pretraining_faces(data, config)
    assert left_out.train == len(held) and len(kept.train.y) == len(data.train.y) - len(held)
    assert not np.isin(face_digests(kept.train.x), face_digests(data.train.x[held])).any()
    assert left_out.val == left_out.test == 0  # the tiny dataset draws every face afresh

    run = train(config, data, tmp_path / "transfer")
    manifest = json.loads((tmp_path / "transfer" / "manifest.json").read_text())
    assert manifest["pretraining_faces"]["left_out_of_train"] == len(held)
    assert manifest["data"]["sizes"]["train"] == len(data.train.y) - len(held)
    assert run.epochs == 2  # both phases ran on what was left


def test_a_pretraining_face_among_the_test_faces_is_counted_not_hidden(tmp_path):
    data = tiny_dataset(112)
    pretrain(TrainConfig(epochs=1, **FAST), data, tmp_path / "pre", fraction=0.5)
    held = pretraining_indices(data, 0.5)
    twice = Split(np.concatenate([data.test.x, data.train.x[held[:3]]]), np.concatenate([data.test.y, data.train.y[held[:3]]]))
    copy = type(data)(data.train, data.val, twice, data.fingerprint, data.source, data.layout, data.synthetic, data.report)
    config = TrainConfig(regime="transfer", weights=str(tmp_path / "pre" / "model.keras"), **FAST)
    _, left_out = leave_out_pretraining_faces(copy, config)
    assert left_out.test == 3
    assert "3 test face(s)" in left_out.sentence()


def test_other_weights_leave_every_face_in(tmp_path):
    data = tiny_dataset()
    for weights in ("none", "imagenet"):
        kept, left_out = leave_out_pretraining_faces(data, TrainConfig(backbone="densenet169", weights=weights))
        assert kept is data and left_out is None


def test_the_pretrain_command_then_transfer_from_it_as_a_user_would(sample_dir, tmp_path):
    from click.testing import CliRunner

    from cli import cli

    out = tmp_path / "pre"
    fast = ["--backbone", "mini_xception", "--epochs", "1", "--batch-size", "16", "--set", "stall_epochs=0"]
    result = CliRunner().invoke(cli, ["pretrain", "--data", str(sample_dir), "--fraction", "0.5", "--out", str(out),
                                      *fast])
    assert result.exit_code == 0, result.output
    assert "pretraining on a stratified 50% of the training split" in result.output
    assert f"--weights {out}" in result.output and (out / FACES_FILE).is_file()
    transfer = CliRunner().invoke(cli, ["train", "--regime", "transfer", "--weights", str(out), "--data",
                                        str(sample_dir), "--frozen-epochs", "1", "--out", str(tmp_path / "t"), *fast])
    assert transfer.exit_code == 0, transfer.output
    held = json.loads((out / "manifest.json").read_text())["pretraining"]["faces"]
    assert f"{held:,} training face(s) the backbone was pretrained on" in transfer.output
    manifest = json.loads((tmp_path / "t" / "manifest.json").read_text())
    assert manifest["pretraining_faces"]["left_out_of_train"] == held

    bad = CliRunner().invoke(cli, ["pretrain", "--data", str(sample_dir), "--fraction", "1", *fast])
    assert bad.exit_code == 2 and "0<x<1" in bad.output


def test_a_dataset_made_only_of_pretraining_faces_is_refused_in_one_line(tmp_path):
    data = tiny_dataset(112)
    pretrain(TrainConfig(epochs=1, **FAST), data, tmp_path / "pre", fraction=0.5)
    from study.data import with_train

    only_held = with_train(data, pretraining_indices(data, 0.5))
    config = TrainConfig(regime="transfer", weights=str(tmp_path / "pre"), **FAST)
    with pytest.raises(ConfigError, match="nothing is left to train on"):
        leave_out_pretraining_faces(only_held, config)
