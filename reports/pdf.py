"""Render a ``Document`` as a PDF with reportlab's platypus: title, tables, figures, page numbers.

It computes nothing: cell text comes from ``tables.cells``, the same function the Markdown uses.
Text is set in DejaVu Sans (shipped with matplotlib) because the standard PDF fonts lack glyphs the
report needs (≈, −, ², χ).
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass
from functools import lru_cache, singledispatch
from pathlib import Path
from xml.sax.saxutils import escape

import matplotlib
from PIL import Image as PILImage
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from reports import document as doc
from reports.tables import ReportTable, cells
from study import runs

MARGIN = 16 * mm
FRAME_WIDTH = A4[0] - 2 * MARGIN
FIGURE_MAX_HEIGHT = 105 * mm
TALL_FIGURE_MAX_HEIGHT = 200 * mm  # with its caption, still within an A4 page's frame
_CELL_PADDING = 6.0


def render(document: doc.Document, path: str | Path, base: str | Path) -> Path:
    """Write ``document`` to ``path`` (atomically); figure paths are relative to ``base``."""
    path, base = Path(path), Path(base)
    styles = _styles(fonts())
    story = [Paragraph(_text(document.first_line), styles["banner"])] if document.first_line else []
    story += [Paragraph(_text(document.title), styles["title"])]
    for block in document.blocks:
        story += _flowables(block, styles, base)
    pages = io.BytesIO()  # in memory first: a full disk's message then knows the size, and no half PDF is left
    template = _Template(pages, footer=_footer(document.title, styles["body"].fontName), pagesize=A4,
                         leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN, bottomMargin=MARGIN + 4 * mm,
                         title=document.title, author="fer-study")
    template.build(story)
    runs.write_bytes(path, pages.getvalue())
    return path


# ----------------------------------------------------------------------------------- blocks
@singledispatch
def _flowables(block, styles: dict[str, ParagraphStyle], base: Path) -> list:
    raise TypeError(f"no PDF for {type(block).__name__}")


@_flowables.register
def _(block: doc.Heading, styles: dict[str, ParagraphStyle], base: Path) -> list:
    return [Paragraph(_text(block.text), styles["h1" if block.level == 1 else "h2"])]


@_flowables.register
def _(block: doc.Paragraph, styles: dict[str, ParagraphStyle], base: Path) -> list:
    return [Paragraph(_text(block.text), styles["strong" if block.strong else "body"])]


@_flowables.register
def _(block: doc.FigureBlock, styles: dict[str, ParagraphStyle], base: Path) -> list:
    file = base / block.path
    with PILImage.open(file) as image:
        width, height = image.size
    scale = min(FRAME_WIDTH / width, (TALL_FIGURE_MAX_HEIGHT if block.tall else FIGURE_MAX_HEIGHT) / height)
    picture = Image(str(file), width=width * scale, height=height * scale)
    picture.keepWithNext = True  # with its caption, and (through the headings' keepWithNext) with its heading
    return [picture, Paragraph(_text(block.caption), styles["caption"])]


@_flowables.register
def _(block: doc.TableBlock, styles: dict[str, ParagraphStyle], base: Path) -> list:
    return table(block.table, styles)


def table(report_table: ReportTable, styles: dict[str, ParagraphStyle]) -> list:
    """Title, the table (header repeated on every page it spans) and its note."""
    header, rows = cells(report_table)
    size = 7.5 if len(header) <= 5 else 6.5
    cell = ParagraphStyle("cell", parent=styles["body"], fontSize=size, leading=size + 1.8, spaceAfter=0)
    head = ParagraphStyle("head", parent=cell, fontName=fonts().bold)
    data = [[Paragraph(_text(v), head) for v in header]] + [[Paragraph(_text(v), cell) for v in row] for row in rows]
    grid = Table(data, colWidths=_widths([header, *rows], head.fontName, size), repeatRows=1, hAlign="LEFT")
    grid.setStyle(_table_style(len(data)))
    grid.keepWithNext = bool(report_table.note)
    parts = [Paragraph(_text(report_table.title), styles["table_title"]), grid]
    if report_table.note:
        parts.append(Paragraph(_text(report_table.note), styles["note"]))
    return [*parts, Spacer(1, 3 * mm)]


def _widths(rows: list[list[str]], font: str, size: float) -> list[float]:
    """Natural widths when they fit; else each column keeps its longest word and shares the rest (text wraps)."""
    def width(text: str) -> float:
        return pdfmetrics.stringWidth(text, font, size) + 2 * _CELL_PADDING

    columns = list(zip(*rows))
    natural = [max(map(width, column)) for column in columns]
    if sum(natural) <= FRAME_WIDTH:
        return natural
    least = [max(width(word) for text in column for word in text.split() or [""]) for column in columns]
    spare = FRAME_WIDTH - sum(least)
    if spare <= 0:
        return [w * FRAME_WIDTH / sum(least) for w in least]
    stretch = [n - m for n, m in zip(natural, least)]
    return [m + spare * s / sum(stretch) for m, s in zip(least, stretch)]


def _table_style(n_rows: int) -> TableStyle:
    commands = [
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dfe6ee")),
        ("LINEBELOW", (0, 0), (-1, 0), 0.6, colors.HexColor("#44546a")),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#b8c2cc")),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("LEFTPADDING", (0, 0), (-1, -1), _CELL_PADDING / 2),
        ("RIGHTPADDING", (0, 0), (-1, -1), _CELL_PADDING / 2),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
    ]
    commands += [("BACKGROUND", (0, r), (-1, r), colors.HexColor("#f5f7f9")) for r in range(2, n_rows, 2)]
    return TableStyle(commands)


# ------------------------------------------------------------------------------ text and pages
class _Template(SimpleDocTemplate):
    """Draws the footer after each page's content, so a page's text starts with its content, not the footer."""

    def __init__(self, filename: str | io.BytesIO, footer, **kwargs) -> None:
        self.footer = footer
        super().__init__(filename, **kwargs)

    def afterPage(self) -> None:
        self.footer(self.canv, self)


def _text(value: str) -> str:
    """Escape for reportlab's mini-markup; Markdown code spans become monospace."""
    escaped = escape(value)
    return re.sub(r"`([^`]+)`", lambda m: f'<font name="{fonts().mono}">{m.group(1)}</font>', escaped)


def _footer(title: str, font: str):
    def draw(canvas, template) -> None:
        canvas.saveState()
        canvas.setFont(font, 7.5)
        canvas.setFillColor(colors.HexColor("#5a6470"))
        canvas.drawString(MARGIN, 9 * mm, title)
        canvas.drawRightString(A4[0] - MARGIN, 9 * mm, f"page {template.page}")
        canvas.restoreState()
    return draw


@dataclass(frozen=True)
class Fonts:
    regular: str
    bold: str
    mono: str


@lru_cache(maxsize=1)
def fonts() -> Fonts:
    """DejaVu Sans from matplotlib's data folder, registered once; the standard fonts if it is missing."""
    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    faces = {"DejaVuSans": "DejaVuSans.ttf", "DejaVuSans-Bold": "DejaVuSans-Bold.ttf",
             "DejaVuSans-Oblique": "DejaVuSans-Oblique.ttf", "DejaVuSansMono": "DejaVuSansMono.ttf"}
    if not all((folder / f).is_file() for f in faces.values()):
        return Fonts("Helvetica", "Helvetica-Bold", "Courier")
    for name, file in faces.items():
        pdfmetrics.registerFont(TTFont(name, str(folder / file)))
    pdfmetrics.registerFontFamily("DejaVuSans", normal="DejaVuSans", bold="DejaVuSans-Bold",
                                  italic="DejaVuSans-Oblique", boldItalic="DejaVuSans-Bold")
    return Fonts("DejaVuSans", "DejaVuSans-Bold", "DejaVuSansMono")


def _styles(font: Fonts) -> dict[str, ParagraphStyle]:
    bold = font.bold
    base = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=base["BodyText"], fontName=font.regular, fontSize=9, leading=12.5,
                          spaceAfter=4)
    return {
        "body": body,
        "strong": ParagraphStyle("strong", parent=body, fontName=bold, textColor=colors.HexColor("#9c1c1c")),
        "banner": ParagraphStyle("banner", parent=body, fontName=bold, fontSize=10, leading=13,
                                 textColor=colors.HexColor("#9c1c1c"), spaceAfter=8),
        "title": ParagraphStyle("title", parent=base["Title"], fontName=bold, fontSize=17, leading=21, spaceAfter=10),
        "h1": ParagraphStyle("h1", parent=base["Heading1"], fontName=bold, fontSize=13, leading=16, spaceBefore=10,
                             spaceAfter=5, textColor=colors.HexColor("#1f3a5f"), keepWithNext=1),
        "h2": ParagraphStyle("h2", parent=base["Heading2"], fontName=bold, fontSize=10.5, leading=13, spaceBefore=7,
                             spaceAfter=3, keepWithNext=1),
        "table_title": ParagraphStyle("table_title", parent=body, fontName=bold, fontSize=9, spaceBefore=4,
                                      spaceAfter=3, keepWithNext=1),
        "note": ParagraphStyle("note", parent=body, fontSize=7.5, leading=9.5, textColor=colors.HexColor("#3c4650")),
        "caption": ParagraphStyle("caption", parent=body, fontSize=8, leading=10, alignment=TA_CENTER,
                                  textColor=colors.HexColor("#3c4650"), spaceAfter=8),
    }
