"""The data commands: describe a dataset, write the generated sample, fetch the real one."""
from __future__ import annotations

import click
from rich.console import Console

from command_line import console_tables
from study.config import DEFAULT_DATA
from study.data import fetch, load_dataset
from study.sample import write_sample

console = Console(soft_wrap=True)  # long paths stay copyable when output is piped


@click.group()
def data() -> None:
    """Describe, generate or fetch a dataset."""


@data.command("describe")
@click.argument("path", type=click.Path())
@click.option("--out", metavar="PNG", type=click.Path(dir_okay=False),
              help="Draw the class distribution (the paper's Fig. 1) into this PNG; without it nothing is written.")
@click.option("--strict", is_flag=True, help="Fail on the first unreadable image instead of skipping it.")
def data_describe(path: str, out: str | None, strict: bool) -> None:
    """Class counts per split, conversions and skipped files; with --out, the class-distribution chart."""
    dataset = load_dataset(path, strict=strict)
    console.print(console_tables.dataset_card(dataset))
    if out is None:  # a read writes nothing unless told where
        console.print("chart: not drawn; add --out class_distribution.png to draw it", highlight=False)
        return
    from reports import figures  # deferred: matplotlib

    title = "Class distribution" + (" (synthetic sample)" if dataset.synthetic else "")
    console.print(f"chart: {figures.class_distribution(dataset.counts(), out, title=title)}")


@data.command("sample")
@click.argument("out", type=click.Path(), default=DEFAULT_DATA)
@click.option("--per-class", default=120, show_default=True, type=click.IntRange(min=1), help="Mean train images per class.")
@click.option("--seed", default=0, show_default=True, type=int)
def data_sample(out: str, per_class: int, seed: int) -> None:
    """Write the generated (synthetic) sample dataset in the real folder layout."""
    path = write_sample(out, per_class=per_class, seed=seed)
    console.print(f"wrote a synthetic sample dataset (drawn faces, not real people) to {path}")


@data.command("fetch")
@click.argument("dest", type=click.Path(), required=False)
def data_fetch(dest: str | None) -> None:
    """Download the Kaggle 'emotion-detection-fer' dataset with kagglehub (needs internet)."""
    console.print(f"dataset at {fetch(dest)}")


COMMANDS: list[click.Command] = [data]
