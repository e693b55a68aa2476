"""Render a ``Document`` as GitHub-flavoured Markdown; it computes nothing (cells come from ``tables.cells``)."""
from __future__ import annotations

from functools import singledispatch

from reports.document import Document, FigureBlock, Heading, Paragraph, TableBlock
from reports.tables import ReportTable, cells


def render(document: Document) -> str:
    parts = [f"**{document.first_line}**"] if document.first_line else []
    parts.append(f"# {document.title}")
    parts.extend(_block(block) for block in document.blocks)
    return "\n\n".join(parts) + "\n"


@singledispatch
def _block(block) -> str:
    raise TypeError(f"no Markdown for {type(block).__name__}")


@_block.register
def _(block: Heading) -> str:
    return f"{'#' * (block.level + 1)} {block.text}"


@_block.register
def _(block: Paragraph) -> str:
    return f"**{block.text}**" if block.strong else block.text


@_block.register
def _(block: FigureBlock) -> str:
    return f"![{block.caption}]({block.path.as_posix()})\n\n*{block.caption}*"


@_block.register
def _(block: TableBlock) -> str:
    return table(block.table)


def table(report_table: ReportTable) -> str:
    """Title, a pipe table (first column left, values right-aligned) and its note."""
    header, rows = cells(report_table)
    align = "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"
    lines = [f"**{report_table.title}**", "", _row(header), align]
    lines += [_row(row) for row in rows]
    if report_table.note:
        lines += ["", report_table.note]
    return "\n".join(lines)


def _row(values: list[str]) -> str:
    return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"
