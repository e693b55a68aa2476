"""SIGTERM ends a search as Ctrl-C does, never inside optuna's own trial bookkeeping, and is never lost.

``signals_interrupt`` turns SIGTERM (``kill``, a scheduler's preemption, the ``workers`` parent) and
SIGINT (Ctrl-C) into ``Interrupted``, a ``KeyboardInterrupt``: the running trial is marked FAIL and the
search ends. ``SIGNAL_GATE`` says where it may be raised (see ``SignalGate``) and remembers that it came.

Remembering matters: Python runs a signal handler at whatever bytecode the main thread is at, and
when that is a weakref callback or a ``__del__`` (TensorFlow runs many while it trains), the exception
the handler raises is printed as "Exception ignored in ..." and dropped. Measured here: one SIGTERM in
five, sent at a random moment of a Keras ``fit``, was dropped so, and the trial, then the whole search,
ran on. So the search checks again where raising is safe: after every batch (``SignalCheck``), when a
trial ends, and before the next one starts.
This module loads no TensorFlow: the ``workers`` parent imports it.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator


class Interrupted(KeyboardInterrupt):
    """A search stopped by a signal; it says which ("Ctrl-C" for SIGINT)."""

    def __init__(self, signum: int) -> None:
        super().__init__("Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name)
        self.signum = signum


class SignalGate:
    """Where an interrupting signal may raise, and whether one came.

    Raised inside ``study.ask`` (the trial row created, its worker not yet recorded, its heartbeat not
    yet started) it would leave a RUNNING trial that nothing can ever fail; so the optuna backend closes
    the gate around ``study.optimize`` and opens it around the objective, where the trial is failed
    properly. A signal that came while closed is raised at the next opening or when the gate closes
    again; one whose exception Python dropped is raised by the next ``check``.
    """

    def __init__(self) -> None:
        self.closed = False
        self.received: int | None = None  # the signal, once one came (until the search ends)

    def check(self) -> None:
        """Raise ``Interrupted`` if a signal came: here it cannot be dropped."""
        if self.received is not None:
            raise Interrupted(self.received)

    @contextmanager
    def shut(self) -> Iterator[None]:
        self.closed = True
        try:
            yield
        finally:
            self.closed = False
        self.check()

    @contextmanager
    def open(self) -> Iterator[None]:
        self.closed = False
        try:
            self.check()
            yield
            self.check()  # the signal's own exception was dropped while the objective ran: fail its trial
        finally:
            self.closed = True


SIGNAL_GATE = SignalGate()


@contextmanager
def signals_interrupt() -> Iterator[None]:
    """SIGTERM, and SIGINT unless it is ignored (a background job's), take the Ctrl-C path; only the
    first signal: a second must not cut short the marking of the trial."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def interrupt(signum: int, frame: object) -> None:
        signal.signal(signum, signal.SIG_IGN)
        if SIGNAL_GATE.received is not None:  # a SIGINT after a SIGTERM (or the reverse) is the same request
            return
        SIGNAL_GATE.received = signum
        if not SIGNAL_GATE.closed:  # inside optuna's trial bookkeeping it is raised where it is safe
            raise Interrupted(signum)

    handled = [signal.SIGTERM]
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        handled.append(signal.SIGINT)
    SIGNAL_GATE.received = None
    previous = {s: signal.signal(s, interrupt) for s in handled}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        SIGNAL_GATE.received = None
