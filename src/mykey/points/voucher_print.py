"""Printable point vouchers (ポイント券) and gift certificates (商品券) as PDF (issue #5, R6.2).

Each certificate is drawn as on the seed's voucher image: the title, the period of validity,
the 13-digit number (発券番号), the issue date, the face value (利用ポイント), the point name,
where it is valid, the issuing municipality, a box for the issuing seal (発行認印) and one for
the shop's seal (利用店舗印), and the number as an EAN-13 barcode (with its digits) and as a
QR code. Three certificates fit on an A4 page, with cut lines.

Printing counts: `vouchers.prints` goes up by one for every certificate printed, in the same
transaction that reads it (a failed rendering rolls the count back). Every copy after the
first carries a red reprint mark (再発行 / REPRINT) with its copy number. A HEAD request of a
PDF is not a print: its routes pass `count=False`, which draws the next print uncounted.

Who may print: a terminal of the shop that issued the voucher, and the resident it was issued
to (their My Page session); a ranking prize voucher (no issuing shop) also the staff of its
municipality, one PDF per winner (`print_prize`) or every winner's PDF in one ZIP
(`print_prizes_zip`). Anyone else gets the same `unknown_voucher` (404) as for a number
never issued, so a number seen on paper tells nothing more. Shops where the voucher is merely
valid do not print it: they only redeem.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from io import BytesIO
from uuid import UUID

from sqlalchemy import select, update

from mykey.db import UnitOfWork
from mykey.documents import (
    GREY,
    MM,
    RED,
    Document,
    ean13,
    japanese_date,
    new_document,
    qr_code,
    slash_date,
    stamp_box,
    text,
)
from mykey.errors import MyKeyError, invalid, not_found
from mykey.municipalities.models import Municipality
from mykey.points.models import GiftProgram, RankingAward, RankingAwardEntry, Voucher
from mykey.points.vouchers import (
    GIFT_PROGRAM,
    PRIZE_PROGRAM,
    REDEEMED,
    VoucherView,
    _find,
    _view,
    prize_vouchers,
)

PER_PAGE = 3
WIDTH, HEIGHT = 180 * MM, 88 * MM


@dataclass(frozen=True)
class Viewer:
    """Who asks for a print: a shop's terminal (`shop_id`), a resident (`mykey_id`), or the
    staff of a municipality (`municipality`: its ranking prize vouchers only). `counting`
    False: only a look at what a print would be (an HTTP HEAD), not a print: nothing counted,
    the next print is not a reprint."""

    shop_id: str | None = None
    mykey_id: str | None = None
    municipality: str | None = None
    counting: bool = True


@dataclass(frozen=True)
class Certificate:
    voucher: VoucherView
    copy: int  # 1 for the first print, 2 for the first reprint …
    municipality_name: str
    title: str  # ポイント券 or 商品券
    title_en: str
    name: str = ""  # the point name, or the gift certificate's name and the point name


def _may_print(row: Voucher, viewer: Viewer) -> bool:
    if viewer.shop_id is not None and row.issuer_shop_id == viewer.shop_id:
        return True
    if viewer.municipality is not None and row.program == PRIZE_PROGRAM:
        return row.code == viewer.municipality
    return viewer.mykey_id is not None and row.mykey_id == viewer.mykey_id


def _unknown(what: str) -> MyKeyError:
    return not_found(
        "unknown_voucher", f"There is no voucher {what}.", f"ポイント券 {what} は見つかりません。"
    )


def _municipality_name(uow: UnitOfWork, code: str) -> str:
    row = uow.session.get(Municipality, code)
    return f"{row.prefecture}{row.name}" if row is not None else code


def _titles(view: VoucherView) -> tuple[str, str]:
    if view.program == GIFT_PROGRAM:
        return "商品券", "GIFT CERTIFICATE"
    return "ポイント券", "POINT VOUCHER"


def _count(uow: UnitOfWork, rows: list[Voucher], counting: bool = True) -> list[Certificate]:
    """One more print of each row, in this transaction; the certificates to draw (the same
    without counting, for a look)."""
    out = []
    for row in rows:
        copy = row.prints + 1
        if counting:
            uow.session.execute(
                update(Voucher)
                .where(Voucher.number == row.number)
                .values(prints=Voucher.prints + 1)
            )
            uow.session.refresh(row)
            copy = row.prints
        view = _view(uow, row)
        title, title_en = _titles(view)
        gift = uow.session.get(GiftProgram, row.gift_program_id) if row.gift_program_id else None
        award = uow.session.get(RankingAward, row.award_id) if row.award_id else None
        name = view.point_name
        if gift is not None:
            name = f"{gift.name}（{view.point_name}）"
        elif award is not None:  # a ranking prize: what it is for
            name = f"{award.reason}（{view.point_name}）"
        out.append(
            Certificate(view, copy, _municipality_name(uow, row.code), title, title_en, name)
        )
    return out


def where_valid(cert: Certificate) -> str:
    """★○○商店街の各店舗でご利用頂けます。"""
    v = cert.voucher
    if v.street_name is not None:
        return f"★{v.street_name}の各店舗でご利用頂けます。"
    if v.shop_name is not None:
        return f"★{v.shop_name}でご利用頂けます。"
    if v.valid_shops:  # a ranking prize valid at a set of shops
        return f"★{'・'.join(v.valid_shops)}でご利用頂けます。"
    return f"★{cert.municipality_name}の{v.point_name}取扱店舗でご利用頂けます。"


def _draw(doc: Document, cert: Certificate, x0: float, y0: float) -> None:
    c, v = doc.canvas, cert.voucher
    top, right = y0 + HEIGHT, x0 + WIDTH
    c.setLineWidth(1.2)
    c.rect(x0, y0, WIDTH, HEIGHT)
    c.setLineWidth(0.4)
    c.rect(x0 + 1.5 * MM, y0 + 1.5 * MM, WIDTH - 3 * MM, HEIGHT - 3 * MM)

    text(
        c, x0 + 100 * MM / 2 + 4 * MM, top - 12 * MM, f"★★★{cert.title}★★★", size=17, align="center"
    )
    text(c, x0 + 100 * MM / 2 + 4 * MM, top - 16 * MM, cert.title_en, size=7, align="center")
    if cert.copy > 1:  # a reprint: say so where nobody can miss it
        c.setStrokeColor(RED)
        c.setLineWidth(1.5)
        c.rect(right - 62 * MM, top - 12.5 * MM, 55 * MM, 8 * MM)
        c.setLineWidth(0.4)
        c.setStrokeColor(GREY)
        text(
            c,
            right - 34.5 * MM,
            top - 10 * MM,
            f"再発行 第{cert.copy}版 / REPRINT copy {cert.copy}",
            size=9.5,
            align="center",
            color=RED,
        )
    if v.status != "issued":
        used = "使用済み / REDEEMED" if v.status == REDEEMED else "有効期限切れ / EXPIRED"
        text(c, x0 + 8 * MM, top - 22 * MM, f"【無効 VOID】{used}", size=9, color=RED)

    left = x0 + 8 * MM
    y = top - 28 * MM
    text(c, left, y, "【有効期間】", size=9)
    y -= 5.5 * MM
    text(c, left, y, f"{japanese_date(v.issued_on)}～{japanese_date(v.valid_until)}", size=11)
    y -= 7 * MM
    text(c, left, y, f"発券番号：{v.number}", size=10)
    y -= 5.5 * MM
    text(c, left, y, f"発行日：{slash_date(v.issued_on)}", size=10)
    y -= 8 * MM
    text(c, left, y, "【利用ポイント】", size=9)
    y -= 9 * MM
    text(c, left + 6 * MM, y, f"{v.face_value:,} ポイント", size=22)
    y -= 7.5 * MM
    text(c, left, y, cert.name or v.point_name, size=12, max_width=92 * MM)
    y -= 6 * MM
    text(c, left, y, where_valid(cert), size=9, max_width=92 * MM)
    y -= 5 * MM
    text(c, left, y, f"発行：{cert.municipality_name}", size=8, max_width=92 * MM)
    text(
        c,
        left,
        y0 + 3 * MM,  # below the issuer line, inside the inner border
        f"{cert.title_en.title()}: {v.face_value:,} points, valid {v.issued_on.isoformat()}"
        f" to {v.valid_until.isoformat()}, once, where stated above.",
        size=6,
        color=GREY,
        max_width=95 * MM,
    )

    qr_size = 27 * MM
    qr_code(c, v.number, right - 8 * MM - qr_size, top - 19 * MM - qr_size, size=qr_size)
    stamp = 17 * MM
    stamp_box(c, x0 + 108 * MM, top - 25 * MM - stamp, stamp, "＜発行認印＞")
    stamp_box(c, x0 + 108 * MM, top - 52 * MM - stamp, stamp, "＜利用店舗印＞")
    ean13(c, v.number, right - 8 * MM - 45 * MM, y0 + 6 * MM, width=45 * MM, height=22 * MM)


def render(certificates: list[Certificate], *, title: str) -> bytes:
    """Certificates, three to an A4 page, with dashed cut lines between them."""
    doc = new_document(title=title, subject="MyKey")
    x0 = (doc.width - WIDTH) / 2
    gap = (doc.height - PER_PAGE * HEIGHT) / (PER_PAGE + 1)
    for i, cert in enumerate(certificates):
        slot = i % PER_PAGE
        if i and not slot:
            doc.new_page()
        y0 = doc.height - (slot + 1) * (gap + HEIGHT)
        _draw(doc, cert, x0, y0)
        if slot < PER_PAGE - 1 and i < len(certificates) - 1:
            cut = y0 - gap / 2
            doc.canvas.setDash(3, 3)
            doc.canvas.setStrokeColor(GREY)
            doc.canvas.line(x0 - 8 * MM, cut, x0 + WIDTH + 8 * MM, cut)
            doc.canvas.setDash()
    return doc.bytes()


def _title(certs: list[Certificate]) -> str:
    first = certs[0]
    return f"{first.title} {first.voucher.number}" + (
        f" ほか{len(certs) - 1}枚" if certs[1:] else ""
    )


def print_voucher(uow: UnitOfWork, number: str, *, viewer: Viewer, count: bool = True) -> bytes:
    """The PDF of one voucher; counts the print (unless `count` is False: a HEAD request)."""

    def body() -> bytes:
        row = _find(uow, number)
        if not _may_print(row, viewer):
            raise _unknown(row.number)
        certs = _count(uow, [row], viewer.counting)
        return render(certs, title=_title(certs))

    return (uow.run if viewer.counting else uow.read)(body)  # a look (HEAD) writes nothing


def print_batch(
    uow: UnitOfWork, issue_transfer_id: str, *, viewer: Viewer, count: bool = True
) -> bytes:
    """The PDF of every voucher of one issue (its transaction id), in order; counts each
    (unless `count` is False: a HEAD request)."""
    try:
        transfer_id = UUID(issue_transfer_id)
    except (ValueError, TypeError):
        raise invalid(
            "invalid_batch_id",
            "A batch is named by the transaction id of its issue (a UUID).",
            "発行の取引ID（UUID）を指定してください。",
        ) from None

    def body() -> bytes:
        rows = list(
            uow.session.scalars(
                select(Voucher)
                .where(Voucher.issue_transfer_id == transfer_id)
                .order_by(Voucher.seq)
            )
        )
        if not rows or not _may_print(rows[0], viewer):
            raise not_found(
                "unknown_voucher_batch",
                f"There are no vouchers of the issue {transfer_id}.",
                f"発行 {transfer_id} のポイント券は見つかりません。",
            )
        certs = _count(uow, rows, viewer.counting)
        return render(certs, title=_title(certs))

    return (uow.run if viewer.counting else uow.read)(body)  # a look (HEAD) writes nothing


def _award_of(uow: UnitOfWork, award_id: str, viewer: Viewer) -> RankingAward:
    row = uow.session.get(RankingAward, award_id) if isinstance(award_id, str) else None
    if row is None or viewer.municipality is None or row.code != viewer.municipality:
        raise not_found(
            "unknown_award", f"There is no award {award_id}.", f"付与 {award_id} はありません。"
        )
    return row


def _no_prize(award_id: str, mykey_id: str) -> MyKeyError:
    return not_found(
        "unknown_prize",
        f"The award {award_id} gave {mykey_id} no vouchers.",
        f"付与 {award_id} で {mykey_id} に発行したポイント券はありません。",
    )


def print_prize(
    uow: UnitOfWork, award_id: str, mykey_id: str, *, viewer: Viewer, count: bool = True
) -> bytes:
    """One winner's prize vouchers of a ranking award as one PDF; counts each print.

    For the staff of the award's municipality (`viewer.municipality`) or the winner
    (`viewer.mykey_id`); anyone else gets `unknown_award` or `unknown_prize` (404)."""

    def body() -> bytes:
        if viewer.mykey_id is None or viewer.mykey_id != mykey_id:
            _award_of(uow, award_id, viewer)
        rows = prize_vouchers(uow, award_id, mykey_id) if isinstance(mykey_id, str) else []
        if not rows:
            raise _no_prize(award_id, mykey_id)
        certs = _count(uow, rows, viewer.counting)
        return render(certs, title=_title(certs))

    return (uow.run if viewer.counting else uow.read)(body)  # a look (HEAD) writes nothing


def prize_file_name(rank: int, mykey_id: str) -> str:
    """The name of a winner's PDF in the award's ZIP: in rank order when listed."""
    return f"{rank:04d}-{mykey_id}.pdf"


ZIP_TIME = (2000, 1, 1, 0, 0, 0)  # fixed, so the same prints give the same bytes


def print_prizes_zip(
    uow: UnitOfWork, award_id: str, *, viewer: Viewer, count: bool = True
) -> bytes:
    """Every winner's prize vouchers of a ranking award: a ZIP with one PDF per winner
    (`prize_file_name`: rank and MyKey ID), in rank order; counts each print. For the staff
    of the award's municipality only."""

    def body() -> bytes:
        _award_of(uow, award_id, viewer)
        entries = uow.session.scalars(
            select(RankingAwardEntry)
            .where(RankingAwardEntry.award_id == award_id)
            .order_by(RankingAwardEntry.rank)
        ).all()
        out = BytesIO()
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for entry in entries:
                rows = prize_vouchers(uow, award_id, entry.mykey_id)
                if not rows:  # refused (the budget, say): nothing to print for them
                    continue
                certs = _count(uow, rows, viewer.counting)
                info = zipfile.ZipInfo(prize_file_name(entry.rank, entry.mykey_id), ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, render(certs, title=_title(certs)))
        return out.getvalue()

    return (uow.run if viewer.counting else uow.read)(body)  # a look (HEAD) writes nothing
