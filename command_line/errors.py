"""How the command line words the core's typed errors: settings as flags, and the next step to take.

The core raises errors that carry data (``study.errors``): a message that names a setting as
``«name»``, and for some errors the facts a next step needs (``NoDataset.path``, ``NoStudy.known``).
Here a setting becomes its flag (``--name``) and each such error gets its hint ("run ... first").
"""
from __future__ import annotations

from typing import Any, Callable

from reports.errors import MissingRegime, NoFinalRuns, NoStudies
from study.errors import NoDataset, TrialFailed, UserError
from study.inference.models import NoFinalRun, NoManifest
from study.store import NoCompleteTrial, NoStore, NoStudy
from study.tuning.request import SearchIncomplete

PROGRAM = "python cli.py"


def flag(name: str) -> str:
    """A setting's command-line flag: ``max_epochs`` -> ``--max-epochs``."""
    return "--" + name.replace("_", "-")


# error type -> the text that follows its message: what to run next
HINTS: dict[type, Callable[[Any], str]] = {
    NoDataset: lambda e: f": run `{PROGRAM} data sample {e.path}` first, or pass --data DATA",
    NoStudy: lambda e: "" if e.known else f" (run `{PROGRAM} search`)",
    NoCompleteTrial: lambda e: f": run `{PROGRAM} search` first",
    NoFinalRun: lambda e: f": run `{PROGRAM} train --from-study {e.study}` first",
    NoFinalRuns: lambda e: f" (`{PROGRAM} train --from-study {e.study} --seeds 3` trains them)",
    NoManifest: lambda e: f" (`{PROGRAM} train` makes one)",
    NoStore: lambda e: (f": run `{PROGRAM} search --regime scratch ...` and `... --regime transfer ...` first, "
                        "or pass --storage URL"),
    NoStudies: lambda e: f": run `{PROGRAM} search --regime scratch ...` and `{PROGRAM} search --regime transfer ...` first",
    SearchIncomplete: lambda e: ": run the same command again to go on",
    MissingRegime: lambda e: (f": run `{PROGRAM} search --regime {e.missing} ...`, or pass --partial to report on "
                              f"{e.have} alone"),
}


def word(error: UserError | TrialFailed) -> str:
    """The one line the command line prints for ``error``."""
    if not isinstance(error, UserError):
        return str(error)
    text = error.render(flag)
    hint = next((HINTS[kind] for kind in type(error).__mro__ if kind in HINTS), None)
    return text + hint(error) if hint else text
