"""A report as a flat list of blocks: what both renderers (Markdown, PDF) walk, in the same order."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Union

from reports.tables import ReportTable


@dataclass(frozen=True)
class Heading:
    """``level`` 1 is a section, 2 a subsection (the document's title sits above both)."""

    text: str
    level: int = 1


@dataclass(frozen=True)
class Paragraph:
    """Plain text; ``strong`` for banners (synthetic data) the reader must not miss."""

    text: str
    strong: bool = False


@dataclass(frozen=True)
class TableBlock:
    table: ReportTable


@dataclass(frozen=True)
class FigureBlock:
    """A PNG, ``path`` relative to the report's folder; ``tall`` may take most of a page's height (a
    figure of one row per class would otherwise shrink to illegible)."""

    path: Path
    caption: str
    tall: bool = False


Block = Union[Heading, Paragraph, TableBlock, FigureBlock]


@dataclass(frozen=True)
class Document:
    """``first_line`` (a partial report's statement of what it lacks) precedes even the title."""

    title: str
    blocks: tuple[Block, ...]
    first_line: str = ""
