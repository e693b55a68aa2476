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

import errno
import re
import shutil
from pathlib import Path
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


class WriteFailed(UserError):
    """A file could not be written (a full disk, no permission, a read-only disk): one line that names
    the file and the system's reason, and for a full disk how much it needed and how much is free, in
    place of the traceback of whichever library was writing. Inside a search it stops the search: the
    next trial would fill the same disk."""

    FULL = (errno.ENOSPC, errno.EDQUOT)

    def __init__(self, path: str | Path, reason: str, needed: int | None = None, free: int | None = None,
                 then: str = "") -> None:
        self.path, self.reason, self.needed, self.free, self.then = Path(path), reason, needed, free, then
        sizes = [f"needs about {self.size(needed)}"] if needed is not None else []
        sizes += [f"{self.size(free)} free"] if free is not None else []
        detail = f" ({', '.join(sizes)})" if sizes else ""
        super().__init__(f"cannot write {path}: {reason}{detail}" + (f"; {then}" if then else ""))

    @classmethod
    def of(cls, path: str | Path, error: OSError, needed: int | None = None) -> "WriteFailed":
        """``error`` (raised writing ``path``, ``needed`` bytes if known) as one line."""
        if error.errno in cls.FULL:
            return cls(path, "no space left on device", needed, cls.free_bytes(path))
        reason = str(error.strerror or error or type(error).__name__)
        return cls(path, reason[:1].lower() + reason[1:])

    def consequence(self, then: str) -> "WriteFailed":
        """The same failure, saying what it cost (e.g. that a trained model was not kept)."""
        return WriteFailed(self.path, self.reason, self.needed, self.free, then)

    @staticmethod
    def free_bytes(path: str | Path) -> int | None:
        """Free bytes on the disk that holds ``path`` (its nearest existing folder), None if unknown."""
        folder = next((p for p in Path(path).absolute().parents if p.exists()), None)
        try:
            return shutil.disk_usage(folder).free if folder is not None else None
        except OSError:
            return None

    @staticmethod
    def size(n: int) -> str:
        """``n`` bytes for a person: 640 B, 12.3 MB."""
        value, unit = float(n), "B"
        for unit in ("B", "kB", "MB", "GB", "TB"):
            if value < 1000 or unit == "TB":
                break
            value /= 1000
        return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"


class TrialFailed(Exception):
    """One run failed for a reason of its own (e.g. a NaN loss); a search goes on."""
