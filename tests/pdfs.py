"""Reading PDFs back in tests as a person (and a scanner) would: each page's text, and the
barcodes found on the page rendered as an image."""

from __future__ import annotations

from dataclasses import dataclass

import pypdfium2 as pdfium
import zxingcpp


@dataclass(frozen=True)
class Page:
    text: str
    ean13: list[str]  # the EAN-13 codes on the page, top to bottom
    qr: list[str]  # the QR codes' contents, top to bottom


def read_pdf(content: bytes, *, dpi: int = 200) -> list[Page]:
    assert content.startswith(b"%PDF-"), content[:40]
    pages = []
    doc = pdfium.PdfDocument(content)
    try:
        for index in range(len(doc)):
            page = doc[index]
            text = page.get_textpage().get_text_range()
            image = page.render(scale=dpi / 72).to_pil()
            found = sorted(
                zxingcpp.read_barcodes(image), key=lambda r: (r.position.top_left.y, r.format)
            )
            pages.append(
                Page(
                    text=text,
                    ean13=[r.text for r in found if r.format == zxingcpp.BarcodeFormat.EAN13],
                    qr=[r.text for r in found if r.format == zxingcpp.BarcodeFormat.QRCode],
                )
            )
    finally:
        doc.close()
    return pages
