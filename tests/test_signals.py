"""A signal that ends a search is never lost, even when Python drops the exception its handler raised.

Python runs a signal's handler at whatever bytecode the main thread reaches next; inside a ``__del__``
or a weakref callback (TensorFlow runs many while it trains) the handler's exception is printed as
"Exception ignored in ..." and dropped. These tests drop it on purpose, the same way: a ``__del__``
that signals its own process.
"""
from __future__ import annotations

import gc
import os
import signal

import keras
import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from study.store import records
from study.tuning.callbacks import SignalCheck
from study.tuning.optuna_backend import run_worker
from study.tuning.signals import SIGNAL_GATE, Interrupted, signals_interrupt

# The drop is the point: pytest reports each dropped exception as a warning.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


class _SignalsInDel:
    """Its ``__del__`` sends ``signum`` to this process and runs on: the handler runs inside it."""

    def __init__(self, signum: int) -> None:
        self.signum = signum

    def __del__(self) -> None:
        os.kill(os.getpid(), self.signum)
        total = 0
        for k in range(1000):  # bytecodes for the handler to run at, still inside __del__
            total += k


def drop_a_signal(signum: int = signal.SIGTERM) -> None:
    """Deliver ``signum`` where Python drops the exception its handler raises (and check that it did)."""
    _SignalsInDel(signum)  # deleted at once: __del__ runs here
    gc.collect()
    assert SIGNAL_GATE.received == signum, "the handler did not run"


def test_a_dropped_signal_is_raised_at_the_next_check_and_the_context_forgets_it():
    before = signal.getsignal(signal.SIGTERM)
    with signals_interrupt():
        drop_a_signal()  # no exception came out: it was dropped
        with pytest.raises(Interrupted) as raised:
            SIGNAL_GATE.check()
        assert raised.value.signum == signal.SIGTERM and str(raised.value) == "SIGTERM"
    SIGNAL_GATE.check()  # the search is over: the next one starts clean
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_signal_dropped_during_a_trial_fails_that_trial_and_ends_the_worker():
    """The objective returns normally after the drop: the trial is failed all the same, and no other
    trial starts (before, the trial completed and the search ran on to its end)."""
    study = optuna.create_study(direction="maximize")
    ran = []

    def objective(trial: optuna.Trial) -> float:
        ran.append(trial.number)
        if trial.number == 1:
            drop_a_signal()
        return 0.5

    with signals_interrupt(), pytest.raises(Interrupted):
        run_worker(study, objective, total=5, timeout=None)
    assert ran == [0, 1]
    states = [(t.state, records.error(t)) for t in study.get_trials()]
    assert states == [(TrialState.COMPLETE, None), (TrialState.FAIL, "interrupted (SIGTERM)")]


def test_a_signal_dropped_while_fitting_stops_the_fit_at_the_next_batch():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile("sgd", "categorical_crossentropy")
    x, y = np.zeros((64, 4), np.float32), keras.utils.to_categorical(np.zeros(64), 3)
    seen = []

    class DropsAtBatchThree(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(batch)
            if batch == 3:
                drop_a_signal()

    with signals_interrupt(), pytest.raises(Interrupted):
        model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[DropsAtBatchThree(), SignalCheck()])
    assert seen == [0, 1, 2, 3]  # 16 batches an epoch: it stopped right after the one the signal came in


def test_ctrl_c_is_handled_the_same_way_unless_it_is_ignored():
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal (xdist may ignore it)
    try:
        with signals_interrupt():
            drop_a_signal(signal.SIGINT)
            with pytest.raises(Interrupted) as raised:
                SIGNAL_GATE.check()
            assert raised.value.signum == signal.SIGINT and str(raised.value) == "Ctrl-C"
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a background job's: the shell ignores it
        with signals_interrupt():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
