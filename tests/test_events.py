"""The core reports progress only as events (``study.events``); the command line draws them.

A run tells its caller each phase, epoch and step in order; a caller that passes nothing hears nothing
and nothing is printed; the console renderer draws what it is told.
"""
from __future__ import annotations

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
