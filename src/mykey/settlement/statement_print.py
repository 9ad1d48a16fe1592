"""A monthly settlement statement as a PDF (精算明細書, issue #6): who and which month, a line
per Tokyo day (points in, points out, transfers, the day's amount in yen), the totals, what is
payable and the ledger transfer that booked it. Japanese first, with English labels.

The amounts are the statement's own (1 point = 1 yen); nothing is recomputed here.
"""

from __future__ import annotations

from dataclasses import dataclass

from mykey.db import UnitOfWork, tokyo_date
from mykey.documents import GREY, MM, Document, japanese_date, new_document, slash_date, text
from mykey.municipalities.models import Municipality
from mykey.points.models import Partner, PointProgram, Shop, ShoppingStreet
from mykey.settlement.statements import (
    ASSOCIATION,
    PARTNER,
    PARTY_NAMES_JA,
    SHOP,
    DayLine,
    StatementView,
)

ROWS_PER_PAGE = 32


@dataclass(frozen=True)
class Names:
    municipality: str  # 奈良県天理市
    point_name: str
    party: str  # the shop's, partner's or street's name; else the party id


def names_of(uow: UnitOfWork, view: StatementView) -> Names:
    """The display names a statement is printed with."""

    def body() -> Names:
        s = uow.session
        town = s.get(Municipality, view.municipality)
        program = s.get(PointProgram, view.municipality)
        party: str | None = None
        if view.party_kind == SHOP:
            shop = s.get(Shop, view.party_id)
            party = shop.name if shop else None
        elif view.party_kind == PARTNER:
            partner = s.get(Partner, view.party_id)
            party = partner.name if partner else None
        elif view.party_kind == ASSOCIATION:
            street = s.get(ShoppingStreet, view.party_id)
            party = f"{street.name} 商工会" if street else None
        return Names(
            municipality=f"{town.prefecture}{town.name}" if town else view.municipality,
            point_name=program.point_name if program else view.municipality,
            party=party or view.party_id,
        )

    return uow.read(body)


def _direction(view: StatementView) -> tuple[str, str]:
    """What the payable means, in Japanese and English."""
    if view.party_kind == PARTNER:
        return "ご請求額（協力企業から自治体へ）", "Billed: the partner pays the municipality"
    if view.party_kind in (SHOP, ASSOCIATION):
        return "お支払額（自治体から）", "Payable by the municipality"
    return "計上額", "Booked by the municipality"


def _money(value: int) -> str:
    return f"{value:,} 円"


def render(view: StatementView, names: Names) -> bytes:
    """The statement (with its day lines: pass a view from `statements.get_statement`)."""
    year, month = (int(part) for part in view.month.split("-"))
    doc = new_document(
        title=f"精算明細書 {view.month} {names.party}",
        subject=f"Monthly settlement statement {view.month}",
    )
    pages = [
        list(view.days[i : i + ROWS_PER_PAGE]) for i in range(0, len(view.days), ROWS_PER_PAGE)
    ] or [[]]
    for number, days in enumerate(pages, start=1):
        y = _header(doc, view, names, year, month, number, len(pages))
        y = _table(doc, view, days, y)
        if number == len(pages):
            _totals(doc, view, y)
        if number < len(pages):
            doc.new_page()
    return doc.bytes()


def _header(
    doc: Document,
    view: StatementView,
    names: Names,
    year: int,
    month: int,
    page: int,
    pages: int,
) -> float:
    c, left, right = doc.canvas, 20 * MM, doc.width - 20 * MM
    y = doc.height - 25 * MM
    text(c, doc.width / 2, y, "精算明細書", size=20, align="center")
    y -= 7 * MM
    text(c, doc.width / 2, y, "Monthly settlement statement", size=9, align="center", color=GREY)
    y -= 12 * MM
    kind = PARTY_NAMES_JA.get(view.party_kind, view.party_kind)
    rows = (
        ("精算月 / Month", f"{year}年{month}月分（日本時間）"),
        ("自治体 / Municipality", f"{names.municipality}（{view.municipality}）"),
        ("ポイント / Points", f"{names.point_name}（1ポイント＝1円）"),
        ("相手 / Party", f"{kind}：{names.party}（{view.party_id}）"),
        ("作成日 / Issued", japanese_date(tokyo_date(view.created_at))),
        ("明細番号 / Statement", str(view.id)),
    )
    for label, value in rows:
        text(c, left, y, label, size=9, color=GREY)
        text(c, left + 45 * MM, y, value, size=10, max_width=right - left - 45 * MM)
        y -= 6 * MM
    text(c, right, doc.height - 12 * MM, f"{page} / {pages}", size=8, align="right", color=GREY)
    return y - 4 * MM


COLUMNS = (  # label, right edge from the left margin (mm)
    ("日付 / Day", 30),
    ("件数 / Transfers", 62),
    ("入 / In (pt)", 97),
    ("出 / Out (pt)", 132),
    ("金額 / Amount", 170),
)


def _table(doc: Document, view: StatementView, days: list[DayLine], y: float) -> float:
    c, left = doc.canvas, 20 * MM
    for label, edge in COLUMNS:
        text(c, left + edge * MM, y, label, size=8, align="right", color=GREY)
    y -= 2 * MM
    c.setLineWidth(0.6)
    c.line(left, y, left + 170 * MM, y)
    y -= 5 * MM
    for line in days:
        values = (
            slash_date(line.day),
            f"{line.transfers:,}",
            f"{line.credits:,}",
            f"{line.debits:,}",
            _money(view.day_amount(line)),
        )
        for value, (_, edge) in zip(values, COLUMNS, strict=True):
            text(c, left + edge * MM, y, value, size=9, align="right")
        y -= 5.5 * MM
    return y


def _totals(doc: Document, view: StatementView, y: float) -> None:
    c, left = doc.canvas, 20 * MM
    c.setLineWidth(0.6)
    c.line(left, y + 3 * MM, left + 170 * MM, y + 3 * MM)
    values = ("合計", f"{view.transfers:,}", f"{view.credits:,}", f"{view.debits:,}")
    for value, (_, edge) in zip(values, COLUMNS[:4], strict=True):
        text(c, left + edge * MM, y - 2 * MM, value, size=9, align="right")
    text(c, left + 170 * MM, y - 2 * MM, _money(view.amount), size=10, align="right")
    y -= 14 * MM
    lines = [("精算額 / Amount", _money(view.amount))]
    if view.via_association:
        lines.append(("うち商工会経由 / Via the association", _money(view.via_association)))
    ja, en = _direction(view)
    lines.append((f"{ja} / {en}", _money(view.payable)))
    for label, value in lines:
        text(c, left + 60 * MM, y, label, size=10, align="right")
        text(c, left + 170 * MM, y, value, size=12, align="right")
        y -= 7 * MM
    y -= 4 * MM
    booked = str(view.transfer_id) if view.transfer_id else "なし / none"
    text(c, left, y, f"精算振替 / Settlement transfer: {booked}", size=8, color=GREY)
    y -= 5 * MM
    text(
        c,
        left,
        y,
        "この明細は台帳の記録から作成され、締めた月は変更されません。"
        " / Made from the ledger; a closed month never changes.",
        size=8,
        color=GREY,
        max_width=170 * MM,
    )
