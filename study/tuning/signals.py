"""SIGTERM ends a search as Ctrl-C does, and never inside optuna's own trial bookkeeping.

``sigterm_interrupts`` turns SIGTERM (``kill``, a scheduler's preemption, the ``workers`` parent)
into ``Interrupted``, a ``KeyboardInterrupt``: the running trial is marked FAIL and the search ends.
``SIGNAL_GATE`` says where it may be raised (see ``SignalGate``).
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator


class Interrupted(KeyboardInterrupt):
    """A search stopped by a signal other than Ctrl-C (SIGTERM); it ends the same way."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class SignalGate:
    """Where SIGTERM may raise. Raised inside ``study.ask`` (the trial row created, its worker not yet
    recorded, its heartbeat not yet started) it would leave a RUNNING trial that nothing can ever
    fail; so the optuna backend closes the gate around ``study.optimize`` and opens it around the
    objective, where the trial is failed properly, and a signal that came while closed is raised at
    the next opening or when the gate closes again."""

    def __init__(self) -> None:
        self.closed = False
        self.pending: int | None = None

    def raise_pending(self) -> None:
        if self.pending is not None:
            signum, self.pending = self.pending, None
            raise Interrupted(signum)

    @contextmanager
    def shut(self) -> Iterator[None]:
        self.closed = True
        try:
            yield
        finally:
            self.closed = False
        self.raise_pending()

    @contextmanager
    def open(self) -> Iterator[None]:
        self.closed = False
        try:
            self.raise_pending()
            yield
        finally:
            self.closed = True


SIGNAL_GATE = SignalGate()


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM takes the Ctrl-C path; only the first one: a second must not cut short the marking
    of the trial."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def interrupt(signum: int, frame: object) -> None:
        signal.signal(signum, signal.SIG_IGN)
        if SIGNAL_GATE.closed:  # inside optuna's trial bookkeeping: raised where it is safe
            SIGNAL_GATE.pending = signum
            return
        raise Interrupted(signum)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
