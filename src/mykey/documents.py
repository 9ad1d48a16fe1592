"""Printable documents (PDF): the shared set-up for vouchers and gift certificates (#5) and
monthly settlement statements (#6).

- Japanese text uses reportlab's built-in CID font `HeiseiKakuGo-W5` (a standard Adobe-Japan1
  font every PDF reader provides), so no font file ships with the project.
- Documents are deterministic: `invariant` mode fixes the document id and dates, so the same
  content makes the same bytes (a test can compare two renderings).
- Barcodes are vector drawings: EAN-13 (with its human-readable digits) and QR.

Nothing here knows about points: callers pass text, numbers and positions (in points, 1/72
inch; `mm` converts).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from reportlab.graphics import renderPDF
from reportlab.graphics.barcode import eanbc, qr
from reportlab.graphics.shapes import Drawing
from reportlab.lib.colors import Color, black, white
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm as _mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas

FONT = "HeiseiKakuGo-W5"  # ゴシック体 (sans serif), built into every PDF reader
MM: float = float(_mm)
RED = Color(0.78, 0.05, 0.05)
GREY = Color(0.45, 0.45, 0.45)
Align = Literal["left", "center", "right"]


def register_fonts() -> str:
    """Register the Japanese CID font once; returns its name."""
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    return FONT


@dataclass
class Document:
    """A PDF being written: `canvas` to draw on, `bytes()` when done."""

    canvas: Canvas
    buffer: io.BytesIO
    width: float
    height: float

    def new_page(self) -> None:
        self.canvas.showPage()

    def bytes(self) -> bytes:
        self.canvas.save()
        return self.buffer.getvalue()


def new_document(*, title: str, subject: str = "", pagesize: tuple[float, float] = A4) -> Document:
    """A deterministic PDF (A4 portrait by default) with the Japanese font registered."""
    register_fonts()
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=pagesize, invariant=1, pageCompression=1)
    canvas.setTitle(title)
    canvas.setSubject(subject)
    canvas.setAuthor("MyKey Platform / 自治体ポイント管理クラウド")
    canvas.setCreator("MyKey")
    canvas.setFont(FONT, 10)
    return Document(canvas, buffer, float(pagesize[0]), float(pagesize[1]))


def text(
    canvas: Canvas,
    x: float,
    y: float,
    value: str,
    *,
    size: float = 10,
    align: Align = "left",
    color: Color = black,
    max_width: float | None = None,
) -> float:
    """Draw one line of Japanese (or any) text with its baseline at y; `align` says where x
    is. With `max_width` a long line is shrunk to fit. Returns the width drawn."""
    width = float(pdfmetrics.stringWidth(value, FONT, size))
    if max_width is not None and width > max_width > 0:
        size = size * max_width / width
        width = max_width
    canvas.setFont(FONT, size)
    canvas.setFillColor(color)
    if align == "center":
        canvas.drawCentredString(x, y, value)
    elif align == "right":
        canvas.drawRightString(x, y, value)
    else:
        canvas.drawString(x, y, value)
    canvas.setFillColor(black)
    return width


def stamp_box(canvas: Canvas, x: float, y: float, size: float, label: str) -> None:
    """A square box for a seal (印), its label above it and a faint 印 circle inside."""
    canvas.setStrokeColor(black)
    canvas.setLineWidth(0.6)
    canvas.rect(x, y, size, size)
    text(canvas, x + size / 2, y + size + 1.5 * MM, label, size=7, align="center")
    canvas.setStrokeColor(GREY)
    canvas.circle(x + size / 2, y + size / 2, size * 0.3)
    text(canvas, x + size / 2, y + size / 2 - 2.5, "印", size=8, align="center", color=GREY)
    canvas.setStrokeColor(black)


def _draw(canvas: Canvas, widget: Any, x: float, y: float, width: float, height: float) -> None:
    x0, y0, x1, y1 = widget.getBounds()
    drawing = Drawing(width, height, transform=[width / (x1 - x0), 0, 0, height / (y1 - y0), 0, 0])
    drawing.add(widget)
    renderPDF.draw(drawing, canvas, x - x0 * width / (x1 - x0), y - y0 * height / (y1 - y0))


def ean13(canvas: Canvas, digits: str, x: float, y: float, *, width: float, height: float) -> None:
    """An EAN-13 barcode of 13 digits (the last is its check digit) with the digits printed
    under it, fitted into the box (x, y, width, height) on a white ground."""
    if len(digits) != 13 or not digits.isdigit():
        raise ValueError("an EAN-13 code is 13 digits")
    widget = eanbc.Ean13BarcodeWidget(digits[:12], barHeight=18 * MM, fontName="Helvetica")
    canvas.setFillColor(white)
    canvas.rect(x, y, width, height, stroke=0, fill=1)
    canvas.setFillColor(black)
    _draw(canvas, widget, x, y, width, height)


def qr_code(canvas: Canvas, content: str, x: float, y: float, *, size: float) -> None:
    """A QR code of `content` (error correction M) in a size × size square."""
    widget = qr.QrCodeWidget(content, barLevel="M", barBorder=4)
    _draw(canvas, widget, x, y, size, size)


def japanese_date(day: date) -> str:
    """2017年12月15日"""
    return f"{day.year}年{day.month}月{day.day}日"


def slash_date(day: date) -> str:
    """2017/12/15"""
    return f"{day.year}/{day.month:02d}/{day.day:02d}"
