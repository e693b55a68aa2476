"""Errors typed by consequence, as keras-tuner does, carrying data rather than command lines.

* ``UserError`` (and its subclasses) is bad input: the command line prints its one-line message and
  exits with status 2, no traceback. Inside a search it is fatal: a configuration error stops the search.
* ``TrialFailed`` marks one training run as failed (NaN loss, out of memory); a search records it
  and goes on. Outside a search it is also shown as a one-line message.

The core never names a command-line flag. A message names a setting as ``«name»``: ``str(error)``
shows the plain name (``grace``), and the command line shows its flag (``--grace``). Errors that call
for a next step (``NoDataset``, ``NoStudy``, ...) carry what the step needs as attributes; the command
line words the step ("run ... first").
"""
from __future__ import annotations

import re
from typing import Callable

SETTING = re.compile(r"«(\w+)»")


def render_settings(text: str, name: Callable[[str], str] = lambda key: key) -> str:
    """``text`` with every ``«setting»`` rendered by ``name`` (plain by default)."""
    return SETTING.sub(lambda match: name(match.group(1)), text)


def setting(name: str) -> str:
    """``name`` marked as a setting in a message (shown as ``--name`` by the command line)."""
    return f"«{name}»"


class UserError(Exception):
    """Bad input; the message names the problem and the fix."""

    def render(self, name: Callable[[str], str] = lambda key: key) -> str:
        """The message with every ``«setting»`` rendered by ``name`` (plain by default)."""
        return render_settings(self.raw, name)

    @property
    def raw(self) -> str:
        """The message with its setting markers, for an error that wraps this one's message."""
        return str(self.args[0]) if self.args else ""

    def __str__(self) -> str:
        return self.render()


class ConfigError(UserError):
    """A configuration value or key is invalid."""


class DataError(UserError):
    """The dataset is missing, malformed, or unreadable."""


class NoDataset(DataError):
    """The default dataset (the generated sample) has not been written yet."""

    def __init__(self, path: str) -> None:
        super().__init__(f"no dataset at {path}")
        self.path = path


class ModelError(UserError):
    """A backbone, weights file or saved model cannot be used."""


class TrialFailed(Exception):
    """One run failed for a reason of its own (e.g. a NaN loss); a search goes on."""
