"""Gift certificates (商品券, R6.5): a resident exchanges points for numbered paper
certificates of a fixed denomination (Bungotakada's, Maebashi's Q-town certificates).

They are vouchers (`points.vouchers`, program `gift`): the same table, 13-digit EAN-13
numbers, redemption by number at any shop where they are valid, expiry back into the wallet,
printing (titled 商品券). What is particular is data per municipality, a **gift programme**:
its name (前橋Qの町商品券), the denomination (1,000), how many days a certificate is valid
counting the day of the exchange (180), where it is valid (the member shops of one shopping
street, or every shop accepting the municipality's points) and an optional most sheets per
exchange. Municipality staff (of that municipality) or operators set programmes up.

An exchange at a shop's terminal with the resident's fresh card proof moves sheets ×
denomination points from the wallet to the voucher float in one guarded transfer
(idempotent per terminal and key, looked up first; bound to the holder whose balances were
shown, if the terminal says so; a use of the MyKey ID) and makes one certificate per sheet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select

from mykey.db import UnitOfWork
from mykey.errors import invalid, not_found, refused
from mykey.identity.binding import ExpectedHolder
from mykey.identity.proofs import Card
from mykey.municipalities.codes import parse_code
from mykey.points.models import GiftProgram, PointProgram, ShoppingStreet
from mykey.points.vouchers import (
    GIFT_PROGRAM,
    MAX_PIECES,
    FromWallet,
    Issued,
    _whole,
    run_from_wallet,
)

PROGRAM_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
MAX_GIFT_DAYS = 730
MAX_DENOMINATION = 1_000_000


@dataclass(frozen=True)
class GiftProgramView:
    id: str
    municipality: str
    name: str
    denomination: int
    valid_days: int
    street_id: str | None
    street_name: str | None
    max_sheets: int | None


def _out(uow: UnitOfWork, row: GiftProgram) -> GiftProgramView:
    street = uow.session.get(ShoppingStreet, row.street_id) if row.street_id else None
    return GiftProgramView(
        id=row.id,
        municipality=row.code,
        name=row.name,
        denomination=row.denomination,
        valid_days=row.valid_days,
        street_id=row.street_id,
        street_name=street.name if street else None,
        max_sheets=row.max_sheets,
    )


def set_gift_program(
    uow: UnitOfWork,
    *,
    program_id: str,
    municipality: str,
    name: str,
    denomination: int,
    valid_days: int,
    street_id: str | None = None,
    max_sheets: int | None = None,
) -> GiftProgramView:
    """Create or change a gift programme. Certificates already issued keep their face value,
    last day and place; the changes apply to later exchanges."""
    if not isinstance(program_id, str) or not PROGRAM_ID.fullmatch(program_id):
        raise invalid(
            "invalid_gift_program_id",
            "A gift programme id is 1 to 32 letters, digits, - or _.",
            "商品券IDは英数字・-・_ の1〜32文字です。",
        )
    code = parse_code(municipality)
    name = name.strip() if isinstance(name, str) else ""
    if not 0 < len(name) <= 100:
        raise invalid(
            "invalid_gift_name",
            "A gift certificate's name is 1 to 100 characters.",
            "商品券の名称は1〜100文字です。",
        )
    _whole("denomination", denomination, 1, MAX_DENOMINATION)
    _whole("valid_days", valid_days, 1, MAX_GIFT_DAYS)
    if max_sheets is not None:
        _whole("max_sheets", max_sheets, 1, MAX_PIECES)

    def body() -> GiftProgramView:
        s = uow.session
        if s.get(PointProgram, code) is None:
            raise not_found(
                "no_point_program",
                f"Municipality {code} has no point program yet.",
                f"自治体 {code} にはまだポイント制度がありません。",
            )
        if street_id is not None:
            street = s.get(ShoppingStreet, street_id)
            if street is None or street.municipality != code:
                raise not_found(
                    "unknown_street",
                    f"Municipality {code} has no shopping street {street_id}.",
                    f"自治体 {code} に商店街 {street_id} はありません。",
                )
        row = s.get(GiftProgram, program_id)
        now = uow.now()
        if row is None:
            row = GiftProgram(id=program_id, code=code, created_at=now)
            s.add(row)
        elif row.code != code:
            raise refused(
                "gift_program_of_another_municipality",
                f"The gift programme {program_id} belongs to another municipality.",
                f"商品券 {program_id} は別の自治体のものです。",
            )
        row.name = name
        row.denomination = denomination
        row.valid_days = valid_days
        row.street_id = street_id
        row.max_sheets = max_sheets
        row.updated_at = now
        s.flush()
        return _out(uow, row)

    return uow.run(body)


def _program(uow: UnitOfWork, program_id: str) -> GiftProgram:
    row = uow.session.get(GiftProgram, program_id) if isinstance(program_id, str) else None
    if row is None:
        raise not_found(
            "unknown_gift_program",
            f"There is no gift programme {program_id}.",
            f"商品券 {program_id} はありません。",
        )
    return row


def get_gift_program(uow: UnitOfWork, program_id: str) -> GiftProgramView:
    return uow.read(lambda: _out(uow, _program(uow, program_id)))


def list_gift_programs(uow: UnitOfWork, *, municipality: str) -> list[GiftProgramView]:
    code = parse_code(municipality)
    return uow.read(
        lambda: [
            _out(uow, row)
            for row in uow.session.scalars(
                select(GiftProgram).where(GiftProgram.code == code).order_by(GiftProgram.id)
            )
        ]
    )


def exchange(
    uow: UnitOfWork,
    *,
    shop_id: str | None,
    card: Card,
    program_id: str,
    sheets: int,
    actor: str,
    key: str,
    expected_holder: ExpectedHolder | None = None,
) -> Issued:
    """The card holder's points for `sheets` certificates of the programme, at this shop's
    terminal (which must take the municipality's points). Idempotent per (actor, key);
    refused with `wrong_card` if `expected_holder` names someone else."""
    _whole("sheets", sheets, 1, MAX_PIECES)
    gift = uow.read(lambda: _program(uow, program_id))
    _whole("sheets", sheets, 1, gift.max_sheets or MAX_PIECES)
    request = FromWallet(
        gift.code,
        [gift.denomination] * sheets,
        {"gift_program": gift.id},
        program=GIFT_PROGRAM,
        valid_days=gift.valid_days,
        street_id=gift.street_id,
        at_shop=False,
        gift_program_id=gift.id,
        gift_name=gift.name,
    )
    return run_from_wallet(
        uow,
        shop_id=shop_id,
        card=card,
        request=request,
        actor=actor,
        key=key,
        expected_holder=expected_holder,
    )
