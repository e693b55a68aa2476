"""The core reports progress only as events (``study.events``); the command line draws them.

A run tells its caller each phase, epoch and step in order; a caller that passes nothing hears nothing
and nothing is printed; the console renderer draws what it is told.
"""
from __future__ import annotations

import dataclasses
import io

from rich.console import Console

from command_line.progress import ConsoleEvents
from study.config import TrainConfig
from study.training import train
from tests.test_training import FAST, pretrained, tiny_dataset  # noqa: F401  (pretrained: a fixture)
from tests.told import Told


def test_a_run_tells_its_phases_epochs_and_steps_in_order(tmp_path, pretrained):
    told = Told()
    config = TrainConfig(regime="transfer", weights=pretrained, frozen_epochs=1, epochs=2, **FAST)
    result = train(config, tiny_dataset(), tmp_path / "run", events=told)
    steps = 4  # 56 faces in batches of 16: the last 8 (half a batch) still train
    frozen = [e for e in told.heard if e[0] != "batch_ended"][:4]
    assert frozen[:2] == [("phase_started", "frozen", 1, 1, steps), ("epoch_started", 1)]
    assert frozen[2][:2] == ("epoch_ended", 1) and frozen[3] == ("phase_ended",)
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(frozen[2][2])
    finetune = [e[:2] for e in told.heard if e[0] in ("phase_started", "epoch_ended")][2:]
    assert finetune == [("phase_started", "finetune"), ("epoch_ended", 2), ("epoch_ended", 3)]
    assert told.heard[-1] == ("phase_ended",) and len(result.history) == 3
    # Every step of a fine-tune epoch, from 1; the frozen head runs 32 steps a call, and says where it ended.
    epochs = "".join("|" if e[0] == "epoch_started" else str(e[1]) for e in told.heard if e[0] in ("epoch_started",
                                                                                                 "batch_ended"))
    assert epochs == "|4|1234|1234"


def test_a_caller_that_passes_no_events_hears_nothing_and_nothing_is_printed(tmp_path, capsys):
    train(TrainConfig(regime="scratch", epochs=1, **FAST), tiny_dataset(), tmp_path / "run")
    out, err = capsys.readouterr()
    assert "scratch 1/1" not in out + err and "acc" not in out + err


def test_a_stall_is_a_warning_the_caller_hears(tmp_path):
    told = Told()
    config = TrainConfig(regime="scratch", epochs=2, learning_rate=1e-9, momentum=0.0, stall_epochs=2,
                         stall_action="warn", **FAST)  # as test_learning's stalled run
    train(config, tiny_dataset(), tmp_path / "run", events=told)
    assert len(told.warned) == 1 and told.warned[0].startswith("NOT LEARNING")


def test_a_search_tells_its_trials_and_a_library_caller_sees_nothing(tmp_path, sample_dir, monkeypatch, capsys):
    from study.tuning import objective
    from study.tuning.request import SearchRequest
    from study.tuning.search import run_search
    from tests.test_tuning import fake_train

    monkeypatch.setattr(objective, "train", fake_train([]))
    request = SearchRequest(regime="scratch", trials=2, data=str(sample_dir), storage=f"sqlite:///{tmp_path / 's.db'}",
                            runs_dir=str(tmp_path / "runs"), max_epochs=2, base={"backbone": "mini_xception"})
    told = Told()
    run_search(request, told)
    trials = [e for e in told.heard if e[0] != "study_finished"]
    assert trials == [("search_started", "scratch-optuna", 2),
                      ("trial_started", 0), ("trial_epoch", 0, 1), ("trial_epoch", 0, 2), ("trial_finished", 0, "COMPLETE"),
                      ("trial_started", 1), ("trial_epoch", 1, 1), ("trial_epoch", 1, 2), ("trial_finished", 1, "COMPLETE")]
    assert told.heard[-1] == ("study_finished", 2) and told.said[0].startswith("estimate: ")
    capsys.readouterr()
    run_search(dataclasses.replace(request, trials=3))  # no events given: SILENT
    out, err = capsys.readouterr()
    assert "trial" not in out + err and "estimate" not in out + err


def test_the_console_draws_epoch_lines_on_stderr_and_news_on_stdout():
    out, err = io.StringIO(), io.StringIO()
    events = ConsoleEvents(Console(file=out, width=120), Console(file=err, width=120))
    events.say("seed 1/2: final run of study s")
    events.phase_started("scratch", 1, 2, 4)
    events.epoch_started(1)
    for step in range(1, 5):
        events.batch_ended(step, {"loss": 1.5, "accuracy": 0.25})
    events.epoch_ended(1, {"loss": 1.5, "accuracy": 0.25, "val_loss": 1.7, "val_accuracy": 0.3})
    events.phase_ended()
    events.warn("the run stalled")
    assert out.getvalue() == "seed 1/2: final run of study s\n"
    lines = err.getvalue().splitlines()
    assert lines == ["scratch 1/2  loss+L2 1.500  acc 0.250  val_loss+L2 1.700  val_acc 0.300", "the run stalled"]
