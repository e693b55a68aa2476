"""Errors typed by consequence, as keras-tuner does.

* ``UserError`` (and its subclasses) is bad input: the CLI prints its one-line message and exits
  with status 2, no traceback. Inside a search it is fatal: a configuration error stops the search.
* ``TrialFailed`` marks one training run as failed (NaN loss, out of memory); a search records it
  and goes on. Outside a search it is also shown as a one-line message.
"""
from __future__ import annotations


class UserError(Exception):
    """Bad input; the message names the problem and the fix."""

    exit_code = 2


class ConfigError(UserError):
    """A configuration value or key is invalid."""


class DataError(UserError):
    """The dataset is missing, malformed, or unreadable."""


class ModelError(UserError):
    """A backbone, weights file or saved model cannot be used."""


class TrialFailed(Exception):
    """One run failed for a reason of its own (e.g. a NaN loss); a search goes on."""

    exit_code = 1
