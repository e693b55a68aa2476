"""The command line: every click command, option and user-facing hint; nothing below it knows click.

``cli`` is the group ``cli.py`` runs. Each module holds one family of commands (``COMMANDS``):
``data``, ``train`` (train, evaluate, pretrain), ``search`` (search, studies, show, space), ``curve``, ``report``,
``inference`` (predict, export) and ``demo``. A command parses, builds a config or request, and calls
one library function; the core's typed errors are worded here (``errors.word``): one line on
stderr and exit status 2, never a traceback.
"""
from __future__ import annotations

import errno
import sys
from importlib import metadata

import click
from rich.console import Console

from command_line import curve, data, demo, inference, report, search, train
from command_line.errors import word
from study.errors import TrialFailed, UserError, WriteFailed
from study.store.urls import mask_text

err_console = Console(stderr=True)
WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EFBIG)
DISTRIBUTION = "fer-study"  # setup.cfg's name: what `pip install -e .` installs


def version() -> str:
    """The installed distribution's version (setup.cfg); a checkout run without installing says so."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"


class Cli(click.Group):
    """Turns the toolkit's typed errors into one line on stderr and exit status 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except OSError as exc:
            if exc.errno not in WRITE_ERRORS or exc.filename is None:
                raise
            # a write no typed error covers (an --annotate copy, a figure of evaluate): still one line
            err_console.print("error:", str(WriteFailed.of(exc.filename, exc)), style="bold red", markup=False,
                              highlight=False, soft_wrap=True)
            sys.exit(2)
        except (UserError, TrialFailed) as exc:
            # masked once more here: no error, whatever built it, shows a password
            err_console.print("error:", mask_text(word(exc)), style="bold red", markup=False, highlight=False, soft_wrap=True)
            sys.exit(2)


@click.group(cls=Cli, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(version(), "--version", prog_name=DISTRIBUTION, message="%(prog)s %(version)s")
def cli() -> None:
    """Hyperparameter studies of scratch vs transfer learning for facial emotion recognition."""


for family in (data, train, search, curve, report, inference, demo):
    for command in family.COMMANDS:
        cli.add_command(command)
