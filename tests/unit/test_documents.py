"""The shared PDF helpers (mykey.documents): deterministic output, Japanese text, barcodes."""

from __future__ import annotations

from datetime import date

import pytest

from mykey.documents import MM, ean13, japanese_date, new_document, qr_code, slash_date, text
from mykey.points.voucher_print import Certificate, render
from mykey.points.vouchers import VoucherView, check_digit
from tests.pdfs import read_pdf


def _certificate(number: str, copy: int = 1) -> Certificate:
    view = VoucherView(
        number=number,
        municipality="102016",
        point_name="前橋市ポイント",
        program="wallet",
        face_value=1000,
        issued_on=date(2017, 12, 15),
        valid_until=date(2017, 12, 17),
        shop_id=None,
        shop_name=None,
        street_id="q-town",
        street_name="Qの町商店街",
        status="issued",
        redeemed_shop_id=None,
        receipt_ref=None,
        prints=copy,
    )
    return Certificate(view, copy, "群馬県前橋市", "ポイント券", "POINT VOUCHER")


def test_the_same_content_makes_the_same_bytes() -> None:
    number = "123456789012" + check_digit("123456789012")
    first = render([_certificate(number)], title="t")
    assert first == render([_certificate(number)], title="t")
    assert first != render([_certificate(number, copy=2)], title="t")
    [page] = read_pdf(first)
    assert "2017年12月15日～2017年12月17日" in page.text
    assert "★Qの町商店街の各店舗でご利用頂けます。" in page.text
    assert page.ean13 == [number] and page.qr == [number]


def test_helpers_draw_text_and_codes() -> None:
    doc = new_document(title="テスト")
    wide = text(doc.canvas, 10 * MM, 250 * MM, "前橋市" * 40, size=12, max_width=80 * MM)
    assert wide == pytest.approx(80 * MM)  # shrunk to fit
    text(doc.canvas, 105 * MM, 240 * MM, "中央揃え / centred", align="center")
    ean13(doc.canvas, "4901234567894", 20 * MM, 150 * MM, width=50 * MM, height=25 * MM)
    qr_code(doc.canvas, "こんにちは MyKey", 120 * MM, 150 * MM, size=40 * MM)
    [page] = read_pdf(doc.bytes())
    assert "前橋市前橋市" in page.text and "中央揃え / centred" in page.text
    assert page.ean13 == ["4901234567894"] and page.qr == ["こんにちは MyKey"]
    with pytest.raises(ValueError, match="13 digits"):
        ean13(doc.canvas, "490123456789", 0, 0, width=50 * MM, height=25 * MM)


def test_dates() -> None:
    assert japanese_date(date(2017, 12, 5)) == "2017年12月5日"
    assert slash_date(date(2017, 12, 5)) == "2017/12/05"
